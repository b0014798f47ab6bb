# title: Gradients accumulate; zero_() resets them
# description: Two backward calls add into x.grad; grad.zero_() starts over.
import torch

x = torch.tensor([2.0, -1.0], requires_grad=True)
(x**2).sum().backward()
print("after one backward:", x.grad)
(x**2).sum().backward()
print("after two:", x.grad)
x.grad.zero_()
(3 * x).sum().backward()
print("after zero_ and a third:", x.grad)
