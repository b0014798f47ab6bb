# title: Pitfall: modifying a tensor that backward needs
# description: exp saves its output; changing it in place makes the saved value wrong.
import torch

x = torch.tensor([0.0, 1.0], requires_grad=True)
y = x.exp()
y.mul_(2)
y.sum().backward()
