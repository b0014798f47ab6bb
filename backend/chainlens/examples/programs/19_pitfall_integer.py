# title: Pitfall: an integer tensor with requires_grad
# description: torch.tensor([1, 2, 3]) is int64, which cannot require gradients.
import torch

x = torch.tensor([1, 2, 3], requires_grad=True)
