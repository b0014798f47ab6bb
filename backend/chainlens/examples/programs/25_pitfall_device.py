# title: Pitfall: mixing CPU and GPU tensors
# description: An op with one tensor on the CPU and one on CUDA fails (here: no CUDA at all).
import torch

x = torch.ones(3, requires_grad=True)
w = torch.ones(3, device="cuda")
y = (x * w).sum()
