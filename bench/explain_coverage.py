"""How many backward steps get a verified formula, by grad_fn type (issue 6: ≥ 95 %).

Runs reference programs through the engine and counts, for every recorded step, whether
its formula's numbers reproduced the engine's gradients. Lists the types that are not
explained. Deterministic: no timing involved.

    .venv/bin/python bench/explain_coverage.py
"""

from __future__ import annotations

import sys
from collections import Counter

import torch

import chainlens
from chainlens.examples.catalog import examples

torch.set_num_threads(1)

REFERENCE = {
    "MLP + cross-entropy": """import torch
import torch.nn as nn
import torch.nn.functional as F
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
x = torch.randn(5, 4)
y = torch.tensor([0, 2, 1, 1, 0])
loss = F.cross_entropy(model(x), y)
loss.backward()
""",
    "LeNet + MSE": next(e.source for e in examples() if e.id == "lenet"),
    "CNN + BatchNorm, LeakyReLU, Dropout": """import torch
import torch.nn as nn
import torch.nn.functional as F
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(4 * 4 * 4, 2)
    def forward(self, x):
        x = F.leaky_relu(self.bn(self.conv(x)), 0.1)
        x = F.avg_pool2d(x, 2)
        x = self.drop(torch.flatten(x, 1))
        return self.fc(x)
net = Net()
out = net(torch.randn(3, 1, 8, 8))
loss = F.mse_loss(out, torch.zeros(3, 2))
loss.backward()
""",
    "LSTM cell with gates": """import torch
torch.manual_seed(0)
W = torch.randn(4 * 5, 3 + 5, requires_grad=True)
b = torch.zeros(4 * 5, requires_grad=True)
h = torch.zeros(1, 5)
c = torch.zeros(1, 5)
for t in range(3):
    x = torch.randn(1, 3)
    gates = torch.cat([x, h], dim=1) @ W.t() + b
    i, f, g, o = gates.chunk(4, dim=1)
    i = torch.sigmoid(i)
    f = torch.sigmoid(f)
    g = torch.tanh(g)
    o = torch.sigmoid(o)
    c = f * c + i * g
    h = o * torch.tanh(c)
loss = (h ** 2).sum()
loss.backward()
""",
    "causal self-attention": """import torch
import torch.nn as nn
import torch.nn.functional as F
torch.manual_seed(0)
T, C = 4, 8
x = torch.randn(1, T, C, requires_grad=True)
ln = nn.LayerNorm(C)
qkv = nn.Linear(C, 3 * C)
proj = nn.Linear(C, C)
h = ln(x)
q, k, v = qkv(h).split(C, dim=2)
att = (q @ k.transpose(1, 2)) / (C ** 0.5)
mask = torch.tril(torch.ones(T, T)) == 0
att = att.masked_fill(mask, float('-inf'))
att = F.softmax(att, dim=-1)
y = proj(att @ v)
out = F.gelu(y + x)
loss = out.pow(2).mean()
loss.backward()
""",
    "Embedding + log_softmax + NLL": """import torch
import torch.nn as nn
import torch.nn.functional as F
torch.manual_seed(0)
emb = nn.Embedding(10, 6)
fc = nn.Linear(6, 4)
tokens = torch.tensor([1, 3, 3, 7])
logits = fc(emb(tokens))
loss = F.nll_loss(F.log_softmax(logits, dim=1), torch.tensor([0, 1, 2, 3]))
loss.backward()
""",
    "elementwise mix": """import torch
x = torch.tensor([0.5, 1.5, 2.0], requires_grad=True)
w = torch.tensor([1.0, -2.0, 0.25], requires_grad=True)
a = torch.exp(x) * torch.sin(w) - torch.log(x) / torch.cos(w)
b = torch.sqrt(x) + torch.rsqrt(x) + torch.abs(w) + torch.sigmoid(w) * torch.tanh(x)
c = torch.clamp(a, -3, 3) + torch.maximum(a, b) - torch.minimum(a, b) + torch.where(x > 1, a, b)
d = F_relu = torch.relu(c) + torch.nn.functional.softplus(c) + (-c) ** 2 + x ** w
loss = d.sum() + torch.linalg.vector_norm(d) + d.max() + d.mean()
loss.backward()
""",
    "reshape / permute / cat zoo": """import torch
x = torch.arange(24.0).reshape(2, 3, 4).requires_grad_(True)
y = x.permute(2, 0, 1).reshape(4, 6).t()
z = torch.cat([y[:, :2], y[1:3].repeat(3, 1)[:6, 2:]], dim=1)
s = torch.stack([z, z * 2]).sum(0)
u = s.unsqueeze(0).transpose(1, 2).squeeze(0).reshape(-1)
v = u[torch.tensor([0, 3, 3, 5])] + u.expand(2, u.shape[0])[1, :4]
loss = (v * v).sum() + x[:, 2].mean() + x[0, 1:, ::2].sum()
loss.backward()
""",
    "linear regression with SGD": """import torch
torch.manual_seed(0)
X = torch.randn(20, 2)
y = X @ torch.tensor([2.0, -3.0]) + 1.0
w = torch.zeros(2, requires_grad=True)
b = torch.zeros(1, requires_grad=True)
opt = torch.optim.SGD([w, b], lr=0.1)
for step in range(5):
    opt.zero_grad()
    loss = ((X @ w + b - y) ** 2).mean()
    loss.backward()
    opt.step()
""",
    "custom Function": next(e.source for e in examples() if e.id == "custom_relu"),
}


def main() -> int:
    total: Counter[str] = Counter()
    verified: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for name, source in REFERENCE.items():
        run = chainlens.run(source)
        if run.status != "ok":
            print(f"{name}: {run.error}", file=sys.stderr)
            return 1
        by_id = {n.id: n for n in run.nodes}
        steps = [s for p in run.passes for s in p.steps]
        ok = 0
        for s in steps:
            grad_fn = by_id[s.node].grad_fn
            kind = (
                "custom"
                if s.formula and s.formula.model_dump().get("kind") == "custom"
                else grad_fn
            )
            total[kind] += 1
            f = s.formula.model_dump() if s.formula else {}
            kinds[f.get("kind", "none")] += 1
            if f.get("verified"):
                verified[kind] += 1
                ok += 1
        print(f"{name:<38} {ok:>4}/{len(steps):<4} steps verified")
    n, v = sum(total.values()), sum(verified.values())
    print()
    print(f"{'grad_fn':<40}{'verified':>10}")
    for kind in sorted(total):
        print(f"{kind:<40}{verified[kind]:>5}/{total[kind]:<4}")
    print()
    print(f"by formula kind: {dict(kinds)}")
    missing = sorted(k for k in total if verified[k] < total[k])
    print(f"verified: {v}/{n} = {100 * v / n:.1f} % (target 95 %)")
    print(f"not (always) explained: {', '.join(missing) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
