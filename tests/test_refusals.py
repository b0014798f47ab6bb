"""Hostile programs: each is refused with ``forbidden`` before anything runs, and nothing
is written to disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import chainlens
from chainlens import ProgramRejected

CANARY = "/tmp/chainlens_canary_should_not_exist"

HOSTILE = [
    "import os",
    "import sys",
    "import subprocess",
    "from os import system",
    "import torch.hub",
    "from torch import hub",
    "import importlib",
    "import builtins",
    "__import__('os')",
    "open('/etc/passwd')",
    f"open('{CANARY}', 'w')",
    "eval('1+1')",
    "exec('x = 1')",
    "compile('1', 'f', 'eval')",
    "getattr(1, 'real')",
    "setattr(x, 'a', 1)",
    "globals()",
    "locals()",
    "vars()",
    "dir()",
    "type(print)",
    "type(print)('x', print)",
    "object()",
    "input()",
    "breakpoint()",
    "memoryview(b'')",
    "help()",
    "exit()",
    "().__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "x = [].__class__.__mro__",
    "torch.__dict__",
    "torch._C",
    "torch.os.system('id')",
    "import torch\ntorch.os.system('id')",
    "import torch\ntorch.sys.modules",
    "import torch\ntorch.builtins",
    "import torch\ntorch.load('x.pt')",
    "import torch\ntorch.save(torch.ones(1), 'x.pt')",
    "import torch\ntorch.hub.load('a', 'b')",
    "import torch\ntorch.ops.aten",
    "import torch\ntorch.library",
    "import torch\ntorch.jit.script",
    "import torch\ntorch.compile",
    "import torch\ntorch.set_grad_enabled(False)",
    "import torch\ntorch.serialization.pickle",
    "import torch.nn.functional as F\nF.importlib",
    "import torch.nn.functional as F\nF.relu = None",
    "import torch\ntorch.utils.cpp_extension.load('x', ['x.cpp'])",
    "import torch.utils.data as d\nd.get_worker_info()",
    "import numpy as np\nnp.load('x.npy')",
    "import numpy as np\nnp.save('x.npy', np.ones(1))",
    "import numpy as np\nnp.fromfile('x')",
    "import numpy as np\nnp.ctypeslib",
    "'{0.__class__}'.format(1)",
    "f = lambda: __import__('os')",
    "async def g():\n    await g()",
    "async def g():\n    pass",
    "import dataclasses\n@dataclasses.dataclass\nclass A:\n    x: int = 1",
    "class A(int):\n    pass",
    "class A(Exception, object):\n    pass",
    "import torch\nclass A(torch.nn.Module, metaclass=type):\n    pass",
    "import torch\nclass A(torch.Tensor):\n    pass",
    "x = b'bytes'",
    "ｅｖａｌ('1')",
    "𝐭𝐨𝐫𝐜𝐡 = 1",
    "import torch\nx = torch.ones(2)\nx.storage()",
    "import torch\nx = torch.ones(2)\nx.data_ptr()",
    "import torch\nx = torch.ones(2)\nx.numpy().tofile('x')",
    "import torch\nx = torch.ones(2)\nx.__reduce_ex__(2)",
    "import torch\nx = torch.ones(2)\nx.grad_fn.__class__",
    "import torch\nx = torch.ones(2, requires_grad=True)\n(x*2).grad_fn.register_hook(print)",
    "import torch.nn as nn\nm = nn.Linear(1, 1)\nm.share_memory()",
    "import torch\ntorch.Tensor.backward",
    "match x:\n    case 1:\n        pass",
    "from torch import *",
    "from . import x",
    "@print\ndef f():\n    pass",
    "import torch\n@torch.jit.script\ndef f(x):\n    return x",
    "import torch\nno_grad = print\n@no_grad()\ndef f():\n    pass",
    "import torch\ntorch.set_grad_enabled(False)",
    "import torch\nwith torch.no_grad():\n    torch.set_grad_enabled(True)",
    "import torch\nmode = torch.set_grad_enabled\nmode(False)",
    "from torch import set_grad_enabled\nset_grad_enabled(False)",
    "try:\n    pass\nexcept BaseException:\n    pass",
    "raise SystemExit",
    "import torch\nwith open('x') as f:\n    pass",
    "import torch\nx = torch.ones(1)\nwith x:\n    pass",
    "x = __builtins__",
    "class A(nn.Module):\n    def __getattr__(self, name):\n        return 1",
    "class A(nn.Module):\n    def __init_subclass__(cls):\n        pass",
    "class A(nn.Module):\n    def __reduce__(self):\n        return 1",
    "class A(nn.Module):\n    def __del__(self):\n        pass",
    "class A(nn.Module):\n    def __class_getitem__(cls, item):\n        return 1",
]

#: Names starting with '_' on what a library made: refused when the program reaches them,
#: before anything further runs.
LIBRARY_PRIVATE = [
    "import torch\nx = torch.ones(1)\ny = x._version",
    "import torch.nn as nn\nm = nn.Linear(1, 1)\np = m._parameters",
    "import torch.nn as nn\nclass N(nn.Module):\n    def forward(self, x):\n        return x\n"
    "n = N()\nh = n._forward_hooks",
    "import torch.nn as nn\nclass N(nn.Module):\n    def forward(self, x):\n        return x\n"
    "n = N()\nn._parameters = {}",
    "import torch\nx = torch.ones(1)\nx._secret = 1",
    "import random\nr = random._inst",
]


@pytest.mark.parametrize("source", LIBRARY_PRIVATE)
def test_private_names_of_library_objects_are_refused(source: str) -> None:
    with pytest.raises(ProgramRejected) as err:
        chainlens.run(source)
    assert err.value.code == "forbidden" and "program's own objects" in err.value.message


@pytest.fixture(autouse=True)
def _no_canary():
    if os.path.exists(CANARY):
        os.remove(CANARY)
    before = set(os.listdir("."))
    yield
    assert not os.path.exists(CANARY)
    assert set(os.listdir(".")) - before == set(), "a file was created"


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_program_is_refused_before_running(source: str) -> None:
    marker = "print('ran')\n"
    with pytest.raises(ProgramRejected) as err:
        chainlens.run(marker + source)
    assert err.value.code in ("forbidden", "syntax_error")
    assert err.value.line is not None


def test_hostile_suite_size() -> None:
    assert len(HOSTILE) >= 60


def test_static_refusals_happen_before_any_statement_runs(tmp_path: Path) -> None:
    from chainlens.language.checker import parse
    from chainlens.settings import Settings

    with pytest.raises(ProgramRejected) as err:
        parse("x = 1\nimport os\n", Settings())
    assert (err.value.line, err.value.code) == (2, "forbidden")


def test_syntax_error_has_line() -> None:
    with pytest.raises(ProgramRejected) as err:
        chainlens.run("x = 1\ny = (\n")
    assert err.value.code == "syntax_error"
    assert err.value.line == 2


#: Modules that reach files, processes, the network or the interpreter: each refused with
#: what to write instead.
@pytest.mark.parametrize(
    "module,hint",
    [
        ("os", "cannot reach files"),
        ("sys", "print writes"),
        ("pathlib", "cannot reach files"),
        ("pickle", "cannot load or save"),
        ("subprocess", "cannot start processes"),
        ("socket", "cannot reach the network"),
        ("importlib", "by name"),
        ("torchvision", "torch.randn(64, 1, 28, 28)"),
        ("matplotlib", "loss curve"),
    ],
)
def test_a_refused_import_says_what_to_write_instead(module: str, hint: str) -> None:
    with pytest.raises(ProgramRejected) as err:
        chainlens.run(f"import torch\nimport {module}\n")
    assert (err.value.code, err.value.line, err.value.col) == ("forbidden", 2, 1)
    assert hint in err.value.message, err.value.message
    assert "math, random, itertools" in err.value.message


def test_an_import_with_no_way_round_says_what_may_be_imported() -> None:
    with pytest.raises(ProgramRejected) as err:
        chainlens.run("import ctypes\n")
    assert err.value.message.endswith("copy, time and typing"), err.value.message


def test_shadowing_a_refused_builtin_is_allowed() -> None:
    run = chainlens.run("def f(input):\n    return input * 2\nprint(f(3))\n")
    assert run.stdout == "6\n"


@pytest.mark.parametrize(
    "source,limit",
    [
        ("x = 9 ** 9 ** 9", "max_int_bits"),
        ("x = 10 ** (10 ** 8)", "max_int_bits"),
        ("s = 'a' * 10 ** 9", "max_sequence_length"),
        ("import torch\nx = torch.empty(10 ** 12)", "max_tensor_elements"),
        ("import torch\nx = torch.Tensor(10 ** 10)", "would make a tensor"),
        ("import torch\nx = torch.FloatTensor(100000, 100000)", "would make a tensor"),
        (
            "import torch\nfrom torch.utils.data import TensorDataset\n"
            "ds = TensorDataset(torch.ones(1000, 1000))\nrows = ds[torch.zeros(100000, dtype=torch.long)]",
            "would make a tensor",
        ),
        ("import torch\nx = torch.ones(100000, 100000)", "max_tensor_elements"),
        ("import torch\nx = torch.ones(1).expand(10 ** 9).sum()", "max_tensor_elements"),
        ("import torch\nx = torch.kron(torch.ones(5000), torch.ones(5000))", "max_tensor_elements"),
        (
            "import torch\nx = torch.outer(torch.ones(5000), torch.ones(5000))",
            "max_tensor_elements",
        ),
        ("import torch\nx = torch.ones(5000, 1) + torch.ones(1, 5000)", "max_tensor_elements"),
        (
            "import torch\nimport torch.nn.functional as F\n"
            "y = F.conv2d(torch.ones(1, 64, 120, 120), torch.ones(64, 64, 11, 11))",
            "max_flops_per_op",
        ),
        (
            "import torch\na = torch.ones(1000, 1000)\nfor i in range(30):\n    b = a @ a",
            "max_flops",
        ),
        (
            "import torch\na = torch.randn(1000, 1000)\nfor i in range(30):\n    b = a.inverse()",
            "max_flops",
        ),
        ("while True:\n    pass", "max_loop_iterations"),
        ("import torch.nn as nn\nm = nn.Linear(100000, 100000)", "max_layer_parameters"),
        ("import torch.nn as nn\nm = nn.Embedding(10 ** 7, 512)", "max_layer_parameters"),
        ("import torch.nn as nn\nm = nn.MultiheadAttention(4096, 8)", "max_layer_parameters"),
        (
            "import torch.nn as nn\nlayer = nn.TransformerEncoderLayer(512, 8)\n"
            "enc = nn.TransformerEncoder(layer, num_layers=6)",
            "max_layer_parameters",
        ),
        # attention and resampling are estimated before they run, not caught once allocated
        (
            "import torch\nimport torch.nn.functional as F\nq = torch.ones(1, 1, 20000, 8)\n"
            "a = F.scaled_dot_product_attention(q, q, q)",
            "would make a tensor",
        ),
        (
            "import torch\nimport torch.nn as nn\nm = nn.MultiheadAttention(8, 2)\n"
            "x = torch.ones(5000, 1, 8)\nout = m(x, x, x)",
            "would make a tensor",
        ),
        (
            "import torch\nimport torch.nn.functional as F\n"
            "y = F.interpolate(torch.ones(1, 1, 10, 10), scale_factor=1000)",
            "would make a tensor",
        ),
        (
            "import torch\nimport torch.nn.functional as F\n"
            "y = F.interpolate(torch.ones(1, 3, 10, 10), None, 1000)",
            "would make a tensor",
        ),
        (
            "import torch\nimport torch.nn as nn\n"
            "y = nn.Upsample(size=(5000, 5000))(torch.ones(1, 3, 10, 10))",
            "would make a tensor",
        ),
        # a dense Jacobian of n input elements has n x n entries: refused before it is built
        (
            "import torch\nfrom torch.autograd import gradcheck\n"
            "ok = gradcheck(torch.sigmoid, (torch.randn(5000, dtype=torch.double, requires_grad=True),))",
            "would build a Jacobian",
        ),
        (
            "import torch\nJ = torch.autograd.functional.jacobian(torch.tanh, torch.ones(3000))",
            "would build a Jacobian",
        ),
        (
            "import torch\nH = torch.autograd.functional.hessian(lambda v: (v ** 3).sum(), "
            "inputs=torch.ones(2500))",
            "would build a Jacobian",
        ),
        (
            "import torch.nn as nn\nls = [nn.Linear(1000, 1000) for i in range(20)]",
            "max_parameters",
        ),
        (
            "import torch\nkeep = []\nfor i in range(100):\n    keep.append(torch.ones(1000, 1000))",
            "max_live_elements",
        ),
        ("def f(n):\n    return f(n + 1)\nf(0)", "max_recursion_depth"),
        ("for i in range(10 ** 7):\n    print(i)", "max_stdout_bytes"),
    ],
)
def test_limits_end_the_run_with_limit_exceeded(source: str, limit: str) -> None:
    run = chainlens.run(source)
    assert run.status == "error"
    assert run.error.code == "limit_exceeded", run.error
    assert limit in run.error.message
