# title: Pitfall: sqrt(sum(x**2)) at zero gives NaN
# description: d sqrt(u)/du = 1/(2 sqrt(u)) is infinite at 0, and inf * 0 = NaN.
import torch

x = torch.zeros(3, requires_grad=True)
length = torch.sqrt((x**2).sum())
length.backward()
print(x.grad)
