# title: Pitfall: mixing CPU and GPU tensors
# description: An op with one tensor on the CPU and one on the GPU fails (without CUDA, asking for the GPU fails first).
import torch

x = torch.ones(3, device="cpu", requires_grad=True)
w = torch.ones(3, device="cuda")
y = (x * w).sum()
