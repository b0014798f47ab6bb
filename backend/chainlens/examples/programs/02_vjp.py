# title: Vector-Jacobian product with y.backward(v)
# description: y is a vector, so backward needs a vector v: x.grad becomes J^T v.
import torch

x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
y = x * x * 2
v = torch.tensor([0.1, 1.0, 0.0001])
y.backward(v)
print(x.grad)
