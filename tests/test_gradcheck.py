"""Finite-difference checks on request: in process, over HTTP, and from the page.

The program runs again in its own types: the analytic side of a check is plain
PyTorch's gradient for the same program, to the last bit, and the numeric side is
compared with the true derivative.
"""

from __future__ import annotations

import json

import httpx
import pytest
import torch
from test_explain import CUSTOM
from test_page import load_example, run_and_wait, table_rows

import chainlens
from chainlens import Client
from chainlens.examples.catalog import example
from chainlens.explain.gradcheck import CheckFailed, run_check
from chainlens.settings import Settings

from oracle import run_plain

S = Settings()


def check(source: str, node: str, pass_: int | None = None, elements: int = 16) -> dict:
    return run_check(source, "cpu", 0, S, "r", node, pass_, elements)


def leaf_id(run: chainlens.Run, name: str) -> str:
    return next(n.id for n in run.nodes if name in n.names and n.grad_fn == "AccumulateGrad")


def plain_grads(source: str) -> dict[str, torch.Tensor]:
    """Plain PyTorch: each leaf tensor's .grad."""
    oracle = run_plain(source)
    return {k: t.grad for k, t in oracle.variables.items() if t.is_leaf and t.grad is not None}


def flat_index(index: list[int], shape: list[int]) -> int:
    i = 0
    for k, n in zip(index, shape, strict=True):
        i = i * n + k
    return i


@pytest.mark.parametrize(
    "example_id,name", [("chain_rule", "x"), ("vjp", "x"), ("custom_relu", "x")]
)
def test_leaf_check_is_pytorchs_gradient_and_finite_differences_agree(
    example_id: str, name: str
) -> None:
    source = example(example_id).source
    run = chainlens.run(source)
    result = check(source, leaf_id(run, name))
    assert result["kind"] == "leaf" and result["dtype"] == "float32" and result["pass"] == 0
    (part,) = result["checked"]
    truth = plain_grads(source)[name].reshape(-1)
    for e in part["elements"]:
        i = flat_index(e["index"], part["shape"])
        assert e["analytic"] == float(truth[i])
        assert e["numeric"] == pytest.approx(float(truth[i]), rel=2e-3, abs=2e-3)
    assert result["ok"] and len(part["elements"]) == truth.numel()


@pytest.mark.parametrize(
    "example_id,name",
    [("lenet", "net.conv1.weight"), ("lenet", "net.fc3.bias"), ("two_layer_tensors", "w1")],
)
def test_parameter_checks_pass(example_id: str, name: str) -> None:
    source = example(example_id).source
    result = check(source, leaf_id(chainlens.run(source), name), 0, elements=6)
    assert result["ok"], result
    assert len(result["checked"][0]["elements"]) == 6


def test_later_pass_is_checked_with_that_pass_values() -> None:
    source = example("gd_autograd").source
    run = chainlens.run(source)
    node = leaf_id(run, "w")
    result = check(source, node, 3)
    assert result["pass"] == 3 and result["ok"]
    received = next(s for s in run.passes[3].steps if s.node == node).grad_output
    recorded = torch.tensor(received.values, dtype=torch.float64).reshape(-1)
    for e in result["checked"][0]["elements"]:
        got = float(recorded[flat_index(e["index"], result["checked"][0]["shape"])])
        assert e["analytic"] == pytest.approx(got, rel=1e-4, abs=1e-5)


def test_every_step_of_lenet_checks_or_says_why() -> None:
    source = example("lenet").source
    run = chainlens.run(source)
    reached = run.passes[0].steps
    leaves = {n.id for n in run.nodes if n.grad_fn == "AccumulateGrad"}
    checked = 0
    for st in reached:
        if st.node in leaves:
            continue
        try:
            result = check(source, st.node, 0, elements=4)
        except CheckFailed as e:
            assert "inside a layer" in e.message, e.message
            continue
        assert result["kind"] == "step" and result["ok"], result
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("factor,ok", [(3, False), (2, True)])
def test_hand_written_backward_is_judged(factor: int, ok: bool) -> None:
    source = CUSTOM.format(factor=factor)
    run = chainlens.run(source)
    result = check(source, leaf_id(run, "x"))
    assert result["ok"] is ok
    x = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    elements = result["checked"][0]["elements"]
    # numeric: the true derivative of x², 2x; analytic: what the program's backward says
    assert [e["numeric"] for e in elements] == pytest.approx((2 * x).tolist(), abs=1e-3)
    assert [e["analytic"] for e in elements] == pytest.approx((factor * x).tolist())
    step = check(source, next(n.id for n in run.nodes if n.grad_fn == "SquareBackward"))
    assert step["kind"] == "step" and step["ok"] is ok


def test_a_kink_is_shown_but_not_judged() -> None:
    source = (
        "import torch\nx = torch.tensor([0.0, 1.5, -1.0], requires_grad=True)\n"
        "y = torch.relu(x).sum()\ny.backward()\n"
    )
    result = check(source, leaf_id(chainlens.run(source), "x"))
    kinks = [e["kink"] for e in result["checked"][0]["elements"]]
    assert kinks == [True, False, False] and result["ok"]


def test_program_that_needs_float32_is_checked_in_float32() -> None:
    source = (
        "import torch\nw = torch.ones(2, 2, requires_grad=True)\n"
        "c = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float32)\n"
        "y = (w @ c).sum()\ny.backward()\n"
    )
    result = check(source, leaf_id(chainlens.run(source), "w"))
    assert result["dtype"] == "float32" and result["ok"]
    assert [e["analytic"] for e in result["checked"][0]["elements"]] == [3.0, 7.0, 3.0, 7.0]


def test_unreachable_node_is_a_clear_failure() -> None:
    with pytest.raises(CheckFailed, match="node n999 was not reached"):
        check(example("chain_rule").source, "n999")
    with pytest.raises(CheckFailed, match="pass 6"):  # pass index 5: the sixth
        check(example("chain_rule").source, "n1", 5)


def test_check_endpoint(base_url: str) -> None:
    client = Client(base_url)
    source = example("chain_rule").source
    run = client.run(source)
    result = client.check(run.id, leaf_id(run, "x"), 0, elements=2)
    assert result.ok and result.kind == "leaf" and len(result.checked[0].elements) == 2
    url = f"{base_url}/api/v1/runs/{run.id}/check"
    headers = {"content-type": "application/json"}
    r = httpx.post(f"{base_url}/api/v1/runs/nope/check", content=b'{"node": "n1"}', headers=headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = httpx.post(url, content=b'{"node": "n999"}', headers=headers, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["code"] == "check_failed"
    assert "n999" in r.json()["error"]["message"]
    for bad in ({"node": "n1", "elements": 0}, {"node": "n1", "extra": 1}, {}):
        r = httpx.post(url, content=json.dumps(bad), headers=headers)
        assert r.status_code == 422, (bad, r.text)
    assert httpx.post(url, content=b'{"node": "n1"}').status_code == 415
    assert httpx.get(f"{base_url}/api/v1/runs/job:{run.id}").status_code == 404


def test_check_button_on_the_page(page, base_url: str) -> None:
    load_example(page, "chain_rule")
    run_and_wait(page)
    x_row = next(r for r in table_rows(page) if r["names"] == "x")
    page.page.locator(f"table[aria-label=Nodes] tr[data-node={x_row['id']}]").click()
    page.page.get_by_role("button", name="Check numerically").click()
    region = page.page.get_by_role("region", name="Gradient check")
    region.wait_for(timeout=30_000)
    text = region.inner_text()
    assert "✓ matches finite differences" in text
    # autograd and finite differences as PyTorch gives them: dz/dx = 2 for each element
    cells = page.page.evaluate("""() => [...document.querySelectorAll('.checktable tr')]
        .slice(1).map(tr => [...tr.children].map(td => td.textContent))""")
    truth = plain_grads(example("chain_rule").source)["x"]
    assert len(cells) == 3
    for _index, analytic, numeric, mark in cells:
        assert float(analytic) == pytest.approx(float(truth[0]))
        assert float(numeric) == pytest.approx(float(truth[0]), rel=1e-3)
        assert mark == "✓"
