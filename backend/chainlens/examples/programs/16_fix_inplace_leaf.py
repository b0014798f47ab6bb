# title: Fix: change leaves only under no_grad
# description: Inside torch.no_grad() the in-place update is allowed and not recorded.
import torch

w = torch.tensor([1.0, 2.0], requires_grad=True)
with torch.no_grad():
    w.add_(1)
loss = (w * w).sum()
loss.backward()
print(w.grad)
