"""The hostile-input suite, over real sockets: each case has one exact outcome, the canary
file is untouched, no file appears, and the server still answers afterwards."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
from test_refusals import HOSTILE

from oracle import assert_matches, run_plain
from server import serve

CANARY_TEXT = "canary: chainlens must never change me\n"

# Escapes and internals, refused statically or dynamically with 400 forbidden.
MORE_FORBIDDEN = [
    "x = [c for c in ().__class__.__bases__]",
    "print.__self__",
    "print.__module__",
    "import torch\ntorch.tensor.__module__",
    "import torch.nn.functional as F\nF.relu.__globals__",
    "import torch.nn as nn\nnn.Module.__init__.__globals__",
    "import torch.nn as nn\nnet = nn.Linear(1, 1)\nnet.__dict__",
    "import torch.nn as nn\nnet = nn.Linear(1, 1)\nnet._modules",
    "import torch\nx = torch.ones(1)\nx._base",
    "import torch\nx = torch.ones(1, requires_grad=True)\n(x*2).grad_fn._saved_self",
    "import torch\nx = torch.ones(1)\nx.__class__.__init__",
    "import torch\nx = torch.ones(2)\nx.apply_(abs)",
    "import torch\nx = torch.ones(2)\nx.map_(x, abs)",
    "import torch\nx = torch.ones(2, requires_grad=True)\nx.register_post_accumulate_grad_hook(print)",
    "import torch.nn as nn\nnet = nn.Linear(1, 1)\nnet.register_forward_hook(eval)",
    "import torch\nopt = torch.optim.SGD([torch.ones(1, requires_grad=True)], lr=1)\nopt.__dict__",
    "import numpy as np\nnp.lib",
    "import numpy as np\nnp.testing",
    "import numpy as np\nnp.random.__dict__",
    "import torch\ntorch.utils.checkpoint",
    "import torch\ntorch.distributed",
    "import torch\ntorch.multiprocessing",
    "import torch\ntorch.backends.cudnn.deterministic = True",
    "import torch\ntorch.fx",
    "import torch\ntorch.package",
    "import torch\ntorch.profiler",
    "import torch\ntorch.onnx",
    "import torch\ntorch.export",
    "import torch\ntorch.testing",
    "import torch\ntorch.random.fork_rng",
    "import torch\nx = torch.ones(1, requires_grad=True)\n(x * 2).grad_fn.next_functions[0][0].variable",
    "import torch\nx = torch.ones(2, requires_grad=True)\ny = (x * 2).sum()\ny.grad_fn.metadata",
    "import torch\ntorch.autograd.graph",
    "import torch\ntorch.autograd.Function.apply",
    "import torch\ntorch.autograd.profiler.profile()",
    "from torch.utils.data import DataLoader\nDataLoader([1, 2], num_workers=2)",
    "from torch.utils.data import DataLoader\nDataLoader([1, 2], collate_fn=print)",
    "import torch\nx = torch.ones(1)\nx.type(dtype='os.system')",
    "import torch\ntorch.set_grad_enabled(False)",
    "import torch\ntorch.cuda.memory",
    "import torch\ntorch.Tensor.backward",
    "import torch\nx = torch.ones(1)\nx.type('torch.DoubleTensor')",
    "def f():\n    return f.__code__\nf()",
    "'%(a)s' % {'a': print.__self__}",
    "s = '{0.__class__.__mro__}'\nprint(s.format(1))",
    "x = [1, 2]\nx.__len__()",
    "import torch.nn as nn\nclass N(nn.Module):\n    def forward(self, x):\n        return self.__dict__\nN()(1)",
    "import torch\nclass F(torch.autograd.Function):\n    @staticmethod\n    def forward(ctx, x):\n        return ctx.__class__\nF.apply(torch.ones(1))",
    "import torch\nx = torch.ones(1)\nx.grad_fn = None",
    "import torch.nn.functional as F\nF.relu = print",
    "import torch\ntorch.pi = 3",
]

LIMITS = [
    # results that dwarf their operands, estimated before they are made
    "import torch\nx = torch.randint(0, 10, (10 ** 9,))",
    "import torch\nx = torch.randperm(10 ** 9)",
    "import torch\nx = torch.diag(torch.ones(100000))",
    "import torch\nx = torch.ones(1000).repeat_interleave(10 ** 6)",
    "import torch\nimport torch.nn.functional as F\nx = F.pad(torch.ones(2, 2), (10 ** 8, 0))",
    "import torch\nimport torch.nn.functional as F\nx = F.one_hot(torch.tensor([10 ** 8]))",
    "import torch\nx = torch.einsum('i,j->ij', torch.ones(100000), torch.ones(100000))",
    "import torch\nx = torch.cdist(torch.ones(100000, 2), torch.ones(100000, 2))",
    "import numpy as np\nx = np.mgrid[0:8000, 0:8000]",
    # the standard library: each call's size is checked before it is made
    "import math\nx = math.factorial(10 ** 7)",
    "import math\nx = math.comb(10 ** 7, 5 * 10 ** 6)",
    "import math\nx = math.prod([2 ** 4000, 2 ** 4000])",
    "import random\nx = random.getrandbits(10 ** 10)",
    "import random\nx = random.choices([1, 2], k=10 ** 9)",
    "import random\nr = random.Random(1)\nx = r.getrandbits(10 ** 10)",
    "import itertools\nx = list(itertools.product(range(10 ** 6), repeat=8))",
    "import itertools\nx = list(itertools.permutations(range(10 ** 7)))",
    "import itertools\nx = list(itertools.count())",
    "import itertools\nx = sum(itertools.repeat(1))",
    "import itertools\nfor i in itertools.cycle([1]):\n    pass",
    "import copy\nimport torch.nn as nn\nm = nn.Linear(2000, 2000)\nms = [copy.deepcopy(m) for i in range(5)]",
    "import copy\nimport torch\nx = [torch.ones(1000, 1000) for i in range(40)]\ny = copy.deepcopy(x)",
    "import operator\nx = operator.mul(2 ** 4000, 2 ** 4000)",
    "import operator\nx = operator.pow(10, 10 ** 6)",
    "import statistics\nx = statistics.mean(range(10 ** 9))",
    "import collections\nd = collections.deque(range(10 ** 8))",
    "import functools\nx = functools.reduce(lambda a, b: a * b, range(1, 10 ** 5))",
    # generators, iterators and the program's own protocols
    "def g():\n    while True:\n        yield 1\nx = list(g())",
    "def g():\n    while True:\n        yield 1\nkeep = []\nfor i in range(20000):\n"
    "    it = g()\n    next(it)\n    keep.append(it)",
    "def g(n):\n    yield from g(n + 1)\nx = next(g(0))",
    "class A:\n    def __hash__(self):\n        return hash(self)\nd = {A(): 1}",
    "class A:\n    def __eq__(self, other):\n        return self == other\nx = A() == A()",
    "class It:\n    def __iter__(self):\n        return self\n    def __next__(self):\n"
    "        return 1\nx = list(It())",
    "class A:\n    def __len__(self):\n        return len(self)\nx = len(A())",
    "x = 9 ** 9 ** 9",
    "x = 10 ** (10 ** 8)",
    "x = 2 ** 100000",
    "x = (10 ** 1000) * (10 ** 4000)",
    "x = 1 << 100000",
    "s = 'a' * 10 ** 9",
    "l = [0] * 10 ** 9",
    "s = 'ab'\nfor i in range(40):\n    s = s + s",
    "x = sum(range(10 ** 12))",
    "x = list(range(10 ** 9))",
    "import torch\nx = torch.empty(10 ** 12)",
    "import torch\nx = torch.ones(100000, 100000)",
    "import torch\nx = torch.zeros((50000, 50000))",
    "import torch\nx = torch.randn(10 ** 8)",
    "import torch\nx = torch.arange(10 ** 9)",
    "import torch\nx = torch.eye(100000)",
    "import torch\nx = torch.ones(1).expand(10 ** 9).sum()",
    "import torch\nx = torch.ones(1000).repeat(10 ** 6)",
    "import torch\nx = torch.kron(torch.ones(5000), torch.ones(5000))",
    "import torch\nx = torch.outer(torch.ones(5000), torch.ones(5000))",
    "import torch\nx = torch.cartesian_prod(torch.ones(200), torch.ones(200), torch.ones(200))",
    "import torch\nx = torch.ones(5000, 1) + torch.ones(1, 5000)",
    "import torch\nx = torch.ones(5000, 1) * torch.ones(1, 5000)",
    "import torch\na = torch.ones(1000, 1000)\nfor i in range(30):\n    b = a @ a",
    "import torch\nimport torch.nn.functional as F\ny = F.conv2d(torch.ones(1, 64, 120, 120), torch.ones(64, 64, 11, 11))",
    "import torch\nkeep = []\nfor i in range(100):\n    keep.append(torch.ones(1000, 1000))",
    "import torch.nn as nn\nm = nn.Linear(100000, 100000)",
    "import torch.nn as nn\nm = nn.Embedding(10 ** 7, 512)",
    "import torch.nn as nn\nm = nn.Conv2d(4096, 4096, 7)",
    "import torch.nn as nn\nls = [nn.Linear(1000, 1000) for i in range(20)]",
    "while True:\n    pass",
    "i = 0\nwhile i >= 0:\n    i += 1",
    "for i in range(10 ** 8):\n    pass",
    "def f(n):\n    return f(n + 1)\nf(0)",
    "def f(n):\n    return [f(n + 1) for i in range(2)]\nf(0)",
    "for i in range(10 ** 7):\n    print('x' * 100)",
    "import torch\nx = torch.ones(2, requires_grad=True)\nfor i in range(30000):\n    x = x * 1.0",
    "import torch\nx = torch.ones(2, requires_grad=True)\nfor i in range(20000):\n    (x * 2).sum().backward()",
    "import numpy as np\na = np.ones((100000, 100000))",
    "import numpy as np\na = np.zeros(10 ** 10)",
]

#: Programs only the wall clock stops: they never end, and the server that runs them
#: (``patient``) has every counted limit out of reach, so a fast machine cannot hit a
#: FLOP or operation limit first (which one fired used to depend on the machine's speed).
TIMEOUTS = [
    "import torch\nx = torch.ones(1000, 1000)\nwhile True:\n    y = x.sum()",
    "import torch\nx = torch.ones(500, 500)\ni = 0\nwhile True:\n    y = (x * 2).mean()\n    i += 1",
    "import torch\nx = torch.ones(1000, 1000)\nwhile True:\n    x = x.abs()",
    "x = 0\nwhile True:\n    x = (x + 1) % 7",
]

NONFINITE = [
    (
        "import torch\nx = torch.tensor([float('nan'), float('inf'), -float('inf'), 1.0], requires_grad=True)\n(x * 2).sum().backward()\n",
        ["nan", "inf", "-inf", 1.0],
    ),
    (
        "import torch\nx = torch.tensor([0.0, 1.0], requires_grad=True)\ny = (x.log() * x).sum()\ny.backward()\n",
        [0.0, 1.0],
    ),
    (
        "import torch\nx = torch.full((3,), float('nan'), requires_grad=True)\nx.sum().backward()\n",
        ["nan", "nan", "nan"],
    ),
]

LEAKS = [
    "import torch\ntorch.set_default_dtype(torch.float16)",
    "import torch\ntorch.set_grad_enabled(False)",
    "import torch\ntorch.set_default_device('meta')",
    "import torch\ntorch.manual_seed(1234)\nx = torch.randn(3)",
    "import torch.nn.functional as F\nF.relu = F.gelu",
    "import torch\ntorch.set_num_threads(64)",
    "import numpy as np\nnp.random.seed(99)",
    "import torch\ntorch.autograd.set_grad_enabled(False)",
    "import torch\nimport torch.nn as nn\nnn.Linear.forward = None",
]

BENIGN = (
    "import torch\nimport torch.nn.functional as F\nx = torch.randn(4, requires_grad=True)\n"
    "y = F.relu(x).sum() + torch.rand(1).sum()\ny.backward()\nprint(x.grad, y.dtype)\n"
)

PARSER_BOMBS = [
    "x = " + "(" * 300 + "1" + ")" * 300,
    "x = " + "-" * 15000 + "1",
    "x = " + "1 + " * 3000 + "1",
    "x = " + "[" * 1000 + "]" * 1000,
    "x = " + "not " * 3000 + "True",
    "def f():\n"
    + "".join("    " * i + "if True:\n" for i in range(1, 120))
    + "    " * 120
    + "pass",
    "x = 1\n" * 2800,
    "import pickle",
    "import socket",
    "import urllib.request",
    "import ctypes",
    "from numpy import load",
]

CASES: list[tuple[str, str]] = [(s, "refused") for s in HOSTILE + MORE_FORBIDDEN + PARSER_BOMBS] + [
    (s, "limit_exceeded") for s in LIMITS
]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    home = tmp_path_factory.mktemp("server-cwd")
    canary = home / "canary.txt"
    canary.write_text(CANARY_TEXT)
    os.chmod(home, 0o777)
    with serve(
        cwd=str(home),
        wall_timeout_s=5,
        max_loop_iterations=200000,
        max_backward_calls=2000,
        rate_limit_per_minute=10**6,
        max_concurrent_per_client=64,
    ) as base:
        yield base, home, canary


@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    """A server whose counted limits no program reaches within its 2 s wall clock."""
    home = tmp_path_factory.mktemp("patient-cwd")
    os.chmod(home, 0o777)
    with serve(
        cwd=str(home),
        wall_timeout_s=2,
        cpu_limit_s=3600,
        max_flops=1e30,
        max_ops=10**15,
        max_statements=10**15,
        max_loop_iterations=10**15,
        rate_limit_per_minute=10**6,
    ) as base:
        yield base


@pytest.mark.parametrize("source", TIMEOUTS)
def test_only_the_wall_clock_stops_an_endless_program(patient, source: str) -> None:
    r = _post(patient, source)
    assert r.status_code == 200, r.text
    err = r.json()["error"]
    assert err["code"] == "timeout" and "wall_timeout_s=2" in err["message"], err
    assert httpx.get(patient + "/api/v1/health", timeout=5).status_code == 200


def _post(base: str, source: str) -> httpx.Response:
    return httpx.post(
        base + "/api/v1/runs",
        content=json.dumps({"source": source}),
        headers={"content-type": "application/json"},
        timeout=60,
    )


def _assert_unharmed(base: str, home: Path, canary: Path) -> None:
    assert canary.read_text() == CANARY_TEXT
    assert sorted(p.name for p in home.iterdir()) == ["canary.txt"]
    assert not Path("/tmp/chainlens_canary_should_not_exist").exists()
    assert httpx.get(base + "/api/v1/health", timeout=5).status_code == 200


def test_suite_has_150_cases() -> None:
    total = len(CASES) + len(TIMEOUTS) + len(NONFINITE) + len(LEAKS) + len(REQUESTS)
    assert total >= 150, total


@pytest.mark.parametrize(
    "source,outcome", CASES, ids=[f"{o}-{i}" for i, (_, o) in enumerate(CASES)]
)
def test_hostile_program(hostile, source: str, outcome: str) -> None:
    base, home, canary = hostile
    r = _post(base, source)
    if outcome == "refused":
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] in ("forbidden", "syntax_error", "limit_exceeded")
    else:
        assert r.status_code == 200, r.text
        err = r.json()["error"]
        assert err is not None and err["code"] == outcome, err
        if outcome == "limit_exceeded":
            assert "limit " in err["message"] and "=" in err["message"]
    _assert_unharmed(base, home, canary)


@pytest.mark.parametrize("source,values", NONFINITE)
def test_nonfinite_inputs_run_and_are_strings(hostile, source: str, values: list) -> None:
    base, home, canary = hostile
    r = _post(base, source)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert r.json()["variables"]["x"]["value"]["values"] == values
    _assert_unharmed(base, home, canary)


@pytest.mark.parametrize("attempt", LEAKS)
def test_state_leak_attempt_then_normal_run_gives_pytorch_numbers(hostile, attempt: str) -> None:
    from chainlens.schema import Run

    base, home, canary = hostile
    assert _post(base, attempt).status_code in (200, 400)
    run = Run.model_validate(_post(base, BENIGN).json())
    assert_matches(run, run_plain(BENIGN))
    _assert_unharmed(base, home, canary)


REQUESTS = [
    (b'{"source": NaN}', 400),
    (b'{"source": Infinity}', 400),
    (b'{"source": "x", "source": "y"}', 400),
    (b'{"source": "\\ud800"}', 400),
    (b"\xff\xfe\xfd", 400),
    (b'{"source": "x", "seed": 1' + b"0" * 5000 + b"}", 400),
    (b"[" * 100000, 413),
    (b"{", 400),
    (b'"just a string"', 422),
    (b'{"source": "x", "unknown": 1}', 422),
    (b'{"source": ["x"]}', 422),
    (b'{"source": "x", "seed": -5}', 422),
    (b'{"source": "x", "device": "tpu"}', 422),
    (json.dumps({"source": "#" * 40000}).encode(), 413),
    (json.dumps({"source": "#" * 20000}).encode(), 400),
]


@pytest.mark.parametrize("body,status", REQUESTS)
def test_hostile_request(hostile, body: bytes, status: int) -> None:
    base, home, canary = hostile
    r = httpx.post(
        base + "/api/v1/runs",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert r.status_code == status, r.text[:200]
    assert len(r.content) < 4096, "errors never echo large input"
    _assert_unharmed(base, home, canary)


def test_wrong_media_and_compression_are_415(hostile) -> None:
    base, home, canary = hostile
    for headers in (
        {"content-type": "text/plain"},
        {"content-type": "application/json", "content-encoding": "gzip"},
    ):
        r = httpx.post(base + "/api/v1/runs", content=b'{"source": "x = 1"}', headers=headers)
        assert r.status_code == 415
    _assert_unharmed(base, home, canary)
