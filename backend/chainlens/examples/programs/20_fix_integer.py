# title: Fix: make it a float tensor
# description: Write 1., 2., 3. or pass dtype=torch.float32.
import torch

x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
(x**2).sum().backward()
print(x.grad)
