# title: Fix: use the out-of-place op
# description: y = y * 2 makes a new tensor; the one exp saved stays intact.
import torch

x = torch.tensor([0.0, 1.0], requires_grad=True)
y = x.exp()
y = y * 2
y.sum().backward()
print(x.grad)
