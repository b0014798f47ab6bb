# title: Pitfall: an overwritten leaf
# description: w = w - lr * w.grad rebinds w to a computed tensor; the next w.grad is None.
import torch

w = torch.tensor([1.0, 2.0], requires_grad=True)
loss = (w**2).sum()
loss.backward()
w = w - 0.1 * w.grad
loss = (w**2).sum()
loss.backward()
print(w.grad)
