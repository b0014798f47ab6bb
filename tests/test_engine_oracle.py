"""Every example and every corpus program, compared with the same code in plain PyTorch."""

from __future__ import annotations

import pytest

import chainlens
from chainlens.examples.catalog import examples

from oracle import assert_matches, assert_view_equals, run_plain
from programs import PROGRAMS


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program_matches_pytorch(name: str) -> None:
    source = PROGRAMS[name]
    run = chainlens.run(source)
    assert_matches(run, run_plain(source))


@pytest.mark.parametrize("ex", examples(), ids=lambda e: e.id)
def test_example_matches_pytorch(ex) -> None:
    run = chainlens.run(ex.source)
    assert_matches(run, run_plain(ex.source))


def test_at_least_twelve_examples_with_titles() -> None:
    exs = examples()
    assert len(exs) >= 12
    assert all(e.title and e.description and e.source for e in exs)
    assert len({e.id for e in exs}) == len(exs)


@pytest.mark.parametrize("seed", [0, 7])
def test_seed_gives_pytorch_numbers(seed: int) -> None:
    source = "import torch\nx = torch.randn(5, requires_grad=True)\ny = (x * torch.rand(5)).sum()\ny.backward()\n"
    assert_matches(chainlens.run(source, seed=seed), run_plain(source, seed=seed))


def test_node_values_are_what_each_op_produced_before_later_in_place_changes() -> None:
    """A node shows the value its op produced, also when the program later changes that
    memory in place (a small tensor, one past the 64 values sent, a setitem under no_grad,
    and views of parameters that an optimizer's step and nn.init change: calls that are
    not the tensor's own methods); plain PyTorch, with a copy taken right after each op,
    is the oracle."""
    lines = [
        "import torch",
        "import torch.nn as nn",
        "x = torch.tensor([1.0, 2.0], requires_grad=True)",
        "y = x * 2",
        "y.add_(1)",
        "w = torch.randn(3, requires_grad=True)",
        "u = w + 1",
        "with torch.no_grad():",
        "    u[0] = 7.0",
        "big = torch.randn(100, 100, requires_grad=True)",
        "h = big + 1",
        "h.mul_(2)",
        "p = nn.Parameter(torch.randn(2, 3))",
        "opt = torch.optim.SGD([p], lr=0.5)",
        "pt = p.t()",
        "q = nn.Parameter(torch.randn(4))",
        "qv = q.view(2, 2)",
        "lin = nn.Linear(2, 2)",
        "lw = lin.weight[0]",
        "(y.sum() + u.sum() + h.sum() + pt.sum() + qv.sum() + lw.sum()).backward()",
        "opt.step()",
        "nn.init.zeros_(q)",
        "lin.load_state_dict({'weight': torch.zeros(2, 2), 'bias': torch.zeros(2)})",
    ]
    source = "\n".join(lines) + "\n"
    copied = {
        "y = x * 2": "y",
        "u = w + 1": "u",
        "h = big + 1": "h",  # line -> its result
        "pt = p.t()": "pt",
        "qv = q.view(2, 2)": "qv",
        "lw = lin.weight[0]": "lw",
    }
    plain = (
        "\n".join(
            f"{line}\n{copied[line]}_before = {copied[line]}.detach().clone()"
            if line in copied
            else line
            for line in lines
        )
        + "\n"
    )
    oracle = run_plain(plain)
    run = chainlens.run(source)
    assert run.status == "ok", run.error
    named = {name: n for n in run.nodes for name in n.names}
    for name in copied.values():
        assert_view_equals(
            named[name].value,
            oracle.variables[f"{name}_before"],
            f"node {named[name].id} ({name}) before the in-place change",
        )
    (after,) = [n for n in run.nodes if n.op == "add_"]
    assert_view_equals(after.value, oracle.variables["y"], "the add_ node")


def test_settings_a_program_changes_end_with_its_run() -> None:
    """Print options and anomaly detection are the process's: a worker's next run, and
    the caller of chainlens.run, keep their own."""
    import torch

    before = torch._tensor_str.get_printoptions(), torch.is_anomaly_enabled()
    for name in ("print_options_and_meshgrid", "detect_anomaly_nan"):
        chainlens.run(PROGRAMS[name])
        assert (torch._tensor_str.get_printoptions(), torch.is_anomaly_enabled()) == before
    run = chainlens.run("import torch\nprint(torch.ones(1) / 3)\n")
    assert run.stdout == "tensor([0.3333])\n"
