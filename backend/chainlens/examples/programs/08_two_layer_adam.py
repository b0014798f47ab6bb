# title: Two-layer network with optim.Adam
# description: The same network written as an nn.Module class, trained with Adam.
import torch
import torch.nn as nn
import torch.optim as optim


class TwoLayerNet(nn.Module):
    def __init__(self, D_in, H, D_out):
        super().__init__()
        self.fc1 = nn.Linear(D_in, H)
        self.fc2 = nn.Linear(H, D_out)

    def forward(self, x):
        h = self.fc1(x).clamp(min=0)
        return self.fc2(h)


x = torch.randn(8, 5)
y = torch.randn(8, 2)
model = TwoLayerNet(5, 4, 2)
optimizer = optim.Adam(model.parameters(), lr=1e-2)
for t in range(5):
    loss = nn.functional.mse_loss(model(x), y)
    print(t, round(loss.item(), 4))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
