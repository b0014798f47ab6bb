"""Training loops with random initialisation and several backward passes, written by us
in the style of the tutorials and lectures each one names. In these a parameter's value
changes between passes, so each pass's numbers must be that pass's."""

from programs import program

TRAINING: dict[str, str] = {}


def training(name: str, source: str) -> None:
    program(name, source, into=TRAINING)


# d2l.ai, "Linear Regression Implementation from Scratch": minibatch SGD by hand.
training(
    "d2l_linreg_scratch",
    """
true_w = torch.tensor([2.0, -3.4])
X = torch.randn(12, 2)
y = X @ true_w + 4.2 + 0.01 * torch.randn(12)
w = torch.normal(0, 0.01, size=(2,), requires_grad=True)
b = torch.zeros(1, requires_grad=True)
for epoch in range(4):
    l = ((X @ w + b - y) ** 2 / 2).mean()
    l.backward()
    with torch.no_grad():
        w -= 0.1 * w.grad
        b -= 0.1 * b.grad
        w.grad.zero_()
        b.grad.zero_()
    print(f"epoch {epoch + 1}, loss {float(l):f}")
""",
)

# PyTorch, "Learning PyTorch with Examples": a third-order polynomial fitted with autograd.
training(
    "pt_polynomial_autograd",
    """
x = torch.linspace(-3.0, 3.0, 40)
y = torch.sin(x)
a = torch.randn((), requires_grad=True)
b = torch.randn((), requires_grad=True)
c = torch.randn((), requires_grad=True)
d = torch.randn((), requires_grad=True)
learning_rate = 1e-4
for t in range(5):
    y_pred = a + b * x + c * x ** 2 + d * x ** 3
    loss = (y_pred - y).pow(2).sum()
    loss.backward()
    with torch.no_grad():
        a -= learning_rate * a.grad
        b -= learning_rate * b.grad
        c -= learning_rate * c.grad
        d -= learning_rate * d.grad
        a.grad = None
        b.grad = None
        c.grad = None
        d.grad = None
""",
)

# PyTorch, "Learning PyTorch with Examples" (nn.Module): a custom module and optim.SGD.
training(
    "pt_module_sgd",
    """
class TwoLayerNet(nn.Module):
    def __init__(self, D_in, H, D_out):
        super().__init__()
        self.linear1 = nn.Linear(D_in, H)
        self.linear2 = nn.Linear(H, D_out)

    def forward(self, x):
        return self.linear2(self.linear1(x).clamp(min=0))

x = torch.randn(6, 4)
y = torch.randn(6, 2)
model = TwoLayerNet(4, 5, 2)
criterion = nn.MSELoss(reduction="sum")
optimizer = optim.SGD(model.parameters(), lr=1e-2)
for t in range(4):
    loss = criterion(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
""",
)

# PyTorch, "Optimizing Model Parameters": SGD with momentum on a small classifier.
training(
    "pt_sgd_momentum",
    """
model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
x = torch.randn(10, 5)
target = torch.randint(0, 3, (10,))
optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
for step in range(5):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), target)
    loss.backward()
    optimizer.step()
""",
)

# PyTorch, "Learning PyTorch with Examples" (optim): Adam on a two-layer net.
training(
    "pt_adam",
    """
model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 1))
x = torch.randn(8, 3)
y = torch.randn(8, 1)
optimizer = optim.Adam(model.parameters(), lr=1e-2)
for t in range(5):
    loss = F.mse_loss(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
""",
)

# d2l.ai, "Weight Decay": AdamW's decoupled decay.
training(
    "d2l_adamw",
    """
net = nn.Linear(6, 1)
X = torch.randn(9, 6)
Y = torch.randn(9, 1)
trainer = optim.AdamW(net.parameters(), lr=0.05, weight_decay=0.1)
for epoch in range(4):
    trainer.zero_grad()
    l = ((net(X) - Y) ** 2).mean()
    l.backward()
    trainer.step()
""",
)

# d2l.ai, "RMSProp": the optimizer on a tiny regression.
training(
    "d2l_rmsprop",
    """
w = torch.randn(3, requires_grad=True)
X = torch.randn(7, 3)
y = torch.randn(7)
opt = optim.RMSprop([w], lr=0.01, alpha=0.9)
for i in range(4):
    opt.zero_grad()
    loss = ((X @ w - y) ** 2).mean()
    loss.backward()
    opt.step()
""",
)

# d2l.ai, "Adagrad".
training(
    "d2l_adagrad",
    """
w = torch.randn(2, 2, requires_grad=True)
x = torch.randn(5, 2)
opt = optim.Adagrad([w], lr=0.1)
for i in range(4):
    opt.zero_grad()
    loss = (x @ w).tanh().pow(2).sum()
    loss.backward()
    opt.step()
""",
)

# A classic mistake (course notebooks): zero_grad forgotten, gradients pile up.
training(
    "mistake_no_zero_grad_by_hand",
    """
w = torch.randn(3, requires_grad=True)
x = torch.randn(4, 3)
y = torch.randn(4)
for step in range(4):
    loss = ((x @ w - y) ** 2).sum()
    loss.backward()
    with torch.no_grad():
        w -= 0.01 * w.grad
    print(step, w.grad)
""",
)

# The same mistake with an optimizer.
training(
    "mistake_no_zero_grad_optim",
    """
model = nn.Linear(4, 2)
x = torch.randn(5, 4)
y = torch.randn(5, 2)
opt = optim.SGD(model.parameters(), lr=0.05)
for step in range(4):
    loss = F.mse_loss(model(x), y)
    loss.backward()
    opt.step()
""",
)

# Karpathy's makemore, part 2 (MLP): an embedding table, tanh layer, cross-entropy and
# the manual update p.data += -lr * p.grad.
training(
    "makemore_mlp",
    """
X = torch.randint(0, 27, (16, 3))
Y = torch.randint(0, 27, (16,))
C = torch.randn((27, 2))
W1 = torch.randn((6, 10))
b1 = torch.randn(10)
W2 = torch.randn((10, 27))
b2 = torch.randn(27)
parameters = [C, W1, b1, W2, b2]
for p in parameters:
    p.requires_grad = True
for i in range(5):
    emb = C[X]
    h = torch.tanh(emb.view(-1, 6) @ W1 + b1)
    logits = h @ W2 + b2
    loss = F.cross_entropy(logits, Y)
    for p in parameters:
        p.grad = None
    loss.backward()
    for p in parameters:
        p.data += -0.1 * p.grad
print(loss.item())
""",
)

# Karpathy's micrograd lecture: one tanh neuron, trained by hand.
training(
    "micrograd_neuron",
    """
x = torch.tensor([2.0, 0.0])
w = torch.randn(2, requires_grad=True)
b = torch.randn(1, requires_grad=True)
for k in range(5):
    o = torch.tanh(x @ w + b)
    loss = (o - 1.0) ** 2
    loss = loss.sum()
    w.grad = None
    b.grad = None
    loss.backward()
    w.data += -0.05 * w.grad
    b.data += -0.05 * b.grad
""",
)

# d2l.ai, "Softmax Regression" / course logistic regression: BCE with logits.
training(
    "logistic_regression",
    """
X = torch.randn(20, 2)
y = (X[:, 0] + X[:, 1] > 0).float()
model = nn.Linear(2, 1)
loss_fn = nn.BCEWithLogitsLoss()
opt = optim.SGD(model.parameters(), lr=0.5)
for epoch in range(5):
    opt.zero_grad()
    loss = loss_fn(model(X).squeeze(1), y)
    loss.backward()
    opt.step()
""",
)

# PyTorch, "Training a Classifier" (60-minute blitz), shrunk: conv, pool, linear, Adam.
training(
    "blitz_cnn_adam",
    """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(2 * 3 * 3, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        return self.fc(torch.flatten(x, 1))

net = Net()
inputs = torch.randn(4, 1, 8, 8)
labels = torch.tensor([0, 2, 1, 0])
optimizer = optim.Adam(net.parameters(), lr=0.01)
for epoch in range(3):
    optimizer.zero_grad()
    loss = F.cross_entropy(net(inputs), labels)
    loss.backward()
    optimizer.step()
""",
)

# d2l.ai, "RNN from scratch" (concise): an RNN cell unrolled, trained with SGD.
training(
    "d2l_rnn_cell",
    """
cell = nn.RNNCell(3, 4)
head = nn.Linear(4, 1)
xs = torch.randn(5, 2, 3)
target = torch.randn(2, 1)
opt = optim.SGD(list(cell.parameters()) + list(head.parameters()), lr=0.1)
for epoch in range(3):
    h = torch.zeros(2, 4)
    for t in range(5):
        h = cell(xs[t], h)
    loss = F.mse_loss(head(h), target)
    opt.zero_grad()
    loss.backward()
    opt.step()
""",
)

# d2l.ai, "Batch Normalization" and "Dropout" in training mode, with SGD.
training(
    "d2l_batchnorm_dropout",
    """
net = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Dropout(0.3),
                    nn.Linear(6, 2))
X = torch.randn(8, 4)
y = torch.randint(0, 2, (8,))
opt = optim.SGD(net.parameters(), lr=0.1)
for epoch in range(4):
    opt.zero_grad()
    loss = F.cross_entropy(net(X), y)
    loss.backward()
    opt.step()
""",
)

# PyTorch, "How to adjust learning rate": StepLR around SGD.
training(
    "pt_steplr",
    """
model = nn.Linear(3, 1)
x = torch.randn(6, 3)
y = torch.randn(6, 1)
opt = optim.SGD(model.parameters(), lr=0.2)
sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
for epoch in range(5):
    opt.zero_grad()
    loss = F.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    sched.step()
""",
)

# Course notebooks on exploding gradients: clip_grad_norm_ before each step.
training(
    "clip_grad_norm",
    """
model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 1))
x = torch.randn(6, 4) * 10
y = torch.randn(6, 1) * 10
opt = optim.SGD(model.parameters(), lr=0.05)
for step in range(4):
    opt.zero_grad()
    loss = F.mse_loss(model(x), y)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    opt.step()
""",
)

# d2l.ai, "Weight Decay" from scratch: an L2 penalty added to the loss.
training(
    "d2l_l2_penalty",
    """
w = torch.randn(5, 1, requires_grad=True)
b = torch.zeros(1, requires_grad=True)
X = torch.randn(10, 5)
y = torch.randn(10, 1)
lambd = 3.0
for epoch in range(4):
    l = ((X @ w + b - y) ** 2).mean() + lambd * (w ** 2).sum() / 2
    l.backward()
    with torch.no_grad():
        for p in (w, b):
            p -= 0.01 * p.grad
            p.grad.zero_()
""",
)

# PyTorch, "Datasets & DataLoaders": shuffled mini-batches, two epochs.
training(
    "dataloader_epochs",
    """
from torch.utils.data import DataLoader, TensorDataset
X = torch.randn(12, 3)
Y = torch.randn(12, 1)
loader = DataLoader(TensorDataset(X, Y), batch_size=4, shuffle=True)
model = nn.Linear(3, 1)
opt = optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for xb, yb in loader:
        opt.zero_grad()
        loss = F.mse_loss(model(xb), yb)
        loss.backward()
        opt.step()
""",
)

# PyTorch autograd tutorial: backward twice through one graph with retain_graph=True.
training(
    "retain_graph_twice",
    """
w = torch.randn(3, requires_grad=True)
x = torch.randn(3)
y = (w * x).exp().sum()
y.backward(retain_graph=True)
first = w.grad.clone()
y.backward()
with torch.no_grad():
    w -= 0.1 * w.grad
z = (w * x).sin().sum()
w.grad = None
z.backward()
""",
)

# A long loop: more passes than are recorded step by step (the first 19 and the last).
training(
    "long_loop_truncated",
    """
w = torch.randn(2, requires_grad=True)
x = torch.randn(3, 2)
for step in range(25):
    loss = (x @ w).pow(2).mean()
    w.grad = None
    loss.backward()
    with torch.no_grad():
        w -= 0.1 * w.grad
""",
)
