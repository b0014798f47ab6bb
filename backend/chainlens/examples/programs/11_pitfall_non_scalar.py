# title: Pitfall: backward on a non-scalar
# description: y has three elements, so y.backward() cannot pick the vector to multiply by.
import torch

x = torch.ones(3, requires_grad=True)
y = x * 2
y.backward()
