# title: Gradient descent on f = w*x with autograd
# description: The same descent, with loss.backward(), torch.no_grad() and w.grad.zero_().
import torch

X = torch.tensor([1.0, 2.0, 3.0, 4.0])
Y = torch.tensor([2.0, 4.0, 6.0, 8.0])
w = torch.tensor(0.0, requires_grad=True)
lr = 0.01
for epoch in range(10):
    y_pred = w * X
    loss = ((y_pred - Y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= lr * w.grad
    w.grad.zero_()
    if epoch % 2 == 0:
        print(f"epoch {epoch + 1}: w = {w.item():.3f}, loss = {loss.item():.8f}")
