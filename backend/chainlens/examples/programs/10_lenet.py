# title: LeNet-style CNN with MSE loss
# description: conv -> relu -> max_pool twice, then three Linear layers; one SGD step.
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


net = Net()
optimizer = optim.SGD(net.parameters(), lr=0.01)
input = torch.randn(1, 1, 32, 32)
target = torch.randn(1, 10)
criterion = nn.MSELoss()
optimizer.zero_grad()
output = net(input)
loss = criterion(output, target)
loss.backward()
print("conv1.bias.grad after backward:", net.conv1.bias.grad)
optimizer.step()
