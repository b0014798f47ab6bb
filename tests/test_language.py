"""The language's Python beyond the corpus: limits of the constructs that hold state (a
cache, generators), and what stays refused. Every program's numbers are compared with
plain Python in test_engine_oracle (the corpus in programs.py)."""

from __future__ import annotations

import pytest

import chainlens
from chainlens import ProgramRejected
from chainlens.settings import Settings


def limit_of(source: str, **settings: int) -> str:
    run = chainlens.run(source, settings=Settings(**settings))
    assert run.status == "error" and run.error.code == "limit_exceeded", run.error
    return run.error.message


def test_an_unbounded_cache_stops_at_the_sequence_limit() -> None:
    source = (
        "import functools\n@functools.lru_cache(maxsize=None)\ndef f(n):\n    return n\n"
        "for i in range(5000):\n    f(i)\n"
    )
    message = limit_of(source, max_sequence_length=1000)
    assert message.startswith("limit max_sequence_length=1000 exceeded: the cache of f()")


def test_a_bounded_cache_keeps_only_its_size() -> None:
    source = (
        "import functools\n@functools.lru_cache(maxsize=10)\ndef f(n):\n    return n\n"
        "for i in range(5000):\n    f(i)\nprint(f(4999))\n"
    )
    run = chainlens.run(source, settings=Settings(max_sequence_length=1000))
    assert run.status == "ok" and run.stdout == "4999\n"


def test_generators_left_open_stop_at_their_limit() -> None:
    source = (
        "def g():\n    while True:\n        yield 1\nkeep = []\nfor i in range(100):\n"
        "    it = g()\n    next(it)\n    keep.append(it)\n"
    )
    message = limit_of(source, max_live_generators=50)
    assert message.startswith("limit max_live_generators=50 exceeded")


def test_finished_generators_do_not_count() -> None:
    source = (
        "def g(n):\n    for i in range(n):\n        yield i\n"
        "total = 0\nfor k in range(200):\n    total += sum(list(g(3)))\nprint(total)\n"
    )
    run = chainlens.run(source, settings=Settings(max_live_generators=5))
    assert run.status == "ok" and run.stdout == "600\n"


def test_an_endless_iterator_of_the_programs_own_counts_as_a_loop() -> None:
    source = (
        "class It:\n    def __iter__(self):\n        return self\n"
        "    def __next__(self):\n        return 1\nx = list(It())\n"
    )
    assert limit_of(source, max_loop_iterations=1000).startswith(
        "limit max_loop_iterations=1000 exceeded"
    )


@pytest.mark.parametrize(
    "source",
    [
        "yield 1",
        "x = [(yield 1)]",
    ],
)
def test_yield_outside_a_function_is_refused(source: str) -> None:
    with pytest.raises(ProgramRejected) as err:
        chainlens.run(source)
    assert "outside a function" in err.value.message


def test_exit_never_swallows_chainlens_errors() -> None:
    """A context manager whose __exit__ returns True suppresses the program's errors, as in
    Python, but not the limits: the run still stops at max_loop_iterations."""
    source = (
        "class Quiet:\n    def __enter__(self):\n        return self\n"
        "    def __exit__(self, t, e, tb):\n        return True\n"
        "with Quiet():\n    raise ValueError('hidden')\nprint('after')\n"
        "with Quiet():\n    while True:\n        pass\n"
    )
    run = chainlens.run(source, settings=Settings(max_loop_iterations=1000))
    assert run.stdout == "after\n"
    assert run.error is not None and run.error.message.startswith(
        "limit max_loop_iterations=1000 exceeded"
    )


# ---- lecture-sized work runs under the default limits

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from oracle import assert_matches, run_plain  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from workloads import makemore  # noqa: E402

#: PyTorch, "Fusing Convolution and Batch Norm using Custom Function": gradcheck of the
#: fused function over its 1,605 inputs (written by us in its shape: a double-precision
#: conv and batch norm, checked end to end).
CONV_BN_GRADCHECK = """import torch
import torch.nn.functional as F
torch.manual_seed(0)
X = torch.rand(2, 3, 4, 4, requires_grad=True, dtype=torch.double)
W = torch.rand(5, 3, 3, 3, requires_grad=True, dtype=torch.double)
bn_w = torch.rand(5, requires_grad=True, dtype=torch.double)
bn_b = torch.rand(5, requires_grad=True, dtype=torch.double)
extra = torch.rand(1364, requires_grad=True, dtype=torch.double)
def conv_bn(X, W, bn_w, bn_b, extra):
    y = F.conv2d(X, W)
    y = F.batch_norm(y, None, None, bn_w, bn_b, training=True)
    return y.sum() + (extra * 0.5).sum()
print(X.numel() + W.numel() + bn_w.numel() + bn_b.numel() + extra.numel())
print(torch.autograd.gradcheck(conv_bn, (X, W, bn_w, bn_b, extra)))
"""

MNIST_SHAPED = """import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
X = torch.randn(10000, 784)
Y = torch.randint(0, 10, (10000,))
loader = DataLoader(TensorDataset(X, Y), batch_size=1000, shuffle=True)
model = nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for xb, yb in loader:
    opt.zero_grad()
    loss = F.cross_entropy(model(xb), yb)
    loss.backward()
    opt.step()
print(len(loader.dataset), round(loss.item(), 4))
"""


@pytest.mark.parametrize(
    "source",
    [CONV_BN_GRADCHECK, MNIST_SHAPED, makemore(1000)],
    ids=["gradcheck_1605_inputs", "mnist_shaped_10000", "makemore_1000"],
)
def test_lecture_sized_programs_run_under_the_default_limits(source: str) -> None:
    run = chainlens.run(source)
    assert run.status == "ok", run.error
    assert_matches(run, run_plain(source))
