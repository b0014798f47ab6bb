# title: Cut edges: no_grad, detach and non-differentiable ops
# description: What leaves the graph is drawn dashed: b never gets a gradient.
import torch

a = torch.tensor([1.0, 2.0], requires_grad=True)
b = torch.tensor([3.0, 4.0], requires_grad=True)
with torch.no_grad():
    scale = b * 2
mask = (a > 1.5).float()
c = (a * scale + a.detach() * mask).sum()
c.backward()
print(a.grad, b.grad)
