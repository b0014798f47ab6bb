# title: Fix: retain_graph=True (or recompute the forward)
# description: With retain_graph=True the second backward runs and the gradients add up.
import torch

x = torch.tensor([1.0, 2.0], requires_grad=True)
y = (x * x).sum()
y.backward(retain_graph=True)
y.backward()
print(x.grad)
