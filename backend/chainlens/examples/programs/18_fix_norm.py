# title: Fix: torch.norm, whose gradient at zero is 0
# description: torch.norm (linalg.vector_norm) defines the subgradient at 0 as 0.
import torch

x = torch.zeros(3, requires_grad=True)
length = torch.norm(x)
length.backward()
print(x.grad)
