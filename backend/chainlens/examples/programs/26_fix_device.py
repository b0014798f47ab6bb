# title: Fix: put every tensor on one device
# description: Pick the device once and create or move every tensor there.
import torch

device = "cuda" if torch.cuda.is_available() else "cpu"
x = torch.ones(3, requires_grad=True, device=device)
w = torch.ones(3, device=device)
y = (x * w).sum()
y.backward()
print(x.grad.cpu())
