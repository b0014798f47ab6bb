# title: Two-layer network with nn
# description: nn.Sequential(Linear, ReLU, Linear) with MSELoss, updated by hand from p.grad.
import torch
import torch.nn as nn

N, D_in, H, D_out = 8, 5, 4, 2
x = torch.randn(N, D_in)
y = torch.randn(N, D_out)
model = nn.Sequential(nn.Linear(D_in, H), nn.ReLU(), nn.Linear(H, D_out))
loss_fn = nn.MSELoss(reduction="sum")
learning_rate = 1e-2
for t in range(5):
    y_pred = model(x)
    loss = loss_fn(y_pred, y)
    print(t, round(loss.item(), 4))
    model.zero_grad()
    loss.backward()
    with torch.no_grad():
        for param in model.parameters():
            param -= learning_rate * param.grad
