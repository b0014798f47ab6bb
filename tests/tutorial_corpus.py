"""Programs in the style of the code people learn backpropagation from, written by us:
each names the tutorial, lecture or book it follows and what it exercises. The data
loading of the originals is replaced by small synthetic tensors. test_tutorial_corpus.py
runs each in chainlens and in plain Python + torch and compares everything.
"""

TUTORIALS: dict[str, str] = {}


def tutorial(name: str, source: str) -> None:
    assert name not in TUTORIALS
    TUTORIALS[name] = source.strip("\n") + "\n"


# PyTorch, "Learning PyTorch with Examples" — numpy-style: the polynomial fitted by
# hand-written gradients, in tensors.
tutorial(
    "lpwe_tensors_manual_grad",
    """
import torch
import math

dtype = torch.float
x = torch.linspace(-math.pi, math.pi, 200, dtype=dtype)
y = torch.sin(x)
a = torch.randn((), dtype=dtype)
b = torch.randn((), dtype=dtype)
c = torch.randn((), dtype=dtype)
d = torch.randn((), dtype=dtype)
learning_rate = 1e-6
for t in range(50):
    y_pred = a + b * x + c * x ** 2 + d * x ** 3
    loss = (y_pred - y).pow(2).sum().item()
    if t % 10 == 9:
        print(t, loss)
    grad_y_pred = 2.0 * (y_pred - y)
    grad_a = grad_y_pred.sum()
    grad_b = (grad_y_pred * x).sum()
    grad_c = (grad_y_pred * x ** 2).sum()
    grad_d = (grad_y_pred * x ** 3).sum()
    a -= learning_rate * grad_a
    b -= learning_rate * grad_b
    c -= learning_rate * grad_c
    d -= learning_rate * grad_d
print(f'Result: y = {a.item()} + {b.item()} x + {c.item()} x^2 + {d.item()} x^3')
""",
)

# PyTorch, "Learning PyTorch with Examples" — the custom autograd Function
# LegendrePolynomial3 with ctx.save_for_backward.
tutorial(
    "lpwe_legendre_function",
    """
import torch
import math

class LegendrePolynomial3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)

x = torch.linspace(-math.pi, math.pi, 100)
y = torch.sin(x)
a = torch.full((), 0.0, requires_grad=True)
b = torch.full((), -1.0, requires_grad=True)
c = torch.full((), 0.0, requires_grad=True)
d = torch.full((), 0.3, requires_grad=True)
learning_rate = 5e-6
for t in range(20):
    P3 = LegendrePolynomial3.apply
    y_pred = a + b * P3(c + d * x)
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
print(loss.item())
""",
)

# PyTorch, "Learning PyTorch with Examples" — nn.Sequential with a Flatten and a
# third-order feature map built with pow and unsqueeze.
tutorial(
    "lpwe_nn_sequential",
    """
import torch
import math

x = torch.linspace(-math.pi, math.pi, 100)
y = torch.sin(x)
p = torch.tensor([1, 2, 3])
xx = x.unsqueeze(-1).pow(p)
model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))
loss_fn = torch.nn.MSELoss(reduction='sum')
learning_rate = 1e-6
for t in range(30):
    y_pred = model(xx)
    loss = loss_fn(y_pred, y)
    model.zero_grad()
    loss.backward()
    with torch.no_grad():
        for param in model.parameters():
            param -= learning_rate * param.grad
linear_layer = model[0]
print(f'y = {linear_layer.bias.item()} + {linear_layer.weight[:, 0].item()} x')
""",
)

# PyTorch, "Learning PyTorch with Examples" — control flow and weight sharing: a module
# whose forward picks a random number of layers with random.randint.
tutorial(
    "lpwe_dynamic_net",
    """
import random
import torch
import math

class DynamicNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.randn(()))
        self.b = torch.nn.Parameter(torch.randn(()))
        self.c = torch.nn.Parameter(torch.randn(()))
        self.d = torch.nn.Parameter(torch.randn(()))
        self.e = torch.nn.Parameter(torch.randn(()))

    def forward(self, x):
        y = self.a + self.b * x + self.c * x ** 2 + self.d * x ** 3
        for exp in range(4, random.randint(4, 6)):
            y = y + self.e * x ** exp
        return y

    def string(self):
        return f'y = {self.a.item()} + {self.b.item()} x + ... ? x^5'

x = torch.linspace(-math.pi, math.pi, 100)
y = torch.sin(x)
model = DynamicNet()
criterion = torch.nn.MSELoss(reduction='sum')
optimizer = torch.optim.SGD(model.parameters(), lr=1e-8, momentum=0.9)
for t in range(10):
    y_pred = model(x)
    loss = criterion(y_pred, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(model.string())
""",
)

# PyTorch, "Automatic Differentiation with torch.autograd": a one-layer net, requires_grad,
# grad_fn, gradients, detach, and the Jacobian-vector product with retain_graph.
tutorial(
    "autograd_tutorial",
    """
import torch

x = torch.ones(5)
y = torch.zeros(3)
w = torch.randn(5, 3, requires_grad=True)
b = torch.randn(3, requires_grad=True)
z = torch.matmul(x, w) + b
loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
print(f"Gradient function for z = {z.grad_fn}")
print(f"Gradient function for loss = {loss.grad_fn}")
loss.backward()
print(w.grad)
print(b.grad)
z = torch.matmul(x, w) + b
print(z.requires_grad)
with torch.no_grad():
    z = torch.matmul(x, w) + b
print(z.requires_grad)
z_det = (torch.matmul(x, w) + b).detach()
print(z_det.requires_grad)
inp = torch.eye(4, 5, requires_grad=True)
out = (inp + 1).pow(2).t()
out.backward(torch.ones_like(out), retain_graph=True)
print(f"First call\\n{inp.grad}")
out.backward(torch.ones_like(out), retain_graph=True)
print(f"\\nSecond call\\n{inp.grad}")
inp.grad.zero_()
out.backward(torch.ones_like(out), retain_graph=True)
print(f"\\nCall after zeroing gradients\\n{inp.grad}")
""",
)

# PyTorch, "A Gentle Introduction to torch.autograd" (60-minute blitz): Q = 3a^3 - b^2 with
# an external gradient, and freezing a model's layers.
tutorial(
    "blitz_autograd",
    """
import torch
from torch import nn, optim

a = torch.tensor([2., 3.], requires_grad=True)
b = torch.tensor([6., 4.], requires_grad=True)
Q = 3 * a ** 3 - b ** 2
external_grad = torch.tensor([1., 1.])
Q.backward(gradient=external_grad)
print(9 * a ** 2 == a.grad)
print(-2 * b == b.grad)
x = torch.rand(5, 5)
y = torch.rand(5, 5)
z = torch.rand((5, 5), requires_grad=True)
a2 = x + y
print(f"Does `a` require gradients?: {a2.requires_grad}")
b2 = x + z
print(f"Does `b` require gradients?: {b2.requires_grad}")
model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))
for param in model.parameters():
    param.requires_grad = False
model[2] = nn.Linear(8, 2)
optimizer = optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
out = model(torch.rand(3, 8)).sum()
out.backward()
optimizer.step()
print(model[0].weight.grad is None, model[2].weight.grad.shape)
""",
)

# PyTorch, "Neural Networks" (60-minute blitz): LeNet's Net class, num_flat_features, the
# loss, zero_grad and an SGD step.
tutorial(
    "blitz_neural_networks",
    """
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, input):
        c1 = F.relu(self.conv1(input))
        s2 = F.max_pool2d(c1, (2, 2))
        c3 = F.relu(self.conv2(s2))
        s4 = F.max_pool2d(c3, 2)
        s4 = torch.flatten(s4, 1)
        f5 = F.relu(self.fc1(s4))
        f6 = F.relu(self.fc2(f5))
        return self.fc3(f6)

net = Net()
print(net)
params = list(net.parameters())
print(len(params), params[0].size())
input = torch.randn(1, 1, 32, 32)
out = net(input)
target = torch.randn(10).view(1, -1)
criterion = nn.MSELoss()
loss = criterion(out, target)
print(loss.grad_fn)
net.zero_grad()
print('conv1.bias.grad before backward', net.conv1.bias.grad)
loss.backward()
print('conv1.bias.grad after backward', net.conv1.bias.grad)
optimizer = optim.SGD(net.parameters(), lr=0.01)
optimizer.step()
""",
)

# PyTorch, "What is torch.nn really?": logistic regression from scratch with a
# log_softmax written by hand, nll, accuracy, then refactored with nn.Module and optim.
tutorial(
    "what_is_torch_nn",
    """
import math
import torch
import torch.nn.functional as F
from torch import nn, optim

bs = 16
x_train = torch.randn(64, 784)
y_train = torch.randint(0, 10, (64,))
n, c = x_train.shape
weights = torch.randn(784, 10) / math.sqrt(784)
weights.requires_grad_()
bias = torch.zeros(10, requires_grad=True)

def log_softmax(x):
    return x - x.exp().sum(-1).log().unsqueeze(-1)

def model(xb):
    return log_softmax(xb @ weights + bias)

def nll(input, target):
    return -input[range(target.shape[0]), target].mean()

def accuracy(out, yb):
    preds = torch.argmax(out, dim=1)
    return (preds == yb).float().mean()

loss_func = nll
lr = 0.5
for epoch in range(2):
    for i in range((n - 1) // bs + 1):
        start_i = i * bs
        end_i = start_i + bs
        xb = x_train[start_i:end_i]
        yb = y_train[start_i:end_i]
        pred = model(xb)
        loss = loss_func(pred, yb)
        loss.backward()
        with torch.no_grad():
            weights -= weights.grad * lr
            bias -= bias.grad * lr
            weights.grad.zero_()
            bias.grad.zero_()
print(loss_func(model(x_train[:bs]), y_train[:bs]), accuracy(model(x_train[:bs]), y_train[:bs]))

class Mnist_Logistic(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(784, 10)

    def forward(self, xb):
        return self.lin(xb)

model2 = Mnist_Logistic()
opt = optim.SGD(model2.parameters(), lr=lr)
for epoch in range(2):
    for i in range((n - 1) // bs + 1):
        xb = x_train[i * bs: i * bs + bs]
        yb = y_train[i * bs: i * bs + bs]
        loss = F.cross_entropy(model2(xb), yb)
        loss.backward()
        opt.step()
        opt.zero_grad()
print(F.cross_entropy(model2(x_train[:bs]), y_train[:bs]))
""",
)

# PyTorch, "What is torch.nn really?": the fit/loss_batch/get_data refactoring with
# zip(*[...]) and numpy, and a Lambda module of the program's own.
tutorial(
    "what_is_torch_nn_fit",
    """
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.utils.data import TensorDataset, DataLoader

class Lambda(nn.Module):
    def __init__(self, func):
        super().__init__()
        self.func = func

    def forward(self, x):
        return self.func(x)

def preprocess(x):
    return x.view(-1, 1, 8, 8)

def loss_batch(model, loss_func, xb, yb, opt=None):
    loss = loss_func(model(xb), yb)
    if opt is not None:
        loss.backward()
        opt.step()
        opt.zero_grad()
    return loss.item(), len(xb)

def fit(epochs, model, loss_func, opt, train_dl, valid_dl):
    for epoch in range(epochs):
        model.train()
        for xb, yb in train_dl:
            loss_batch(model, loss_func, xb, yb, opt)
        model.eval()
        with torch.no_grad():
            losses, nums = zip(*[loss_batch(model, loss_func, xb, yb) for xb, yb in valid_dl])
        val_loss = np.sum(np.multiply(losses, nums)) / np.sum(nums)
        print(epoch, round(float(val_loss), 5))

x_train, y_train = torch.randn(48, 64), torch.randint(0, 10, (48,))
x_valid, y_valid = torch.randn(16, 64), torch.randint(0, 10, (16,))
train_dl = DataLoader(TensorDataset(x_train, y_train), batch_size=16, shuffle=True)
valid_dl = DataLoader(TensorDataset(x_valid, y_valid), batch_size=32)
model = nn.Sequential(
    Lambda(preprocess),
    nn.Conv2d(1, 4, kernel_size=3, stride=2, padding=1), nn.ReLU(),
    nn.AdaptiveAvgPool2d(1),
    Lambda(lambda x: x.view(x.size(0), -1)),
    nn.Linear(4, 10),
)
opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
fit(2, model, F.cross_entropy, opt, train_dl, valid_dl)
""",
)

# PyTorch, "Double Backward with Custom Functions": a Function whose backward is itself
# differentiable, checked with gradcheck and gradgradcheck.
tutorial(
    "double_backward_custom",
    """
import torch

class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 2

    @staticmethod
    def backward(ctx, grad_out):
        x, = ctx.saved_tensors
        return grad_out * 2 * x

x = torch.rand(3, 3, requires_grad=True, dtype=torch.double)
print(torch.autograd.gradcheck(Square.apply, x))
print(torch.autograd.gradgradcheck(Square.apply, x))
y = Square.apply(x).sum()
g, = torch.autograd.grad(y, x, create_graph=True)
g.sum().backward()
print(x.grad)
""",
)

# PyTorch, "Double Backward with Custom Functions": exp saving its output, and a sinh
# whose backward uses intermediate results (the tutorial's _grad_out_negexp names).
tutorial(
    "double_backward_saved_intermediates",
    """
import torch

class Exp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        result = torch.exp(x)
        ctx.save_for_backward(result)
        return result

    @staticmethod
    def backward(ctx, grad_out):
        result, = ctx.saved_tensors
        return result * grad_out

class Sinh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        expx = torch.exp(x)
        expnegx = torch.exp(-x)
        ctx.save_for_backward(expx, expnegx)
        return (expx - expnegx) / 2, expx, expnegx

    @staticmethod
    def backward(ctx, grad_out, _grad_out_exp, _grad_out_negexp):
        expx, expnegx = ctx.saved_tensors
        grad_input = grad_out * (expx + expnegx) / 2
        grad_input += _grad_out_exp * expx
        grad_input -= _grad_out_negexp * expnegx
        return grad_input

def sinh(x):
    return Sinh.apply(x)[0]

x = torch.rand(3, 3, requires_grad=True, dtype=torch.double)
print(torch.autograd.gradcheck(Exp.apply, x))
print(torch.autograd.gradcheck(sinh, x))
out = sinh(x).sum()
out.backward()
print(x.grad)
""",
)

# Karpathy, "The spelled-out intro to neural networks and backpropagation" (micrograd):
# the neuron worked by hand, then the same neuron in torch with double tensors.
tutorial(
    "micrograd_neuron_in_torch",
    """
import torch

x1 = torch.Tensor([2.0]).double()
x1.requires_grad = True
x2 = torch.Tensor([0.0]).double()
x2.requires_grad = True
w1 = torch.Tensor([-3.0]).double()
w1.requires_grad = True
w2 = torch.Tensor([1.0]).double()
w2.requires_grad = True
b = torch.Tensor([6.8813735870195432]).double()
b.requires_grad = True
n = x1 * w1 + x2 * w2 + b
o = torch.tanh(n)
print(o.data.item())
o.backward()
print('---')
print('x2', x2.grad.item())
print('w2', w2.grad.item())
print('x1', x1.grad.item())
print('w1', w1.grad.item())
""",
)

# Karpathy's micrograd, nn.py: Neuron, Layer and MLP classes of the program's own built on
# a scalar Value, trained on four examples.
tutorial(
    "micrograd_mlp",
    """
import random
import math

class Value:
    def __init__(self, data, _children=(), _op=''):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = set(_children)

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), '+')
        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), '*')
        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, other):
        out = Value(self.data ** other, (self,), f'**{other}')
        def _backward():
            self.grad += other * self.data ** (other - 1) * out.grad
        out._backward = _backward
        return out

    def tanh(self):
        t = math.tanh(self.data)
        out = Value(t, (self,), 'tanh')
        def _backward():
            self.grad += (1 - t ** 2) * out.grad
        out._backward = _backward
        return out

    def backward(self):
        topo, visited = [], set()
        def build(v):
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build(child)
                topo.append(v)
        build(self)
        self.grad = 1.0
        for node in reversed(topo):
            node._backward()

    def __radd__(self, other):
        return self + other

    def __rmul__(self, other):
        return self * other

    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        return self + (-other)

class Neuron:
    def __init__(self, nin):
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(random.uniform(-1, 1))

    def __call__(self, x):
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return act.tanh()

    def parameters(self):
        return self.w + [self.b]

class Layer:
    def __init__(self, nin, nout):
        self.neurons = [Neuron(nin) for _ in range(nout)]

    def __call__(self, x):
        outs = [n(x) for n in self.neurons]
        return outs[0] if len(outs) == 1 else outs

    def parameters(self):
        return [p for neuron in self.neurons for p in neuron.parameters()]

class MLP:
    def __init__(self, nin, nouts):
        sz = [nin] + nouts
        self.layers = [Layer(sz[i], sz[i + 1]) for i in range(len(nouts))]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

random.seed(1337)
n = MLP(3, [4, 4, 1])
xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
ys = [1.0, -1.0, -1.0, 1.0]
for k in range(10):
    ypred = [n(x) for x in xs]
    loss = sum((yout - ygt) ** 2 for ygt, yout in zip(ys, ypred))
    for p in n.parameters():
        p.grad = 0.0
    loss.backward()
    for p in n.parameters():
        p.data += -0.1 * p.grad
    print(k, round(loss.data, 6))
print(len(n.parameters()))
""",
)

# Karpathy's makemore, part 1: bigram counts in a tensor N, a seeded generator, sampling
# with torch.multinomial, and the negative log likelihood.
tutorial(
    "makemore_bigram_counts",
    """
import torch

words = ['emma', 'olivia', 'ava', 'isabella', 'sophia', 'charlotte', 'mia', 'amelia']
chars = sorted(list(set(''.join(words))))
stoi = {s: i + 1 for i, s in enumerate(chars)}
stoi['.'] = 0
itos = {i: s for s, i in stoi.items()}
V = len(stoi)
N = torch.zeros((V, V), dtype=torch.int32)
for w in words:
    chs = ['.'] + list(w) + ['.']
    for ch1, ch2 in zip(chs, chs[1:]):
        N[stoi[ch1], stoi[ch2]] += 1
P = (N + 1).float()
P /= P.sum(1, keepdims=True)
g = torch.Generator().manual_seed(2147483647)
for i in range(3):
    out = []
    ix = 0
    while True:
        p = P[ix]
        ix = torch.multinomial(p, num_samples=1, replacement=True, generator=g).item()
        out.append(itos[ix])
        if ix == 0:
            break
    print(''.join(out))
log_likelihood = 0.0
n = 0
for w in words:
    chs = ['.'] + list(w) + ['.']
    for ch1, ch2 in zip(chs, chs[1:]):
        log_likelihood += torch.log(P[stoi[ch1], stoi[ch2]])
        n += 1
print(f'{-log_likelihood / n=}')
""",
)

# Karpathy's makemore, part 1: the same bigram model as a one-layer net trained by gradient
# descent on one-hot inputs, with W.grad = None and W.data += -lr * W.grad.
tutorial(
    "makemore_bigram_net",
    """
import torch
import torch.nn.functional as F

words = ['emma', 'olivia', 'ava', 'isabella', 'sophia']
chars = sorted(list(set(''.join(words))))
stoi = {s: i + 1 for i, s in enumerate(chars)}
stoi['.'] = 0
V = len(stoi)
xs, ys = [], []
for w in words:
    chs = ['.'] + list(w) + ['.']
    for ch1, ch2 in zip(chs, chs[1:]):
        xs.append(stoi[ch1])
        ys.append(stoi[ch2])
xs = torch.tensor(xs)
ys = torch.tensor(ys)
num = xs.nelement()
g = torch.Generator().manual_seed(2147483647)
W = torch.randn((V, V), generator=g, requires_grad=True)
for k in range(20):
    xenc = F.one_hot(xs, num_classes=V).float()
    logits = xenc @ W
    counts = logits.exp()
    probs = counts / counts.sum(1, keepdims=True)
    loss = -probs[torch.arange(num), ys].log().mean() + 0.01 * (W ** 2).mean()
    W.grad = None
    loss.backward()
    W.data += -50 * W.grad
print(loss.item())
""",
)

# Karpathy's makemore, part 3 (activations and BatchNorm): Kaiming-style init scales,
# a hand-written batch norm with running statistics updated under no_grad, and
# retain_grad on every intermediate.
tutorial(
    "makemore_batchnorm_by_hand",
    """
import torch
import torch.nn.functional as F

g = torch.Generator().manual_seed(2147483647)
n_embd, n_hidden, block_size, vocab_size = 4, 16, 3, 27
Xb = torch.randint(0, vocab_size, (32, block_size), generator=g)
Yb = torch.randint(0, vocab_size, (32,), generator=g)
C = torch.randn((vocab_size, n_embd), generator=g)
W1 = torch.randn((n_embd * block_size, n_hidden), generator=g) * (5 / 3) / ((n_embd * block_size) ** 0.5)
W2 = torch.randn((n_hidden, vocab_size), generator=g) * 0.01
b2 = torch.randn(vocab_size, generator=g) * 0
bngain = torch.ones((1, n_hidden))
bnbias = torch.zeros((1, n_hidden))
bnmean_running = torch.zeros((1, n_hidden))
bnstd_running = torch.ones((1, n_hidden))
parameters = [C, W1, W2, b2, bngain, bnbias]
print(sum(p.nelement() for p in parameters))
for p in parameters:
    p.requires_grad = True
for i in range(5):
    emb = C[Xb]
    embcat = emb.view(emb.shape[0], -1)
    hpreact = embcat @ W1
    bnmeani = hpreact.mean(0, keepdim=True)
    bnstdi = hpreact.std(0, keepdim=True)
    hpreact = bngain * (hpreact - bnmeani) / bnstdi + bnbias
    with torch.no_grad():
        bnmean_running = 0.999 * bnmean_running + 0.001 * bnmeani
        bnstd_running = 0.999 * bnstd_running + 0.001 * bnstdi
    h = torch.tanh(hpreact)
    logits = h @ W2 + b2
    loss = F.cross_entropy(logits, Yb)
    for t in [emb, embcat, hpreact, h, logits]:
        t.retain_grad()
    for p in parameters:
        p.grad = None
    loss.backward()
    for p in parameters:
        p.data += -0.1 * p.grad
print(loss.item(), h.grad.abs().mean().item())
""",
)

# Karpathy's makemore, part 4 ("Becoming a backprop ninja"): the cross-entropy's gradient
# written by hand, compared with autograd's through a cmp helper.
tutorial(
    "makemore_backprop_ninja",
    """
import torch
import torch.nn.functional as F

def cmp(s, dt, t):
    ex = torch.all(dt == t.grad).item()
    app = torch.allclose(dt, t.grad)
    maxdiff = (dt - t.grad).abs().max().item()
    print(f'{s:15s} | exact: {str(ex):5s} | approximate: {str(app):5s} | maxdiff: {maxdiff}')

g = torch.Generator().manual_seed(2147483647)
n = 8
logits = torch.randn((n, 27), generator=g, requires_grad=True)
Yb = torch.randint(0, 27, (n,), generator=g)
logit_maxes = logits.max(1, keepdim=True).values
norm_logits = logits - logit_maxes
counts = norm_logits.exp()
counts_sum = counts.sum(1, keepdims=True)
counts_sum_inv = counts_sum ** -1
probs = counts * counts_sum_inv
logprobs = probs.log()
loss = -logprobs[range(n), Yb].mean()
for t in [logprobs, probs, counts_sum_inv, counts_sum, counts, norm_logits, logit_maxes]:
    t.retain_grad()
loss.backward()
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs
cmp('logprobs', dlogprobs, logprobs)
cmp('probs', dprobs, probs)
dlogits = F.softmax(logits, 1)
dlogits[range(n), Yb] -= 1
dlogits /= n
cmp('logits', dlogits, logits)
""",
)

# Karpathy's makemore, part 5 (WaveNet): torch.nn-like classes of the program's own
# (Linear, BatchNorm1d, Tanh, Embedding, FlattenConsecutive, Sequential) with __call__ and
# parameters(), in plain Python classes.
tutorial(
    "makemore_wavenet_classes",
    """
import torch
import torch.nn.functional as F

class Linear:
    def __init__(self, fan_in, fan_out, bias=True):
        self.weight = torch.randn((fan_in, fan_out)) / fan_in ** 0.5
        self.bias = torch.zeros(fan_out) if bias else None

    def __call__(self, x):
        self.out = x @ self.weight
        if self.bias is not None:
            self.out += self.bias
        return self.out

    def parameters(self):
        return [self.weight] + ([] if self.bias is None else [self.bias])

class BatchNorm1d:
    def __init__(self, dim, eps=1e-5, momentum=0.1):
        self.eps = eps
        self.momentum = momentum
        self.training = True
        self.gamma = torch.ones(dim)
        self.beta = torch.zeros(dim)
        self.running_mean = torch.zeros(dim)
        self.running_var = torch.ones(dim)

    def __call__(self, x):
        if self.training:
            dim = 0 if x.ndim == 2 else (0, 1)
            xmean = x.mean(dim, keepdim=True)
            xvar = x.var(dim, keepdim=True)
        else:
            xmean, xvar = self.running_mean, self.running_var
        xhat = (x - xmean) / torch.sqrt(xvar + self.eps)
        self.out = self.gamma * xhat + self.beta
        if self.training:
            with torch.no_grad():
                self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * xmean
                self.running_var = (1 - self.momentum) * self.running_var + self.momentum * xvar
        return self.out

    def parameters(self):
        return [self.gamma, self.beta]

class Tanh:
    def __call__(self, x):
        self.out = torch.tanh(x)
        return self.out

    def parameters(self):
        return []

class Embedding:
    def __init__(self, num_embeddings, embedding_dim):
        self.weight = torch.randn((num_embeddings, embedding_dim))

    def __call__(self, IX):
        self.out = self.weight[IX]
        return self.out

    def parameters(self):
        return [self.weight]

class FlattenConsecutive:
    def __init__(self, n):
        self.n = n

    def __call__(self, x):
        B, T, C = x.shape
        x = x.view(B, T // self.n, C * self.n)
        if x.shape[1] == 1:
            x = x.squeeze(1)
        self.out = x
        return self.out

    def parameters(self):
        return []

class Sequential:
    def __init__(self, layers):
        self.layers = layers

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        self.out = x
        return self.out

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

torch.manual_seed(42)
model = Sequential([
    Embedding(27, 4), FlattenConsecutive(2), Linear(8, 16, bias=False), BatchNorm1d(16), Tanh(),
    FlattenConsecutive(2), Linear(32, 16, bias=False), BatchNorm1d(16), Tanh(),
    Linear(16, 27),
])
with torch.no_grad():
    model.layers[-1].weight *= 0.1
parameters = model.parameters()
print(sum(p.nelement() for p in parameters))
for p in parameters:
    p.requires_grad = True
Xb = torch.randint(0, 27, (32, 4))
Yb = torch.randint(0, 27, (32,))
for i in range(4):
    logits = model(Xb)
    loss = F.cross_entropy(logits, Yb)
    for p in parameters:
        p.grad = None
    loss.backward()
    for p in parameters:
        p.data += -0.1 * p.grad
for layer in model.layers:
    print(tuple(layer.out.shape))
print(loss.item())
""",
)

# d2l.ai, "Automatic Differentiation": x.grad.zero_(), backward of a non-scalar via sum,
# detach to cut the graph, and gradients through Python control flow.
tutorial(
    "d2l_autograd",
    """
import torch

x = torch.arange(4.0)
x.requires_grad_(True)
y = 2 * torch.dot(x, x)
y.backward()
print(x.grad, x.grad == 4 * x)
x.grad.zero_()
y = x.sum()
y.backward()
print(x.grad)
x.grad.zero_()
y = x * x
y.backward(gradient=torch.ones(len(y)))
print(x.grad)
x.grad.zero_()
y = x * x
u = y.detach()
z = u * x
z.sum().backward()
print(x.grad == u)

def f(a):
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    if b.sum() > 0:
        c = b
    else:
        c = 100 * b
    return c

a = torch.randn(size=(), requires_grad=True)
d = f(a)
d.backward()
print(a.grad == d / a)
""",
)

# d2l.ai, "Linear Regression Implementation from Scratch": synthetic_data, data_iter (a
# generator), linreg, squared_loss and sgd as separate functions.
tutorial(
    "d2l_linreg_from_scratch",
    """
import random
import torch

def synthetic_data(w, b, num_examples):
    X = torch.normal(0, 1, (num_examples, len(w)))
    y = torch.matmul(X, w) + b
    y += torch.normal(0, 0.01, y.shape)
    return X, y.reshape((-1, 1))

def data_iter(batch_size, features, labels):
    num_examples = len(features)
    indices = list(range(num_examples))
    random.shuffle(indices)
    for i in range(0, num_examples, batch_size):
        batch_indices = torch.tensor(indices[i: min(i + batch_size, num_examples)])
        yield features[batch_indices], labels[batch_indices]

def linreg(X, w, b):
    return torch.matmul(X, w) + b

def squared_loss(y_hat, y):
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2

def sgd(params, lr, batch_size):
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()

true_w = torch.tensor([2, -3.4])
true_b = 4.2
features, labels = synthetic_data(true_w, true_b, 100)
w = torch.normal(0, 0.01, size=(2, 1), requires_grad=True)
b = torch.zeros(1, requires_grad=True)
lr, num_epochs, batch_size = 0.03, 3, 10
net, loss = linreg, squared_loss
for epoch in range(num_epochs):
    for X, y in data_iter(batch_size, features, labels):
        l = loss(net(X, w, b), y)
        l.sum().backward()
        sgd([w, b], lr, batch_size)
    with torch.no_grad():
        train_l = loss(net(features, w, b), labels)
        print(f'epoch {epoch + 1}, loss {float(train_l.mean()):f}')
print(f'error in estimating w: {true_w - w.reshape(true_w.shape)}')
""",
)

# d2l.ai, "Softmax Regression Implementation from Scratch": an Accumulator class of the
# program's own with __getitem__, softmax and cross_entropy by hand, and accuracy.
tutorial(
    "d2l_softmax_from_scratch",
    """
import torch

class Accumulator:
    def __init__(self, n):
        self.data = [0.0] * n

    def add(self, *args):
        self.data = [a + float(b) for a, b in zip(self.data, args)]

    def reset(self):
        self.data = [0.0] * len(self.data)

    def __getitem__(self, idx):
        return self.data[idx]

def softmax(X):
    X_exp = torch.exp(X)
    partition = X_exp.sum(1, keepdim=True)
    return X_exp / partition

def cross_entropy(y_hat, y):
    return -torch.log(y_hat[range(len(y_hat)), y])

def accuracy(y_hat, y):
    if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(axis=1)
    cmp = y_hat.type(y.dtype) == y
    return float(cmp.type(y.dtype).sum())

num_inputs, num_outputs = 16, 5
W = torch.normal(0, 0.01, size=(num_inputs, num_outputs), requires_grad=True)
b = torch.zeros(num_outputs, requires_grad=True)

def net(X):
    return softmax(torch.matmul(X.reshape((-1, W.shape[0])), W) + b)

X = torch.randn(40, 16)
y = torch.randint(0, 5, (40,))
metric = Accumulator(3)
for epoch in range(3):
    metric.reset()
    for i in range(0, 40, 10):
        Xb, yb = X[i:i + 10], y[i:i + 10]
        y_hat = net(Xb)
        l = cross_entropy(y_hat, yb)
        l.mean().backward()
        with torch.no_grad():
            for param in [W, b]:
                param -= 0.1 * param.grad
                param.grad.zero_()
        metric.add(float(l.sum()), accuracy(y_hat, yb), yb.numel())
    print(epoch, round(metric[0] / metric[2], 5), metric[1] / metric[2])
""",
)

# d2l.ai, "Multilayer Perceptrons from Scratch" and "Dropout": a relu written with
# torch.max, a dropout_layer by hand with a mask, and the Net class with is_training.
tutorial(
    "d2l_mlp_dropout_scratch",
    """
import torch
from torch import nn

def relu(X):
    a = torch.zeros_like(X)
    return torch.max(X, a)

def dropout_layer(X, dropout):
    assert 0 <= dropout <= 1
    if dropout == 1:
        return torch.zeros_like(X)
    if dropout == 0:
        return X
    mask = (torch.rand(X.shape) > dropout).float()
    return mask * X / (1.0 - dropout)

class Net(nn.Module):
    def __init__(self, num_inputs, num_outputs, num_hiddens1, is_training=True):
        super(Net, self).__init__()
        self.num_inputs = num_inputs
        self.training = is_training
        self.lin1 = nn.Linear(num_inputs, num_hiddens1)
        self.lin2 = nn.Linear(num_hiddens1, num_outputs)

    def forward(self, X):
        H1 = relu(self.lin1(X.reshape((-1, self.num_inputs))))
        if self.training:
            H1 = dropout_layer(H1, 0.5)
        return self.lin2(H1)

X = torch.arange(16, dtype=torch.float32).reshape((2, 8))
print(dropout_layer(X, 0.), dropout_layer(X, 1.))
net = Net(8, 3, 6)
loss = nn.CrossEntropyLoss(reduction='none')
trainer = torch.optim.SGD(net.parameters(), lr=0.1)
y = torch.tensor([0, 2])
for epoch in range(3):
    l = loss(net(X), y)
    trainer.zero_grad()
    l.mean().backward()
    trainer.step()
print(l)
""",
)

# d2l.ai, "Layers and Modules": MySequential storing modules in a dict by str(idx),
# FixedHiddenMLP with a constant weight and a while loop, and a block of the program's own
# nested in nn.Sequential.
tutorial(
    "d2l_layers_and_modules",
    """
import torch
from torch import nn
from torch.nn import functional as F

class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(20, 256)
        self.out = nn.Linear(256, 10)

    def forward(self, X):
        return self.out(F.relu(self.hidden(X)))

class MySequential(nn.Module):
    def __init__(self, *args):
        super().__init__()
        for idx, module in enumerate(args):
            self.add_module(str(idx), module)

    def forward(self, X):
        for module in self.children():
            X = module(X)
        return X

class FixedHiddenMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.rand_weight = torch.rand((20, 20))
        self.linear = nn.Linear(20, 20)

    def forward(self, X):
        X = self.linear(X)
        X = F.relu(X @ self.rand_weight + 1)
        X = self.linear(X)
        while X.abs().sum() > 1:
            X /= 2
        return X.sum()

X = torch.rand(2, 20)
net = MLP()
print(net(X).shape)
net2 = MySequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))
print(net2(X).shape)
fixed = FixedHiddenMLP()
out = fixed(X)
out.backward()
print(out, fixed.linear.weight.grad.shape)
chimera = nn.Sequential(FixedHiddenMLP())
print(chimera(X))
""",
)

# d2l.ai, "Parameter Management" and "Custom Layers": named_parameters, init functions
# applied with net.apply, tied weights shared by two layers, and CenteredLayer/MyLinear.
tutorial(
    "d2l_parameters_custom_layers",
    """
import torch
from torch import nn
from torch.nn import functional as F

def init_normal(module):
    if type(module) == nn.Linear:
        nn.init.normal_(module.weight, mean=0, std=0.01)
        nn.init.zeros_(module.bias)

class CenteredLayer(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, X):
        return X - X.mean()

class MyLinear(nn.Module):
    def __init__(self, in_units, units):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_units, units))
        self.bias = nn.Parameter(torch.randn(units,))

    def forward(self, X):
        linear = torch.matmul(X, self.weight.data) + self.bias.data
        return F.relu(linear)

net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
X = torch.rand(size=(2, 4))
net.apply(init_normal)
print([(name, param.shape) for name, param in net.named_parameters()])
shared = nn.Linear(8, 8)
tied = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(8, 1))
tied(X).sum().backward()
print(tied[2].weight.data[0, 0] == tied[4].weight.data[0, 0])
print(tied[2].weight.grad.shape)
layer = CenteredLayer()
print(layer(torch.tensor([1.0, 2, 3, 4, 5])))
linear = MyLinear(5, 3)
print(linear(torch.rand(2, 5)).shape)
""",
)

# d2l.ai, "Recurrent Neural Network Implementation from Scratch": get_params, init state
# as a tuple, rnn over time steps, and grad_clipping by the global norm.
tutorial(
    "d2l_rnn_from_scratch",
    """
import math
import torch
import torch.nn.functional as F

def get_params(vocab_size, num_hiddens):
    num_inputs = num_outputs = vocab_size
    def normal(shape):
        return torch.randn(size=shape) * 0.01
    W_xh = normal((num_inputs, num_hiddens))
    W_hh = normal((num_hiddens, num_hiddens))
    b_h = torch.zeros(num_hiddens)
    W_hq = normal((num_hiddens, num_outputs))
    b_q = torch.zeros(num_outputs)
    params = [W_xh, W_hh, b_h, W_hq, b_q]
    for param in params:
        param.requires_grad_(True)
    return params

def init_rnn_state(batch_size, num_hiddens):
    return (torch.zeros((batch_size, num_hiddens)),)

def rnn(inputs, state, params):
    W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    outputs = []
    for X in inputs:
        H = torch.tanh(torch.mm(X, W_xh) + torch.mm(H, W_hh) + b_h)
        Y = torch.mm(H, W_hq) + b_q
        outputs.append(Y)
    return torch.cat(outputs, dim=0), (H,)

def grad_clipping(params, theta):
    norm = torch.sqrt(sum(torch.sum((p.grad ** 2)) for p in params))
    if norm > theta:
        for param in params:
            param.grad[:] *= theta / norm

vocab_size, num_hiddens, num_steps, batch_size = 10, 16, 5, 2
params = get_params(vocab_size, num_hiddens)
X = torch.randint(0, vocab_size, (batch_size, num_steps))
Y = torch.randint(0, vocab_size, (batch_size, num_steps))
for epoch in range(3):
    state = init_rnn_state(batch_size, num_hiddens)
    inputs = F.one_hot(X.T, vocab_size).type(torch.float32)
    y_hat, state = rnn(inputs, state, params)
    l = F.cross_entropy(y_hat, Y.T.reshape(-1)).mean()
    l.backward()
    grad_clipping(params, 1)
    with torch.no_grad():
        for param in params:
            param -= 1 * param.grad
            param.grad.zero_()
    print(epoch, round(math.exp(l.item()), 4))
""",
)

# d2l.ai, "Timer" and "Animator"-free training utilities: a Timer class with time.time and
# a list of times (printed as counts, not seconds), and an Accumulator.
tutorial(
    "d2l_timer_utilities",
    """
import time
import torch

class Timer:
    def __init__(self):
        self.times = []
        self.start()

    def start(self):
        self.tik = time.time()

    def stop(self):
        self.times.append(time.time() - self.tik)
        return self.times[-1]

    def avg(self):
        return sum(self.times) / len(self.times)

    def sum(self):
        return sum(self.times)

timer = Timer()
a = torch.ones(1000)
b = torch.ones(1000)
c = torch.zeros(1000)
for i in range(100):
    c[i] = a[i] + b[i]
timer.stop()
timer.start()
d = a + b
timer.stop()
print(len(timer.times), timer.sum() >= 0, c[:3], d[:3])
""",
)

# fast.ai, "Backprop from the foundations" (course part 2): lin, relu and mse with their
# gradients stored as .g attributes on tensors, checked against autograd.
tutorial(
    "fastai_backprop_foundations",
    """
import torch

def lin(x, w, b):
    return x @ w + b

def relu(x):
    return x.clamp_min(0.)

def mse(output, targ):
    return (output.squeeze(-1) - targ).pow(2).mean()

def mse_grad(inp, targ):
    inp.g = 2. * (inp.squeeze() - targ).unsqueeze(-1) / inp.shape[0]

def relu_grad(inp, out):
    inp.g = (inp > 0).float() * out.g

def lin_grad(inp, out, w, b):
    inp.g = out.g @ w.t()
    w.g = (inp.unsqueeze(-1) * out.g.unsqueeze(1)).sum(0)
    b.g = out.g.sum(0)

def forward_and_backward(inp, targ):
    l1 = inp @ w1 + b1
    l2 = relu(l1)
    out = l2 @ w2 + b2
    loss = mse(out, targ)
    mse_grad(out, targ)
    lin_grad(l2, out, w2, b2)
    relu_grad(l1, l2)
    lin_grad(inp, l1, w1, b1)

torch.manual_seed(42)
x_train = torch.randn(20, 8)
y_train = torch.randn(20)
nh = 5
w1 = torch.randn(8, nh) / 8 ** 0.5
b1 = torch.zeros(nh)
w2 = torch.randn(nh, 1) / nh ** 0.5
b2 = torch.zeros(1)
forward_and_backward(x_train, y_train)
w1g, b1g, w2g, b2g = w1.g.clone(), b1.g.clone(), w2.g.clone(), b2.g.clone()
ig = x_train.g.clone()
xt2 = x_train.clone().requires_grad_(True)
for p in [w1, b1, w2, b2]:
    p.requires_grad_(True)
def forward(inp, targ):
    l1 = inp @ w1 + b1
    l2 = relu(l1)
    out = l2 @ w2 + b2
    return mse(out, targ)
loss = forward(xt2, y_train)
loss.backward()
print(torch.allclose(w2g, w2.grad, atol=1e-6), torch.allclose(b2g, b2.grad, atol=1e-6))
print(torch.allclose(w1g, w1.grad, atol=1e-6), torch.allclose(b1g, b1.grad, atol=1e-6))
print(torch.allclose(ig, xt2.grad, atol=1e-6))
""",
)

# fast.ai, "Backprop from the foundations": the layers refactored into classes with
# __call__ and backward, and a Model class with a list of layers.
tutorial(
    "fastai_layer_classes",
    """
import torch

class Relu:
    def __call__(self, inp):
        self.inp = inp
        self.out = inp.clamp_min(0.)
        return self.out

    def backward(self):
        self.inp.g = (self.inp > 0).float() * self.out.g

class Lin:
    def __init__(self, w, b):
        self.w, self.b = w, b

    def __call__(self, inp):
        self.inp = inp
        self.out = inp @ self.w + self.b
        return self.out

    def backward(self):
        self.inp.g = self.out.g @ self.w.t()
        self.w.g = self.inp.t() @ self.out.g
        self.b.g = self.out.g.sum(0)

class Mse:
    def __call__(self, inp, targ):
        self.inp, self.targ = inp, targ
        self.out = (inp.squeeze() - targ).pow(2).mean()
        return self.out

    def backward(self):
        self.inp.g = 2. * (self.inp.squeeze() - self.targ).unsqueeze(-1) / self.targ.shape[0]

class Model:
    def __init__(self, w1, b1, w2, b2):
        self.layers = [Lin(w1, b1), Relu(), Lin(w2, b2)]
        self.loss = Mse()

    def __call__(self, x, targ):
        for l in self.layers:
            x = l(x)
        return self.loss(x, targ)

    def backward(self):
        self.loss.backward()
        for l in reversed(self.layers):
            l.backward()

torch.manual_seed(0)
x = torch.randn(10, 4)
y = torch.randn(10)
w1, b1 = torch.randn(4, 3), torch.zeros(3)
w2, b2 = torch.randn(3, 1), torch.zeros(1)
model = Model(w1, b1, w2, b2)
loss = model(x, y)
model.backward()
print(loss, w1.g.shape, b2.g, x.g.shape)
""",
)

# A classic mistake, as course notebooks show it: backward on a non-scalar output.
tutorial(
    "mistake_backward_non_scalar",
    """
import torch
x = torch.randn(3, requires_grad=True)
y = x * 2
y.backward()
""",
)

# A classic mistake: an in-place change of a tensor autograd saved (the sigmoid's output
# changed after the forward), then the fix with a clone.
tutorial(
    "mistake_inplace_saved",
    """
import torch
a = torch.randn(4, requires_grad=True)
s = a.sigmoid()
t = s.clone()
t.mul_(2)
t.sum().backward()
print(a.grad)
s.mul_(2)
s.sum().backward()
""",
)

# A classic mistake: a leaf overwritten by a computation, so its .grad stays None (with a
# warning PyTorch prints), then reading .grad of a non-leaf.
tutorial(
    "mistake_leaf_overwritten",
    """
import torch
w = torch.randn(3, requires_grad=True)
w = w * 2
loss = (w ** 2).sum()
loss.backward()
print(w.grad)
""",
)

# The standard library in a training script: math.isfinite on the loss, collections.deque
# for a moving average, itertools.count for steps, and functools.partial for an init.
tutorial(
    "stdlib_in_a_training_script",
    """
import math
import itertools
import functools
from collections import deque
import torch
import torch.nn as nn

torch.manual_seed(0)
model = nn.Linear(3, 1)
init = functools.partial(nn.init.normal_, std=0.1)
init(model.weight)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x, y = torch.randn(16, 3), torch.randn(16, 1)
recent = deque(maxlen=3)
for step in itertools.count():
    loss = ((model(x) - y) ** 2).mean()
    if not math.isfinite(loss.item()) or step >= 8:
        break
    opt.zero_grad()
    loss.backward()
    opt.step()
    recent.append(loss.item())
print(step, [round(v, 5) for v in recent], round(sum(recent) / len(recent), 5))
""",
)
