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


#: A small LSTM, as the PyTorch "Sequence Models and LSTM Networks" tutorial sets one up:
#: a sequence of 20 steps, batch 4, 8 features into 16 hidden units, a linear read-out.
LSTM = """import torch
import torch.nn as nn

torch.manual_seed(0)
lstm = nn.LSTM(8, 16)
head = nn.Linear(16, 1)
x = torch.randn(20, 4, 8)
out, (h, c) = lstm(x)
loss = head(out).pow(2).mean()
loss.backward()
"""


def rnn(steps: int = 500, hidden: int = 8) -> str:
    return RNN.replace("STEPS", str(steps)).replace("HIDDEN", str(hidden))


#: Karpathy's makemore, part 2 (the MLP), as the lecture writes its training loop: a
#: character embedding looked up by indexing, a tanh layer, cross-entropy, mini-batches
#: drawn with a seeded generator, and manual SGD with p.data += -lr * p.grad. The words
#: are replaced by random 3-character contexts (the data loading is the file's).
MAKEMORE = """import torch
import torch.nn.functional as F

g = torch.Generator().manual_seed(2147483647)
Xtr = torch.randint(0, 27, (2000, 3), generator=g)
Ytr = torch.randint(0, 27, (2000,), generator=g)
C = torch.randn((27, 10), generator=g)
W1 = torch.randn((30, 200), generator=g)
b1 = torch.randn(200, generator=g)
W2 = torch.randn((200, 27), generator=g)
b2 = torch.randn(27, generator=g)
parameters = [C, W1, b1, W2, b2]
for p in parameters:
    p.requires_grad = True
lossi = []
for i in range(STEPS):
    ix = torch.randint(0, Xtr.shape[0], (32,), generator=g)
    emb = C[Xtr[ix]]
    h = torch.tanh(emb.view(-1, 30) @ W1 + b1)
    logits = h @ W2 + b2
    loss = F.cross_entropy(logits, Ytr[ix])
    for p in parameters:
        p.grad = None
    loss.backward()
    lr = 0.1 if i < STEPS // 2 else 0.01
    for p in parameters:
        p.data += -lr * p.grad
    lossi.append(loss.log10().item())
print(loss.item())
"""


def makemore(steps: int = 1000) -> str:
    return MAKEMORE.replace("STEPS", str(steps))
