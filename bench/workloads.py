"""The programs the benchmarks time, shared by bench/engine.py and bench/service.py."""

from chainlens.examples.catalog import example

CHAIN = example("chain_rule").source

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
    """The LeNet example (forward, MSE loss, backward, one SGD step) at another batch size."""
    source = example("lenet").source
    for old in ("torch.randn(1, 1, 32, 32)", "torch.randn(1, 10)"):
        assert old in source
        source = source.replace(old, old.replace("(1,", f"({batch},"))
    return source


def rnn(steps: int = 500, hidden: int = 8) -> str:
    return RNN.replace("STEPS", str(steps)).replace("HIDDEN", str(hidden))
