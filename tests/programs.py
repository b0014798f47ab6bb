"""Tutorial-style programs, each compared with plain PyTorch by the oracle tests."""

PROGRAMS: dict[str, str] = {}


def program(name: str, source: str, into: dict[str, str] = PROGRAMS) -> None:
    """Adds ``source`` to the corpus ``into``, after the imports every program makes."""
    assert name not in into
    into[name] = (
        "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
        "import torch.optim as optim\nimport numpy as np\n" + source.strip("\n") + "\n"
    )


program(
    "scalar_chain",
    """
a = torch.tensor(2.0, requires_grad=True)
b = torch.tensor(3.0, requires_grad=True)
c = a * b + a ** 2
c.backward()
print(a.grad, b.grad)
""",
)
program(
    "vector_ops",
    """
x = torch.arange(1.0, 5.0, requires_grad=True)
y = (x.exp() - x.log() + x.sin() * x.cos()).sum()
y.backward()
""",
)
program(
    "broadcast_add",
    """
a = torch.randn(3, 1, requires_grad=True)
b = torch.randn(1, 4, requires_grad=True)
c = (a + b) * (a - b)
c.sum().backward()
""",
)
program(
    "inverse_and_det",
    """
torch.set_printoptions(precision=3)
A = torch.tensor([[4.0, 1.0], [2.0, 3.0]], requires_grad=True)
b = torch.tensor([1.0, 2.0])
x = A.inverse() @ b
loss = x.sum() + A.det() + torch.linalg.solve(A, b).pow(2).sum()
loss.backward()
print(x, A.det(), A.grad)
""",
)
program(
    "optimizer_state_dict",
    """
w = torch.tensor([1.0, 2.0], requires_grad=True)
opt = torch.optim.Adam([w], lr=0.1, betas=(0.8, 0.9))
for _ in range(2):
    opt.zero_grad()
    (w ** 2).sum().backward()
    opt.step()
sd = opt.state_dict()
print(sorted(sd.keys()), sd["param_groups"][0]["betas"], sd["state"][0]["exp_avg"], w)
""",
)
program(
    "linalg_batched",
    """
A = torch.randn(3, 4, 4) + 4 * torch.eye(4)
A.requires_grad_(True)
B = torch.randn(3, 4, 2, requires_grad=True)
X = torch.linalg.solve(A, B)
loss = X.sum() + torch.linalg.inv(A).pow(2).sum() + torch.det(A).sum()
loss.backward()
print(loss)
""",
)
program(
    "matmul_chain",
    """
A = torch.randn(3, 4, requires_grad=True)
B = torch.randn(4, 2, requires_grad=True)
C = (A @ B).tanh()
loss = C.pow(2).mean()
loss.backward()
""",
)
program(
    "mv_dot",
    """
M = torch.randn(3, 3, requires_grad=True)
v = torch.randn(3, requires_grad=True)
out = torch.dot(torch.mv(M, v), v)
out.backward()
""",
)
program(
    "sigmoid_relu",
    """
x = torch.linspace(-2, 2, 9, requires_grad=True)
y = torch.sigmoid(x) + torch.relu(x) + F.leaky_relu(x, 0.1) + F.gelu(x) + F.softplus(x)
y.sum().backward()
""",
)
program(
    "softmax_ce",
    """
logits = torch.randn(4, 5, requires_grad=True)
target = torch.tensor([1, 0, 4, 2])
loss = F.cross_entropy(logits, target)
loss.backward()
probs = F.softmax(logits, dim=1)
print(round(loss.item(), 5))
""",
)
program(
    "log_softmax_nll",
    """
logits = torch.randn(3, 4, requires_grad=True)
lp = F.log_softmax(logits, dim=-1)
loss = F.nll_loss(lp, torch.tensor([0, 3, 1]))
loss.backward()
""",
)
program(
    "bce",
    """
p = torch.sigmoid(torch.randn(6, requires_grad=True))
t = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
z = torch.randn(6, requires_grad=True)
loss = F.binary_cross_entropy(torch.sigmoid(z), t) + F.binary_cross_entropy_with_logits(z, t)
loss.backward()
""",
)
program(
    "mse_l1",
    """
pred = torch.randn(5, requires_grad=True)
target = torch.randn(5)
loss = nn.MSELoss()(pred, target) + nn.L1Loss()(pred, target)
loss.backward()
""",
)
program(
    "indexing",
    """
x = torch.randn(4, 5, requires_grad=True)
y = x[:, 0] * 2 + x[1] .sum() + x[None].mean() + x[1:3, ::2].sum()
y.sum().backward()
""",
)
program(
    "bool_mask",
    """
x = torch.randn(8, requires_grad=True)
y = x[x > 0].sum() + x.masked_fill(x < 0, 0.0).mean()
y.backward()
""",
)
program(
    "setitem_copy_slices",
    """
x = torch.randn(3, requires_grad=True)
c = torch.tensor([1.0, 2.0, 3.0])
w = torch.zeros(3)
w[0] = c[0] * x[0]
w[1] = c[1] * x[1] ** 2
w.sum().backward()
print(x.grad)
""",
)
program(
    "cat_stack_split",
    """
a = torch.randn(2, 3, requires_grad=True)
b = torch.randn(2, 3, requires_grad=True)
c = torch.cat([a, b], dim=0)
s = torch.stack([a, b]).sum(0)
p, q = c.split(2, dim=0)
i, f, g, o = c.chunk(4, dim=0)
loss = (p * q).sum() + s.pow(2).sum() + (i * o).sum() + (f - g).sum()
loss.backward()
""",
)
program(
    "reshape_permute",
    """
x = torch.randn(2, 3, 4, requires_grad=True)
y = x.view(6, 4).t().reshape(2, 12).permute(1, 0).unsqueeze(0).squeeze(0)
z = y.transpose(0, 1).flatten().expand(2, 24).contiguous()
z.sum().backward()
""",
)
program(
    "reductions",
    """
x = torch.randn(3, 4, requires_grad=True)
y = x.max() + x.min() + x.sum(dim=1, keepdim=True).mean() + x.mean(0).sum() + x.std() + x.var()
vals, idx = x.max(dim=1)
y = y + vals.sum() + x.norm() + x.amax(dim=0).sum() + x.prod()
y.backward()
print(idx)
""",
)
program(
    "where_clamp",
    """
x = torch.randn(6, requires_grad=True)
y = torch.where(x > 0, x ** 2, -x) + x.clamp(-0.5, 0.5) + x.clamp(min=0.1) + x.abs()
z = torch.maximum(x, torch.zeros(6)) + torch.minimum(x, torch.ones(6))
(y + z).sum().backward()
""",
)
program(
    "div_neg_sqrt_rsqrt",
    """
x = torch.rand(4, requires_grad=True) + 0.5
x.retain_grad()
y = (1 / x - x / 3 + torch.sqrt(x) + torch.rsqrt(x) - x.neg()).sum()
y.backward()
""",
)
program(
    "pow_tensor_exponent",
    """
b = torch.tensor([1.5, 2.0, 2.5], requires_grad=True)
e = torch.tensor([2.0, 0.5, 1.0], requires_grad=True)
y = (b ** e).sum() + (2 ** b).sum()
y.backward()
""",
)
program(
    "retain_grad_nonleaf",
    """
x = torch.ones(2, requires_grad=True)
h = x * 3
h.retain_grad()
y = (h ** 2).sum()
y.backward()
print(h.grad, x.grad)
""",
)
program(
    "autograd_grad",
    """
x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
y = (x ** 3).sum()
g, = torch.autograd.grad(y, x)
print(g)
""",
)
program(
    "create_graph_second_order",
    """
x = torch.tensor(2.0, requires_grad=True)
y = x ** 3
g, = torch.autograd.grad(y, x, create_graph=True)
g.backward()
print(g, x.grad)
""",
)
program(
    "backward_create_graph",
    """
x = torch.tensor([1.0, 2.0], requires_grad=True)
y = (x ** 2).sum()
y.backward(create_graph=True)
gg = x.grad.sum()
print(x.grad)
""",
)
program(
    "retain_graph_accumulate",
    """
x = torch.tensor([1.0, 1.0, 1.0], requires_grad=True)
y = (x * 2).sum()
y.backward(retain_graph=True)
y.backward()
print(x.grad)
""",
)
program(
    "vjp_backward_vector",
    """
x = torch.randn(3, requires_grad=True)
y = x * 2
while y.data.norm() < 1000:
    y = y * 2
v = torch.tensor([0.1, 1.0, 0.0001], dtype=torch.float)
y.backward(v)
print(x.grad)
""",
)
program(
    "no_grad_detach",
    """
x = torch.ones(2, 2, requires_grad=True)
with torch.no_grad():
    y = x * 2
z = x.detach() + 1
w = (x * y + z).sum()
w.backward()
print(y.requires_grad, z.requires_grad, x.grad)
""",
)
program(
    "enable_grad_inside_no_grad",
    """
x = torch.ones(2, requires_grad=True)
with torch.no_grad():
    with torch.enable_grad():
        y = x * 3
    z = x * 3
print(y.requires_grad, z.requires_grad)
y.sum().backward()
""",
)
program(
    "data_cut",
    """
w = torch.tensor([1.0, -1.0], requires_grad=True)
d = w.data * 2
loss = (w * d).sum()
loss.backward()
""",
)
program(
    "linear_regression_sgd",
    """
torch.manual_seed(1)
X = torch.randn(20, 1)
Y = 3 * X + 2 + 0.1 * torch.randn(20, 1)
model = nn.Linear(1, 1)
opt = optim.SGD(model.parameters(), lr=0.1)
for epoch in range(30):
    loss = F.mse_loss(model(X), Y)
    opt.zero_grad()
    loss.backward()
    opt.step()
print(f"{model.weight.item():.4f} {model.bias.item():.4f}")
w = model.weight
b = model.bias
""",
)
program(
    "sgd_momentum",
    """
w = torch.tensor([1.0, -2.0], requires_grad=True)
opt = optim.SGD([w], lr=0.1, momentum=0.9)
for i in range(5):
    opt.zero_grad()
    loss = (w ** 2).sum()
    loss.backward()
    opt.step()
print(w)
""",
)
program(
    "adam_adamw_rmsprop",
    """
a = torch.tensor([1.0, 2.0], requires_grad=True)
b = torch.tensor([1.0, 2.0], requires_grad=True)
c = torch.tensor([1.0, 2.0], requires_grad=True)
opts = [optim.Adam([a], lr=0.1), optim.AdamW([b], lr=0.1, weight_decay=0.01), optim.RMSprop([c], lr=0.01)]
for step in range(3):
    for opt in opts:
        opt.zero_grad()
    loss = (a ** 2).sum() + (b ** 2).sum() + (c ** 2).sum()
    loss.backward()
    for opt in opts:
        opt.step()
print(a, b, c)
""",
)
program(
    "mlp_module_class",
    """
class MLP(nn.Module):
    def __init__(self, sizes):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)])
        self.act = nn.Tanh()

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.act(x)
        return x

net = MLP([4, 8, 8, 3])
x = torch.randn(5, 4)
out = net(x)
loss = F.cross_entropy(out, torch.tensor([0, 1, 2, 1, 0]))
net.zero_grad()
loss.backward()
for name, p in net.named_parameters():
    print(name, tuple(p.grad.shape))
g = net.layers[0].bias.grad
""",
)
program(
    "cnn_batchnorm_dropout",
    """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        x = self.pool(F.leaky_relu(self.bn(self.conv(x)), 0.2))
        x = self.drop(x)
        return self.fc(x.flatten(1))

net = Net()
x = torch.randn(2, 1, 8, 8)
loss = net(x).pow(2).mean()
loss.backward()
g = net.conv.weight.grad
gb = net.bn.weight.grad
""",
)
program(
    "sequential_avgpool_flatten",
    """
model = nn.Sequential(
    nn.Conv2d(2, 3, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(3 * 3 * 3, 2), nn.Sigmoid()
)
x = torch.randn(1, 2, 8, 8)
out = model(x)
out.sum().backward()
g = model[0].weight.grad
""",
)
program(
    "embedding_layernorm",
    """
emb = nn.Embedding(10, 4)
ln = nn.LayerNorm(4)
idx = torch.tensor([[1, 2, 3], [4, 5, 1]])
h = ln(emb(idx))
loss = F.log_softmax(h, dim=-1).mean()
loss.backward()
g = emb.weight.grad
""",
)
program(
    "rnn_cell_unrolled",
    """
W = nn.Linear(4, 4)
U = nn.Linear(3, 4)
h = torch.zeros(1, 4)
xs = torch.randn(6, 1, 3)
for t in range(6):
    h = torch.tanh(W(h) + U(xs[t]))
loss = h.sum()
loss.backward()
gw = W.weight.grad
""",
)
program(
    "lstm_cell_gates",
    """
x = torch.randn(2, 3)
h = torch.zeros(2, 4)
c = torch.zeros(2, 4)
Wx = nn.Linear(3, 16)
Wh = nn.Linear(4, 16, bias=False)
for step in range(3):
    gates = Wx(x) + Wh(h)
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
h.pow(2).sum().backward()
gx = Wx.weight.grad
""",
)
program(
    "attention_block",
    """
torch.manual_seed(3)
T, C = 4, 8
x = torch.randn(1, T, C, requires_grad=True)
qkv = nn.Linear(C, 3 * C)
ln = nn.LayerNorm(C)
q, k, v = qkv(ln(x)).split(C, dim=2)
att = (q @ k.transpose(-2, -1)) * (1.0 / C ** 0.5)
mask = torch.tril(torch.ones(T, T))
att = att.masked_fill(mask == 0, float("-inf"))
att = F.softmax(att, dim=-1)
y = F.gelu(att @ v)
y.sum().backward()
""",
)
program(
    "custom_function_square",
    """
class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return 2 * x * g

x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
y = Square.apply(x).sum()
y.backward()
print(x.grad)
""",
)
program(
    "custom_function_two_inputs",
    """
class MulAdd(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, alpha=1.0):
        ctx.save_for_backward(a, b)
        ctx.alpha = alpha
        return a * b + alpha

    @staticmethod
    def backward(ctx, grad_out):
        a, b = ctx.saved_tensors
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = grad_out * b
        if ctx.needs_input_grad[1]:
            gb = grad_out * a
        return ga, gb, None

a = torch.randn(3, requires_grad=True)
b = torch.randn(3)
out = MulAdd.apply(a, b, 2.0).sum()
out.backward()
""",
)
program(
    "custom_exp_save_output",
    """
class Exp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, i):
        result = i.exp()
        ctx.save_for_backward(result)
        return result

    @staticmethod
    def backward(ctx, grad_output):
        result, = ctx.saved_tensors
        return grad_output * result

x = torch.tensor([0.0, 1.0], requires_grad=True)
Exp.apply(x).sum().backward()
""",
)
program(
    "functions_and_defaults",
    """
def f(x, power=2, *, scale=1.0):
    return scale * x ** power

def g(x):
    return f(x) + f(x, 3, scale=0.5)

x = torch.tensor([1.0, 2.0], requires_grad=True)
y = g(x).sum()
y.backward()
""",
)
program(
    "python_control_flow",
    """
x = torch.tensor(1.5, requires_grad=True)
total = 0
acc = x
for i in range(5):
    if i % 2 == 0:
        acc = acc * x
    elif i == 3:
        continue
    else:
        acc = acc + i
    total += i
n = 0
while n < 3:
    n += 1
    if n == 2:
        break
acc.backward()
print(total, n, [i * 2 for i in range(4)], {k: k ** 2 for k in range(3)})
""",
)
program(
    "fstrings_and_formatting",
    """
w = torch.tensor(0.123456, requires_grad=True)
loss = (w * 3) ** 2
loss.backward()
print(f"w = {w.item():.3f}, grad = {w.grad.item():.4f}, {'ok'!r:>6}")
print("loss = %.5f" % loss.item(), "%d items" % 3)
print("{} and {:.2f}".format(1, 2.5))
""",
)
program(
    "print_tensors",
    """
x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
y = x * 2
print(x)
print(y)
print(y.shape, x.dtype, x.size(), x.dim(), x.numel())
print(y.requires_grad, y.is_leaf, x.is_leaf)
""",
)
program(
    "tuple_unpack_star",
    """
a, *rest = [1, 2, 3, 4]
(b, c), d = (5, 6), 7
x = torch.randn(4, requires_grad=True)
first, *others = x
y = first * sum(rest) + others[0] * b
y.backward()
print(a, rest, b, c, d)
""",
)
program(
    "numpy_interop",
    """
arr = np.array([1.0, 2.0, 3.0], dtype=np.float32)
x = torch.from_numpy(arr).requires_grad_()
y = (x * 2).sum()
y.backward()
print(x.grad.numpy(), np.sum(arr), arr.shape)
""",
)
program(
    "dtype_float64",
    """
x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
y = (x.double() * torch.tensor([3.0, 4.0]).double()).sum()
y.backward()
print(x.grad.dtype)
""",
)
program(
    "integer_tensor_ops",
    """
i = torch.arange(6).reshape(2, 3)
j = i * 2 + 1
k = j // 2 % 3
print(i, j, k, i.sum(), i.float().mean())
""",
)
program(
    "zero_grad_loop",
    """
x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
for i in range(3):
    y = (x * (i + 1)).sum()
    y.backward()
    print(x.grad)
    x.grad.zero_()
""",
)
program(
    "grad_none_assign",
    """
x = torch.tensor([1.0, 2.0], requires_grad=True)
(x * 2).sum().backward()
x.grad = None
(x * 3).sum().backward()
""",
)
program(
    "requires_grad_attribute",
    """
x = torch.ones(3)
x.requires_grad = True
y = (x * 5).sum()
y.backward()
""",
)
program(
    "try_except_error",
    """
x = torch.ones(3, requires_grad=True)
y = x * 2
try:
    y.backward()
except RuntimeError as e:
    print("caught:", e)
y.sum().backward()
""",
)
program(
    "raise_error",
    """
x = torch.ones(2, requires_grad=True)
y = x * 2
if y.sum() > 3:
    raise ValueError("sum too large")
""",
)
program(
    "shape_error",
    """
a = torch.randn(2, 3, requires_grad=True)
b = torch.randn(4, 5)
c = a @ b
""",
)
program(
    "name_error",
    """
x = torch.ones(2)
y = x + z
""",
)
program(
    "index_error_list",
    """
xs = [1, 2, 3]
print(xs[5])
""",
)
program(
    "zero_division",
    """
a = 1
b = 0
c = a / b
""",
)
program(
    "key_error",
    """
d = {"a": 1}
print(d["b"])
""",
)
program(
    "nonleaf_grad_read",
    """
x = torch.ones(2, requires_grad=True)
y = x * 2
z = y.sum()
z.backward()
print(y.grad)
""",
)
program(
    "module_params_count",
    """
model = nn.Sequential(nn.Linear(10, 5), nn.ReLU(), nn.Linear(5, 1))
n = sum(p.numel() for p in model.parameters())
print(n, len(list(model.parameters())))
print(model)
""",
)
program(
    "state_dict_and_train_eval",
    """
model = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5))
model.eval()
x = torch.ones(1, 3)
y1 = model(x)
y2 = model(x)
print(torch.equal(y1, y2), model.training)
model.train()
sd = model.state_dict()
print(sorted(sd.keys()))
""",
)
program(
    "jacobian_functional",
    """
def f(x):
    return x ** 2 + 3 * x

x = torch.tensor([1.0, 2.0])
J = torch.autograd.functional.jacobian(f, x)
print(J)
""",
)
program(
    "clone_detach_inplace_nonleaf",
    """
x = torch.tensor([1.0, 2.0], requires_grad=True)
y = x * 2
y.add_(1)
z = y.clone()
z.mul_(3)
z.sum().backward()
""",
)
program(
    "comparison_chain",
    """
x = torch.tensor(0.5)
print(0 < x < 1, 1 < 2 < 3, x > 0.7)
a = [1, 2, 3]
print(2 in a, 5 not in a, a is not None)
""",
)
program(
    "lr_scheduler",
    """
w = torch.tensor([1.0], requires_grad=True)
opt = optim.SGD([w], lr=1.0)
sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
for i in range(4):
    opt.zero_grad()
    (w ** 2).sum().backward()
    opt.step()
    sched.step()
print(w, sched.get_last_lr())
""",
)
program(
    "init_functions",
    """
layer = nn.Linear(3, 2)
nn.init.xavier_uniform_(layer.weight)
nn.init.zeros_(layer.bias)
out = layer(torch.ones(1, 3)).sum()
out.backward()
g = layer.weight.grad
""",
)
program(
    "multiple_roots_autograd_backward",
    """
x = torch.tensor([1.0, 2.0], requires_grad=True)
a = (x * 2).sum()
b = (x ** 2).sum()
torch.autograd.backward([a, b])
print(x.grad)
""",
)
program(
    "gelu_softplus_threshold",
    """
x = torch.randn(5, requires_grad=True)
y = F.threshold(x, 0.1, 0.0) + F.hardtanh(x) + F.elu(x) + F.silu(x) + F.logsigmoid(x)
y.sum().backward()
""",
)
program(
    "cosine_similarity_multi_node",
    """
a = torch.randn(3, 4, requires_grad=True)
b = torch.randn(3, 4, requires_grad=True)
s = F.cosine_similarity(a, b, dim=1).sum()
s.backward()
""",
)
program(
    "throwaway_underscore_name",
    """
ws = [torch.randn(2, requires_grad=True) for _ in range(3)]
total = torch.stack([w * i for i, w in enumerate(ws)]).sum()
for _ in range(2):
    total.backward(retain_graph=True)
print(_, [w.grad for w in ws])
""",
)
program(
    "grad_zero_before_backward",
    """
x = torch.ones(2, requires_grad=True)
print(x.grad)
x.grad.zero_()
""",
)
program(
    "grad_mode_decorators",
    """
@torch.no_grad()
def sgd_update(params, lr=0.1):
    for p in params:
        p -= lr * p.grad
        p.grad.zero_()

@torch.no_grad
def evaluate(w, x):
    return (w * x).sum()

@torch.enable_grad()
def loss_of(w, x):
    return ((w * x) ** 2).sum()

w = torch.tensor([1.0, -2.0], requires_grad=True)
x = torch.tensor([0.5, 3.0])
for step in range(3):
    loss = loss_of(w, x)
    loss.backward()
    sgd_update([w])
score = evaluate(w, x)
with torch.no_grad():
    inner = loss_of(w, x)
print(score, score.requires_grad, inner.requires_grad, torch.is_grad_enabled(), w)
""",
)
program(
    "gradient_clipping",
    """
rnn = nn.RNNCell(3, 4)
head = nn.Linear(4, 1)
h = torch.zeros(1, 4)
for t in range(5):
    h = rnn(torch.ones(1, 3) * 3.0, h)
loss = (head(h) * 50).pow(2).sum()
loss.backward()
params = list(rnn.parameters()) + list(head.parameters())
before = torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)
nn.utils.clip_grad_value_(head.parameters(), clip_value=0.01)
print(before > 1.0, head.bias.grad, rnn.weight_hh.grad.norm())
""",
)
program(
    "set_grad_enabled_phases",
    """
torch.manual_seed(0)
model = nn.Linear(3, 1)
opt = optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(4, 3)
y = torch.randn(4, 1)
for phase in ["train", "val"]:
    model.train(phase == "train")
    opt.zero_grad()
    with torch.set_grad_enabled(phase == "train"):
        out = model(x)
        loss = F.mse_loss(out, y)
        if phase == "train":
            loss.backward()
            opt.step()
    print(phase, round(loss.item(), 6), out.requires_grad, torch.is_grad_enabled())

@torch.inference_mode()
def predict(inp):
    return model(inp)

with torch.inference_mode():
    frozen = torch.arange(3.0) * 2
p = predict(x)
print(p.requires_grad, p.is_inference(), frozen.is_inference())
""",
)
program(
    "tensor_hooks",
    """
x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
y = x ** 2

def double(g):
    print("into y:", g)
    return g * 2

handle = y.register_hook(double)
x.register_hook(print)
(y * 3).sum().backward()
print("x.grad", x.grad)
handle.remove()
x.grad = None
z = x ** 2
z.register_hook(print)
z.backward(torch.tensor([1.0, 0.1, 0.01]))

lin = nn.Linear(3, 2)

def halve(g):
    return g / 2

lin.weight.register_hook(halve)
loss = lin(torch.randn(4, 3)).pow(2).mean()
loss.backward()
print(lin.weight.grad, lin.bias.grad)
""",
)
program(
    "hook_raises",
    """
x = torch.tensor([1.0, 2.0], requires_grad=True)
y = x * 3

def check(g):
    if g.abs().max() > 0.5:
        raise ValueError(f"gradient too large: {g.max().item()}")

y.register_hook(check)
print("before")
y.sum().backward()
print("after")
""",
)
program(
    "attention",
    """
torch.manual_seed(0)
q = torch.randn(2, 4, 8, requires_grad=True)
k = torch.randn(2, 4, 8, requires_grad=True)
v = torch.randn(2, 4, 8, requires_grad=True)
weights = F.softmax(q @ k.transpose(-2, -1) / 8 ** 0.5, dim=-1)
by_hand = weights @ v
by_hand.pow(2).mean().backward()

mha = nn.MultiheadAttention(8, 2, batch_first=True)
x = torch.randn(2, 3, 8, requires_grad=True)
out, attn = mha(x, x, x)
layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0,
                                   batch_first=True)
encoder = nn.TransformerEncoder(layer, num_layers=2)
y = encoder(out)
y.pow(2).mean().backward()
print(attn.shape, x.grad.norm(), mha.in_proj_weight.grad.norm())

q.grad = None
fused = F.scaled_dot_product_attention(q, k, v)
print(torch.allclose(by_hand, fused, atol=1e-6))
fused.pow(2).mean().backward()
print(q.grad.norm())
""",
)
program(
    "upsampling",
    """
torch.manual_seed(0)
x = torch.randn(1, 2, 3, 3, requires_grad=True)
near = F.interpolate(x, scale_factor=2, mode="nearest")
stretched = nn.Upsample(size=(5, 7))(x)
(near.mean() + stretched.pow(2).sum()).backward()
print(near.shape, stretched.shape, x.grad)
x.grad = None
smooth = F.interpolate(x, size=(5, 4), mode="bilinear", align_corners=False)
corners = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)(x)
(smooth.pow(2).sum() + corners.mean()).backward()
print(smooth.shape, corners.shape, x.grad)
""",
)
program(
    "init_with_apply",
    """
torch.manual_seed(0)

def init_weights(m):
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        m.bias.data.fill_(0.01)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        return self.head(self.body(x))

net = Net()
net.apply(init_weights)
loss = net(torch.ones(2, 3)).pow(2).mean()
loss.backward()
print(net.head.bias, net.body[0].weight.grad)
""",
)
program(
    "lambdas",
    """
x = torch.tensor([1.0, 2.0], requires_grad=True)
y = x * 3
y.register_hook(lambda g: g * 2)
(y ** 2).sum().backward()
print(x.grad)

def magnitude(t):
    return t.abs().item()

xs = [torch.tensor(3.0), torch.tensor(-5.0), torch.tensor(1.0)]
print(max(xs, key=lambda t: t.abs().item()), min(xs, key=magnitude),
      sorted([3, 1, 2], key=lambda v: -v), min([4, -2, 9], key=abs))
scale = lambda t, k=2: t * k
print(scale(torch.ones(2)), scale(torch.ones(2), k=5))
shifts = [lambda v, i=i: v + i for i in range(3)]
print([f(10) for f in shifts])

w = torch.ones(1, requires_grad=True)
opt = optim.SGD([w], lr=1.0)
sched = optim.lr_scheduler.LambdaLR(opt, lr_lambda=lambda epoch: 0.5 ** epoch)
for epoch in range(3):
    opt.zero_grad()
    (w * 2).sum().backward()
    opt.step()
    sched.step()
    print(epoch, opt.param_groups[0]["lr"], w.item())
net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
net.apply(lambda m: nn.init.zeros_(m.bias) if isinstance(m, nn.Linear) else None)
print(net[0].bias)

class Scaled(nn.Module):
    act = lambda self, v: v * 2

    def forward(self, v):
        return self.act(v)

print(Scaled()(torch.ones(1)))
twice = lambda a, b: a * b
print(twice(torch.ones(1)))
""",
)
program(
    "gradcheck_custom",
    """
from torch.autograd import gradcheck


class Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return 3 * x ** 2 * grad_output


class BadSin(torch.autograd.Function):
    \"\"\"Its derivative should be cos(x): gradcheck says so.\"\"\"
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * torch.sin(ctx.saved_tensors[0])


x = torch.randn(4, dtype=torch.double, requires_grad=True)
print(gradcheck(Cube.apply, (x,), eps=1e-6, atol=1e-4))
print(gradcheck(BadSin.apply, (x,), raise_exception=False))
print(gradcheck(lambda t: (t * t).sum(), (x,)))
Cube.apply(x).sum().backward()
gradcheck(BadSin.apply, (x,))
""",
)
program(
    "buffers_and_scatter",
    """
class Counter(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(n))
        self.register_buffer("count", torch.zeros(1))
        self.register_parameter("shift", nn.Parameter(torch.zeros(n)))

    def forward(self, x):
        self.count += 1
        return x * self.scale + self.shift


m = Counter(3)
x = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
out = m(x)
idx = torch.tensor([[0, 1, 1], [2, 0, 2]])
pooled = torch.zeros(2, 3).scatter_add(1, idx, out)
rows = torch.zeros(3, 3).index_add(0, torch.tensor([0, 2]), out)
loss = pooled.pow(2).sum() + rows.sum()
loss.backward()
print(m.count, m.scale.grad, m.shift.grad)
print(list(dict(m.named_buffers()).keys()), [n for n, _ in m.named_parameters()])
v = nn.utils.parameters_to_vector(m.parameters())
print(v)
nn.utils.vector_to_parameters(v * 2, m.parameters())
print(m.scale, m.state_dict()["count"])
""",
)
program(
    "gather_select",
    """
logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0], [1.0, 1.0, -2.0]], requires_grad=True)
target = torch.tensor([0, 2, 1])
picked = logits.log_softmax(dim=1).gather(1, target.unsqueeze(1))
rows = torch.index_select(logits, 0, torch.tensor([2, 0, 2]))
loss = -picked.mean() + rows.pow(2).sum() * 0.1
loss.backward()
print(picked.squeeze(1), logits.grad)
""",
)
program(
    "freeze_with_filter",
    """
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
for p in model[0].parameters():
    p.requires_grad = False
opt = optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.1)
loss = model(torch.randn(2, 3)).sum()
loss.backward()
opt.step()
print(model[0].weight.grad, model[2].bias.grad)
print(sum(p.numel() for p in model.parameters() if p.requires_grad))
sizes = list(map(lambda p: tuple(p.shape), model.parameters()))
print(sizes, sorted(map(abs, [-3, 1, -2])), list(filter(None, [0, 1, 2])))
""",
)
program(
    "data_loader_training",
    """
from torch.utils.data import TensorDataset, DataLoader, random_split
torch.manual_seed(0)
X = torch.randn(50, 3)
Y = X @ torch.tensor([[1.0], [2.0], [-1.0]]) + 0.5
ds = TensorDataset(X, Y)
train_ds, val_ds = random_split(ds, [40, 10])
train_loader = DataLoader(train_ds, batch_size=8, shuffle=True)
val_loader = DataLoader(val_ds, batch_size=5, drop_last=True)
print(len(train_ds), len(train_loader), train_loader.batch_size, ds.tensors[0].shape)
model = nn.Linear(3, 1)
opt = optim.SGD(model.parameters(), lr=0.05)
loss_fn = nn.MSELoss()
for epoch in range(3):
    for batch_idx, (xb, yb) in enumerate(train_loader):
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
    with torch.no_grad():
        val = sum(loss_fn(model(xb), yb).item() for xb, yb in val_loader) / len(val_loader)
    print(epoch, round(val, 6))
x0, y0 = ds[0]
picked, targets = ds[torch.tensor([3, 1])]
print(x0, y0, picked, ds[:2][1], val_ds[1])
""",
)
program(
    "detect_anomaly_nan",
    """
x = torch.zeros(3, requires_grad=True)
with torch.autograd.detect_anomaly():
    y = torch.sqrt((x ** 2).sum())
print(y)
torch.autograd.set_detect_anomaly(True)
y.backward()
""",
)
program(
    "legacy_constructors",
    """
from torch.autograd import Variable
a = torch.Tensor([1, 2, 3])
b = torch.FloatTensor([4, 5, 6])
c = torch.LongTensor([1, 0, 2])
x = Variable(torch.ones(2, 2), requires_grad=True)
out = ((x + 2) * (x + 2) * 3).mean()
out.backward()
a.requires_grad_()
(a * b).sum().backward()
print(a.grad, c.dtype, b.type(), c.type(torch.FloatTensor), torch.DoubleTensor(2, 3).shape)
print(x.grad, x.data, isinstance(a, torch.FloatTensor))
""",
)
program(
    "print_options_and_meshgrid",
    """
torch.set_printoptions(precision=2, sci_mode=False)
xs = torch.linspace(-1, 1, 5, requires_grad=True)
ys = torch.linspace(-1, 1, 4)
X, Y = torch.meshgrid(xs, ys, indexing="ij")
Z = (X ** 2 + Y ** 2 + 1e-4).sqrt()
Z.sum().backward()
print(Z)
print(xs.grad)
""",
)
program(
    "schedulers_plateau_onecycle_sequential",
    """
torch.manual_seed(3)
model = nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode='min', factor=0.5, patience=1)
x = torch.randn(8, 2); y = torch.randn(8, 1)
for epoch in range(6):
    opt.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    sched.step(1.0)
    print(epoch, opt.param_groups[0]['lr'])
opt2 = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
one = torch.optim.lr_scheduler.OneCycleLR(opt2, max_lr=0.5, total_steps=5)
for i in range(4):
    opt2.zero_grad(); nn.functional.mse_loss(model(x), y).backward(); opt2.step(); one.step()
    print(round(one.get_last_lr()[0], 6))
opt3 = torch.optim.Adam(model.parameters(), lr=0.01)
warm = torch.optim.lr_scheduler.LinearLR(opt3, start_factor=0.1, total_iters=2)
cos = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt3, T_0=2)
seq = torch.optim.lr_scheduler.SequentialLR(opt3, schedulers=[warm, cos], milestones=[2])
for i in range(5):
    opt3.step(); seq.step()
    print(i, round(opt3.param_groups[0]['lr'], 6))
""",
)

# ---- the standard library tutorials import (issue: run the code people learn from)

# PyTorch, "Learning PyTorch with Examples": its programs start with `import math`.
program(
    "pt_examples_import_math",
    """
import math
x = torch.linspace(-math.pi, math.pi, 200)
y = torch.sin(x)
a, b, c, d = (torch.randn((), requires_grad=True) for _ in range(4))
for t in range(3):
    y_pred = a + b * x + c * x ** 2 + d * x ** 3
    loss = (y_pred - y).pow(2).sum()
    loss.backward()
    with torch.no_grad():
        for p in (a, b, c, d):
            p -= 1e-6 * p.grad
            p.grad = None
print(f'Result: y = {a.item()} + {b.item()} x + {c.item()} x^2 + {d.item()} x^3')
print(math.sqrt(2.0), math.exp(1.0), math.log(10.0), math.floor(2.7), math.factorial(12))
print(math.comb(10, 4), math.perm(5, 2), math.gcd(12, 18), math.isclose(0.1 + 0.2, 0.3))
print(math.inf > 1e308, math.isnan(math.nan), math.prod([1, 2, 3, 4]), math.fsum([0.1] * 10))
""",
)

# Karpathy's makemore (part 1 and 2): shuffling the words with random, a torch.Generator.
program(
    "makemore_random_and_generator",
    """
import random
words = ['emma', 'olivia', 'ava', 'isabella', 'sophia', 'charlotte', 'mia', 'amelia']
random.seed(42)
random.shuffle(words)
n1 = int(0.8 * len(words))
print(words[:n1], words[n1:])
chars = sorted(list(set(''.join(words))))
stoi = {s: i + 1 for i, s in enumerate(chars)}
stoi['.'] = 0
g = torch.Generator().manual_seed(2147483647)
C = torch.randn((len(stoi), 2), generator=g)
W = torch.randn((2, len(stoi)), generator=g, requires_grad=True)
ix = torch.multinomial(torch.softmax(C @ W, dim=1)[0], num_samples=3, replacement=True, generator=g)
print(ix, random.random(), random.randint(0, 9), random.choice(words), random.uniform(1, 2))
print(random.sample(range(20), 3), random.choices('abc', k=4), random.gauss(0, 1))
p = torch.rand(3, generator=g)
print(p, g.initial_seed())
""",
)

# Python's itertools and functools as course notebooks use them (batching, products of
# hyper-parameters, a running loss).
program(
    "itertools_functools_batches",
    """
import itertools
import functools
import operator
from itertools import count
grid = list(itertools.product([0.1, 0.01], [16, 32]))
print(grid)
for i, lr in zip(count(), [0.1, 0.2, 0.3]):
    print(i, lr)
print(list(itertools.islice(itertools.cycle('ab'), 5)), list(itertools.chain([1, 2], [3])))
print(list(itertools.accumulate([1, 2, 3, 4])), list(itertools.combinations(range(4), 2)))
print([(k, len(list(g))) for k, g in itertools.groupby('aaabbc')])
print(list(itertools.pairwise([1, 2, 3])), list(itertools.zip_longest([1, 2], [3], fillvalue=0)))
print(functools.reduce(operator.mul, [1, 2, 3, 4], 1))
scale = functools.partial(torch.mul, other=2.0)
x = torch.ones(3, requires_grad=True)
y = scale(x).sum()
y.backward()
print(x.grad, operator.add(2, 3), operator.itemgetter(1)([5, 6, 7]))
""",
)

# d2l.ai's utilities (collections, statistics, time) and bigram counting with Counter.
program(
    "collections_statistics_time",
    """
import collections
import statistics
import string
import time
from collections import Counter, defaultdict, deque, namedtuple, OrderedDict
start = time.time()
counts = Counter()
for w in ['emma', 'ava', 'mia']:
    chs = ['<S>'] + list(w) + ['<E>']
    for ch1, ch2 in zip(chs, chs[1:]):
        counts[(ch1, ch2)] += 1
print(counts.most_common(3))
by_len = defaultdict(list)
for w in ['emma', 'ava', 'mia', 'olivia']:
    by_len[len(w)].append(w)
print(dict(by_len))
window = deque(maxlen=3)
for loss in [3.0, 2.5, 2.0, 1.8]:
    window.append(loss)
print(list(window), statistics.mean(window), statistics.median([3, 1, 2]), statistics.stdev([1.0, 2.0, 4.0]))
Batch = namedtuple('Batch', ['x', 'y'])
b = Batch(torch.randn(2, 3), torch.tensor([0, 1]))
print(b.x.shape, b.y, b[1])
od = OrderedDict(a=1, b=2)
od.move_to_end('a')
print(list(od), string.ascii_lowercase[:3], string.digits)
print(time.time() >= start, time.perf_counter() >= 0)
""",
)

# PyTorch, "Fusing Convolution and Batch Norm" and fine-tuning tutorials: copy.deepcopy of
# a model, then changing the copy.
program(
    "copy_deepcopy_model",
    """
import copy
net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
frozen = copy.deepcopy(net)
with torch.no_grad():
    frozen[0].weight.fill_(0.5)
x = torch.randn(2, 3)
loss = (net(x) - frozen(x)).pow(2).mean()
loss.backward()
print(net[0].weight.grad.shape, frozen[0].weight.grad is None)
shallow = copy.copy([1, [2, 3]])
print(shallow, copy.deepcopy({'a': [1, 2]}))
""",
)

# ---- Python as tutorials write it: classes of the program's own and their protocols

# d2l's Timer, a Dataset subclass fed to a DataLoader, an iterator class, properties,
# classmethods, a context manager and an exception of the program's own.
program(
    "own_classes_and_protocols",
    """
from torch.utils.data import Dataset, DataLoader
import time

class Timer:
    '''d2l's timer: a plain class with a list of times.'''
    def __init__(self):
        self.times = []
        self.start()
    def start(self):
        self.tik = 0.0
    def stop(self):
        self.times.append(1.0)
        return self.times[-1]
    def sum(self):
        return sum(self.times)

class Squares(Dataset):
    def __init__(self, n):
        self.x = torch.arange(n, dtype=torch.float32).unsqueeze(1)
        self.y = self.x ** 2
    def __len__(self):
        return len(self.x)
    def __getitem__(self, i):
        return self.x[i], self.y[i]

class Countdown:
    def __init__(self, n):
        self.n = n
    def __iter__(self):
        return self
    def __next__(self):
        if self.n <= 0:
            raise StopIteration
        self.n -= 1
        return self.n

class Scale:
    factor = 2.0
    def __init__(self, v):
        self._v = v
    @property
    def value(self):
        return self._v * self.factor
    @classmethod
    def unit(cls):
        return cls(1.0)
    @staticmethod
    def describe():
        return "scale"
    def __eq__(self, other):
        return isinstance(other, Scale) and self._v == other._v
    def __hash__(self):
        return hash(self._v)
    def __lt__(self, other):
        return self._v < other._v
    def __len__(self):
        return 3
    def __contains__(self, x):
        return x == self._v
    def __bool__(self):
        return self._v != 0

class Recorder:
    def __init__(self):
        self.log = []
    def __enter__(self):
        self.log.append("enter")
        return self
    def __exit__(self, exc_type, exc, tb):
        self.log.append("exit")
        return False

class TrainingDiverged(RuntimeError):
    pass

t = Timer()
t.stop()
print(t.sum(), len(t.times))
torch.manual_seed(0)
ds = Squares(6)
loader = DataLoader(ds, batch_size=2, shuffle=False)
for xb, yb in loader:
    print(xb.squeeze(1), yb.squeeze(1))
print(len(ds), ds[2])
print(list(Countdown(3)))
s1, s2 = Scale(2.0), Scale.unit()
print(s1.value, s2.value, Scale.describe(), s1 == Scale(2.0), s2 < s1, len(s1), 2.0 in s1, bool(Scale(0)))
print(sorted([s1, s2])[0].value, {s1: "a"}[Scale(2.0)])
with Recorder() as r:
    r.log.append("body")
print(r.log)
try:
    raise TrainingDiverged("loss is nan")
except RuntimeError as e:
    print("caught", e)
""",
)

# d2l.ai, "Linear Regression Implementation from Scratch": the data_iter generator, and
# generators as Python tutorials write them (yield from, a return value, an endless one
# drawn from with next).
program(
    "d2l_data_iter_generators",
    """
import random
def data_iter(batch_size, features, labels):
    num_examples = len(features)
    indices = list(range(num_examples))
    random.shuffle(indices)
    for i in range(0, num_examples, batch_size):
        batch_indices = torch.tensor(indices[i: min(i + batch_size, num_examples)])
        yield features[batch_indices], labels[batch_indices]
features = torch.randn(10, 2)
labels = torch.randn(10)
w = torch.zeros(2, requires_grad=True)
for X, y in data_iter(4, features, labels):
    l = ((X @ w - y) ** 2).mean()
    l.backward()
    with torch.no_grad():
        w -= 0.1 * w.grad
        w.grad.zero_()
print(w)
def count_up(n):
    i = 0
    while i < n:
        yield i
        i += 1
    return "done"
def wrapper():
    result = yield from count_up(3)
    yield result
g = wrapper()
print(next(g), next(g), list(g))
def forever():
    k = 0
    while True:
        yield k
        k += 1
f = forever()
print([next(f) for _ in range(5)], sum(x for x in count_up(4)))
""",
)

# Course notebooks: a memoised recursion, the program's own _private names, and print of a
# module whose class says what extra_repr shows.
program(
    "lru_cache_private_names_extra_repr",
    """
import functools

@functools.lru_cache(maxsize=None)
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

@functools.lru_cache(maxsize=2)
def square(x):
    print('computing', x)
    return x * x

_scale = 0.5

def _grad_out_negexp(_x, _k=2.0):
    return torch.exp(-_k * _x) * _scale

class Scaled(nn.Module):
    def __init__(self, n):
        super().__init__()
        self._n = n
        self.w = nn.Parameter(torch.ones(n))
    def forward(self, x):
        return x * self.w
    def extra_repr(self):
        return f'n={self._n}'

print(fib(30), square(3), square(3), square(4), square(5), square(3))
x = torch.linspace(0, 1, 4, requires_grad=True)
y = _grad_out_negexp(x).sum()
y.backward()
print(x.grad)
m = Scaled(3)
print(m)
if __name__ == '__main__':
    print('main')
""",
)

# functools.lru_cache evicts the result used least recently, not the oldest one computed.
program(
    "lru_cache_evicts_least_recently_used",
    """
import functools

@functools.lru_cache(maxsize=2)
def f(n):
    print('computing', n)
    return n * n

print(f(1), f(2), f(1), f(3), f(1), f(2))
""",
)
