# title: The chain rule on (3*(x+2)**2).mean()
# description: The smallest graph worth drawing: add, pow, mul, mean; x.grad = 6*(x+2)/3 = 6.
import torch

x = torch.ones(3, requires_grad=True)
y = x + 2
z = 3 * y**2
out = z.mean()
out.backward()
print(x.grad)
