# title: Fix: reduce to a scalar (or pass a gradient)
# description: y.sum().backward() gives the gradient of the sum; y.backward(v) the VJP.
import torch

x = torch.ones(3, requires_grad=True)
y = x * 2
y.sum().backward()
print(x.grad)
