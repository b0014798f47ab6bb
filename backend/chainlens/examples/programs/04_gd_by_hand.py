# title: Gradient descent on f = w*x, gradient by hand
# description: The loss (w*x - y)^2 and its derivative 2x(wx - y) written out, no autograd.
import torch

X = torch.tensor([1.0, 2.0, 3.0, 4.0])
Y = torch.tensor([2.0, 4.0, 6.0, 8.0])
w = 0.0
lr = 0.01
for epoch in range(10):
    y_pred = w * X
    loss = ((y_pred - Y) ** 2).mean()
    dw = (2 * X * (y_pred - Y)).mean()
    w = w - lr * dw
    if epoch % 2 == 0:
        print(f"epoch {epoch + 1}: w = {float(w):.3f}, loss = {loss.item():.8f}")
print(f"prediction for f(5) = {float(w * 5):.3f}")
