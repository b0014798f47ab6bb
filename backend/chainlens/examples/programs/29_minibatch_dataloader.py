# title: Mini-batches with a DataLoader
# description: Each batch is a backward pass of its own; zero_grad keeps them from adding up.
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
X = torch.randn(32, 2)
y = X @ torch.tensor([[2.0], [-1.0]]) + 0.5
loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True)
model = nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(3):
    for xb, yb in loader:
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(xb), yb)
        loss.backward()
        opt.step()
    print(f"epoch {epoch}: loss {loss.item():.4f}")
print(model.weight.data, model.bias.data)
