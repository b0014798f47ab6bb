"""``chainlens.record`` / ``trace`` / ``show``: the user's own code, recorded in the
user's own process, against plain PyTorch running the same code, and against the
sandbox's Run for programs both can run.

The user's model lives in a module of its own (``mynets.py``, written here in the
style of the PyTorch "Neural Networks" and "Defining new autograd Functions"
tutorials): an import the sandbox refuses.
"""

from __future__ import annotations

import importlib
import json
import runpy
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import chainlens
from chainlens.examples.catalog import examples
from chainlens.recording import Recording
from chainlens.schema import Run

from oracle import assert_view_equals, run_plain

USER_MODULE = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Cube(torch.autograd.Function):
    """x**3, its backward written by hand from the power rule."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.pow(3)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * 3 * x.pow(2)


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.fc2 = nn.Linear(3, 1)

    def forward(self, x):
        h = torch.tanh(self.fc1(x))  # @tanh
        h = Cube.apply(h)  # @cube
        return self.fc2(h).mean()  # @mean
'''


@pytest.fixture
def mynets(tmp_path: Path) -> Iterator[Any]:
    """The user's module, imported from its own file."""
    (tmp_path / "mynets.py").write_text(USER_MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module("mynets")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("mynets", None)


def _line_of(marker: str) -> int:
    return next(i for i, text in enumerate(USER_MODULE.splitlines(), 1) if f"# @{marker}" in text)


def _node(run: Run, op: str) -> Any:
    return next(n for n in run.nodes if n.op == op)


def _grads_at_leaves(run: Run, index: int = -1) -> dict[str, Any]:
    """Each named leaf's gradient as the pass's AccumulateGrad step received it."""
    names = {n.id: n.names[0] for n in run.nodes if n.kind == "leaf" and n.names}
    return {
        names[s.node]: s.grad_output
        for s in run.passes[index].steps
        if s.node in names and s.grad_output is not None
    }


def test_a_model_from_the_users_own_module_is_pytorchs(mynets: Any) -> None:
    torch.manual_seed(0)
    plain = mynets.TinyNet()
    x = torch.randn(5, 4)
    plain_loss = plain(x)
    plain_loss.backward()

    torch.manual_seed(0)
    net = mynets.TinyNet()
    with chainlens.record() as rec:
        loss = net(x)
        loss.backward()
    run = rec.run
    assert run is not None and run.status == "ok"
    assert torch.equal(loss, plain_loss)  # chainlens only watched
    for (name, p), (_, q) in zip(net.named_parameters(), plain.named_parameters(), strict=True):
        assert torch.equal(p.grad, q.grad), name
    # the Run's numbers are those tensors
    assert run.passes[0].loss == pytest.approx(plain_loss.item(), rel=0, abs=0)
    grads = _grads_at_leaves(run)
    for name, p in plain.named_parameters():
        assert_view_equals(grads[f"net.{name}"], p.grad, name)
    # the nodes point into the user's file, at the lines that made them
    file = str(Path(mynets.__file__))
    for op, marker in (("tanh", "tanh"), ("mean", "mean")):
        node = _node(run, op)
        assert (node.file, node.line) == (file, _line_of(marker))
    assert _node(run, "Linear").module == "net.fc1"
    tanh = _node(run, "tanh")
    assert_view_equals(tanh.value, torch.tanh(plain.fc1(x)), "tanh")


def test_a_custom_function_in_the_users_module_is_checked_and_shown(mynets: Any) -> None:
    torch.manual_seed(0)
    net = mynets.TinyNet()
    with chainlens.record() as rec:
        net(torch.randn(2, 4)).backward()
    run = rec.run
    assert run is not None
    node = next(n for n in run.nodes if n.grad_fn == "CubeBackward")
    assert (node.op, node.line) == ("Cube", _line_of("cube"))
    step = next(s for p in run.passes for s in p.steps if s.node == node.id)
    formula = step.formula
    assert formula is not None and formula.kind == "custom"
    assert formula.code.startswith("def backward(ctx, grad_output):")
    assert "return grad_output * 3 * x.pow(2)" in formula.code
    assert formula.verified  # finite differences agree with the user's backward
    assert not run.cut_edges  # its forward runs with grad off: that is not a cut


def test_a_training_loop_shows_each_pass_with_its_own_parameters(mynets: Any) -> None:
    def train(record: bool) -> tuple[list[float], list[dict[str, torch.Tensor]], Run | None]:
        torch.manual_seed(0)
        net = mynets.TinyNet()
        opt = torch.optim.SGD(net.parameters(), lr=0.5)
        x, y = torch.randn(8, 4), torch.randn(8, 1)
        losses, params = [], []
        rec = chainlens.record() if record else None
        with rec if rec is not None else _nothing():
            for _ in range(4):
                params.append({k: v.detach().clone() for k, v in net.named_parameters()})
                loss = F_mse(net.fc2(torch.tanh(net.fc1(x))), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
        return losses, params, rec.run if rec is not None else None

    plain_losses, plain_params, _ = train(False)
    losses, _, run = train(True)
    assert run is not None
    assert losses == plain_losses
    assert [p.loss for p in run.passes] == pytest.approx(plain_losses, rel=0, abs=0)
    leaf = {n.names[0]: n for n in run.nodes if n.kind == "leaf" and n.names}
    weight = leaf["net.fc1.weight"]
    for k in (1, 2, 3):  # a parameter at pass k has its pass-k value
        seen = run.passes[k].leaf_values.get(weight.id, weight.value)
        assert_view_equals(seen, plain_params[k]["fc1.weight"], f"fc1.weight at pass {k}")


def F_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.mse_loss(a, b)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _sandbox_and_recorded(source: str, path: Path) -> tuple[dict, dict]:
    path.write_text(source)
    sandboxed = chainlens.run(source).model_dump(mode="json")
    torch.manual_seed(0)  # (the sandbox seeds its run with 0)
    names: dict[str, Any] = {}
    rec = Recording(variables=lambda: names)
    # (its warnings are the program's own, shown to the user as without chainlens: kept)
    with (
        warnings.catch_warnings(record=True),
        pytest.raises(Exception) if sandboxed["status"] == "error" else _nothing(),
        rec,
    ):
        names.update(runpy.run_path(str(path), run_name="__main__"))
    assert rec.run is not None
    return sandboxed, rec.run.model_dump(mode="json")


@pytest.mark.parametrize("ex", examples(), ids=lambda e: e.id)
def test_the_same_run_as_the_sandbox(ex: Any, tmp_path: Path) -> None:
    """Every example, run by the sandbox and recorded as a script of the user's own:
    the same nodes, values, steps, gradients, formulas, cuts, errors and output. What
    only an interpreter sees differs, and only that: the names of computed values and a
    loop variable's earlier names (a program's assignments name each value; a recording
    knows the names alive at backward and at the end) and a leaf overwritten by
    assignment."""
    sandboxed, recorded = _sandbox_and_recorded(ex.source, tmp_path / f"{ex.id}.py")
    file = str(tmp_path / f"{ex.id}.py")
    assert [n["id"] for n in recorded["nodes"]] == [n["id"] for n in sandboxed["nodes"]]
    for a, b in zip(sandboxed["nodes"], recorded["nodes"], strict=True):
        assert a.pop("file") is None and b.pop("file") in (file, None)
        names, seen = a.pop("names"), b.pop("names")
        if a["kind"] == "leaf":  # named (and labelled) first as the program names it
            assert seen[:1] == names[:1] and set(seen) <= set(names)
        assert a == b
    for key in ("passes", "losses", "cut_edges", "status", "error", "stdout", "device"):
        assert recorded[key] == sandboxed[key], key
    only_by_assignment = {"leaf_overwritten"}
    assert [d["code"] for d in recorded["diagnostics"]] == [
        d["code"] for d in sandboxed["diagnostics"] if d["code"] not in only_by_assignment
    ]


def test_recording_puts_back_everything_it_set() -> None:
    from torch.nn.modules import module as nn_module

    pre = len(nn_module._global_forward_pre_hooks)
    apply = torch.autograd.Function.__dict__["apply"]
    stdout = sys.stdout
    x = torch.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        with chainlens.record() as rec:
            (x * 2).backward()  # the classic mistake: raised as it is, not swallowed
    assert not torch._C._is_torch_function_mode_enabled()
    assert len(nn_module._global_forward_pre_hooks) == pre
    assert torch.autograd.Function.__dict__["apply"] is apply
    assert sys.stdout is stdout
    run = rec.run
    assert run is not None and run.status == "error"
    assert run.error is not None and run.error.type == "RuntimeError"
    assert "non_scalar_backward" in {d.code for d in run.diagnostics}


def test_a_second_recording_of_the_same_graph_starts_afresh() -> None:
    """``show(loss)`` records backward of a graph another recording labelled: the ids of
    one recording are not the other's."""
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    with chainlens.record() as first:
        loss = (w.exp() * 3).sum()
    again = chainlens.trace(loss.backward)
    assert first.run is not None
    labelled = [(n.id, n.grad_fn) for n in first.run.nodes]
    assert labelled == [(n.id, n.grad_fn) for n in again.nodes]  # labelled again, afresh
    assert labelled[-1][1] == "SumBackward0" and [p.root for p in again.passes] == ["n4"]
    assert_view_equals(_grads_at_leaves(again)["w"], 3 * w.detach().exp(), "w")


def test_trace_runs_backward_from_the_loss_it_returns(mynets: Any) -> None:
    torch.manual_seed(0)
    net = mynets.TinyNet()
    x = torch.randn(3, 4)
    run = chainlens.trace(net, x)
    assert len(run.passes) == 1 and run.passes[0].recorded
    assert net.fc1.weight.grad is not None
    assert_view_equals(_grads_at_leaves(run)["net.fc1.weight"], net.fc1.weight.grad, "fc1")
    assert _saved_payload(run.to_html())["file"] == __file__  # the caller's, not chainlens's


def test_what_the_code_prints_is_shown_and_kept(capsys: pytest.CaptureFixture[str]) -> None:
    with chainlens.record() as rec:
        print("epoch 0: loss 1.25")
    assert capsys.readouterr().out == "epoch 0: loss 1.25\n"
    assert rec.run is not None and rec.run.stdout == "epoch 0: loss 1.25\n"


def test_a_recording_is_not_the_sandbox(tmp_path: Path) -> None:
    """What the sandbox refuses (an import of the user's own helper module) runs when
    recorded: it is the user's code on the user's machine."""
    (tmp_path / "helper.py").write_text("def scale():\n    return 3.0\n")
    script = tmp_path / "script.py"
    script.write_text(
        "import torch\nfrom helper import scale\n"
        "x = torch.ones(2, requires_grad=True)\n(x * scale()).sum().backward()\n"
    )
    with pytest.raises(chainlens.ProgramRejected, match="helper"):
        chainlens.run(script.read_text())
    sys.path.insert(0, str(tmp_path))
    try:
        with chainlens.record() as rec:
            runpy.run_path(str(script))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("helper", None)
    assert rec.run is not None and rec.run.status == "ok"
    last = rec.run.passes[0].steps[-1]
    assert rec.run.nodes[0].kind == "leaf" and last.node == rec.run.nodes[0].id
    assert last.grad_output is not None and last.grad_output.values == [3.0, 3.0]


def test_the_cli_traces_a_script(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        "import torch\nw = torch.tensor([2.0, 3.0], requires_grad=True)\n"
        "loss = (w ** 2).sum()\nloss.backward()\nprint(w.grad)\n"
    )
    out = tmp_path / "train.json"
    from chainlens.cli import main

    page = tmp_path / "train.html"
    assert main(["trace", "--json", str(out), "--html", str(page), str(script)]) == 0
    run = Run.model_validate_json(out.read_text())
    html = page.read_text()
    assert html.startswith("<!doctype html>") and f'"id":"{run.id}"' in html
    assert "loss = (w ** 2).sum()" in html  # the script, for the viewer's editor
    assert run.stdout == "tensor([4., 6.])\n"
    assert [n.file for n in run.nodes] == [str(script)] * len(run.nodes)
    assert run.variables["w"].grad is not None and run.variables["w"].grad.values == [4.0, 6.0]


def test_the_cli_saves_a_program_run_as_html(tmp_path: Path) -> None:
    program = tmp_path / "chain.py"
    program.write_text(next(e.source for e in examples() if e.id == "chain_rule"))
    page = tmp_path / "chain.html"
    from chainlens.cli import main

    assert main(["run", str(program), "--html", str(page)]) == 0
    data = _saved_payload(page.read_text())
    assert data["source"] == program.read_text() and data["file"] == str(program)
    plain = run_plain(program.read_text()).variables["out"]
    assert Run.model_validate(data["run"]).passes[0].loss == plain.item()


def _saved_payload(html: str) -> dict:
    """What a saved page carries: the Run, the program and its file."""
    payload = html.split('<script type="application/json" id="chainlens-run">')[1]
    return json.loads(payload.split("</script>")[0])
