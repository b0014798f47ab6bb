# title: Fix: update the leaf in place under no_grad
# description: with torch.no_grad(): w -= lr * w.grad keeps w a leaf; zero the grad after.
import torch

w = torch.tensor([1.0, 2.0], requires_grad=True)
for step in range(2):
    loss = (w**2).sum()
    loss.backward()
    with torch.no_grad():
        w -= 0.1 * w.grad
    w.grad.zero_()
print(w)
