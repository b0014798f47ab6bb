"""The programs the benchmarks time, shared by bench/engine.py and bench/service.py."""

from chainlens.examples.catalog import example

CHAIN = example("chain_rule").source

LENET = """import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


net = Net()
x = torch.randn(BATCH, 1, 32, 32)
target = torch.randn(BATCH, 10)
loss = F.mse_loss(net(x), target)
loss.backward()
"""

MLP = """import torch
import torch.nn as nn
import torch.nn.functional as F

X = torch.randn(50000, 784)
Y = torch.randn(50000, 1)
model = nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 1))
loss = F.mse_loss(model(X), Y)
loss.backward()
"""

RNN = """import torch
import torch.nn as nn

W = nn.Linear(HIDDEN, HIDDEN)
U = nn.Linear(4, HIDDEN)
xs = torch.randn(STEPS, 1, 4)
h = torch.zeros(1, HIDDEN)
for t in range(STEPS):
    h = torch.tanh(W(h) + U(xs[t]))
loss = h.sum()
loss.backward()
"""


def lenet(batch: int) -> str:
    return LENET.replace("BATCH", str(batch))


def rnn(steps: int = 500, hidden: int = 8) -> str:
    return RNN.replace("STEPS", str(steps)).replace("HIDDEN", str(hidden))
