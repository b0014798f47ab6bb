"""GET /api/v1/runs/{id}/tensors/{node}: a node's tensors in full, for pictures. Every
element is PyTorch's: the oracle runs the same program and hooks the same steps."""

from __future__ import annotations

import httpx
import pytest
import torch

from chainlens.examples.catalog import example

from oracle import DTYPES, decode, run_plain, run_plain_passes


def as_tensor(full: dict) -> torch.Tensor:
    return torch.tensor(decode(full["values"]), dtype=DTYPES[full["dtype"]]).reshape(full["shape"])


def test_every_step_of_lenet_in_full_is_pytorchs(base_url: str) -> None:
    """Each node of LeNet's pass: its value, the gradient of its output, those its step sent
    back, its saved tensors (the 32×32 input a convolution saved) and the numbers it saved
    (a convolution's stride and padding), element for element."""
    source = example("lenet").source
    run = httpx.post(base_url + "/api/v1/runs", json={"source": source}, timeout=60).json()
    plain = run_plain_passes(source)[0]
    steps = run["passes"][0]["steps"]
    assert [s.grad_fn for s in plain.steps] == [
        next(n["grad_fn"] for n in run["nodes"] if n["id"] == s["node"]) for s in steps
    ]
    shown = set()
    for step, truth in zip(steps, plain.steps, strict=True):
        got = httpx.get(
            f"{base_url}/api/v1/runs/{run['id']}/tensors/{step['node']}",
            params={"pass": 0},
            timeout=60,
        ).json()
        assert got["node"] == step["node"] and got["pass"] == 0
        if truth.value is not None:
            torch.testing.assert_close(
                as_tensor(got["value"]), truth.value.detach(), rtol=0, atol=0
            )
            shown.add(tuple(got["value"]["shape"]))
        torch.testing.assert_close(as_tensor(got["grad"]), truth.grad_outputs[0], rtol=0, atol=0)
        assert len(got["grad_inputs"]) == len(truth.grad_inputs)
        for mine, theirs in zip(got["grad_inputs"], truth.grad_inputs, strict=True):
            assert (mine is None) == (theirs is None)
            if theirs is not None:
                torch.testing.assert_close(as_tensor(mine), theirs, rtol=0, atol=0)
        assert {k: v for k, v in got["attrs"].items() if k in truth.attrs} == truth.attrs
        for name, t in truth.saved.items():
            if name in got["saved"]:
                torch.testing.assert_close(as_tensor(got["saved"][name]), t, rtol=0, atol=0)
                shown.add(tuple(t.shape))
    # the input image, a feature map and the first layer's kernels are all among them
    assert {(1, 1, 32, 32), (1, 6, 28, 28), (6, 1, 5, 5)} <= shown


def test_a_later_pass_has_its_own_values(base_url: str) -> None:
    """A parameter's value in pass 3 of a training loop is the one the optimizer left it."""
    source = example("two_layer_nn").source
    run = httpx.post(base_url + "/api/v1/runs", json={"source": source}, timeout=60).json()
    plain = run_plain_passes(source)
    leaf = next(n for n in run["nodes"] if n["names"] and n["names"][0].endswith("0.weight"))
    k = next(i for i, s in enumerate(run["passes"][2]["steps"]) if s["node"] == leaf["id"])
    got = httpx.get(
        f"{base_url}/api/v1/runs/{run['id']}/tensors/{leaf['id']}", params={"pass": 2}, timeout=60
    ).json()
    truth = plain[2].steps[k]
    torch.testing.assert_close(as_tensor(got["value"]), truth.value, rtol=0, atol=0)
    torch.testing.assert_close(as_tensor(got["grad"]), truth.grad_outputs[0], rtol=0, atol=0)
    first = httpx.get(
        f"{base_url}/api/v1/runs/{run['id']}/tensors/{leaf['id']}", params={"pass": 0}, timeout=60
    ).json()
    assert not torch.equal(as_tensor(first["value"]), truth.value)


@pytest.mark.parametrize(
    "node,params,code,words",
    [
        ("n999", {"pass": 0}, 400, "no node 'n999'"),
        ("n1", {"pass": 7}, 400, "pass 8 was not recorded"),
        ("n1;rm", {"pass": 0}, 422, None),
    ],
)
def test_what_cannot_be_given_says_why(
    base_url: str, node: str, params: dict, code: int, words: str | None
) -> None:
    source = example("chain_rule").source
    run = httpx.post(base_url + "/api/v1/runs", json={"source": source}, timeout=60).json()
    r = httpx.get(f"{base_url}/api/v1/runs/{run['id']}/tensors/{node}", params=params, timeout=60)
    assert r.status_code == code, r.text
    if words:
        assert r.json()["error"]["code"] == "tensors_unavailable"
        assert words in r.json()["error"]["message"]
    assert httpx.get(f"{base_url}/api/v1/runs/nope/tensors/n1", timeout=60).status_code == 404


def test_the_element_limit_is_checked_and_named() -> None:
    from chainlens.explain.values import TensorsUnavailable, node_tensors
    from chainlens.settings import Settings

    with pytest.raises(
        TensorsUnavailable,
        match="limit max_fetched_elements=100 exceeded: the value has 784 elements",
    ):
        node_tensors(
            "import torch\nx = torch.ones(28, 28, requires_grad=True)\nx.sum().backward()\n",
            "cpu",
            0,
            Settings(max_fetched_elements=100),
            "n1",
            0,
        )


def test_the_client_reads_them(base_url: str) -> None:
    from chainlens.client import Client

    source = example("chain_rule").source
    client = Client(base_url)
    run = client.run(source)
    leaf = next(n for n in run.nodes if n.names == ["x"])
    got = client.tensors(run.id, leaf.id)
    truth = run_plain(source).variables["x"]
    assert got["value"]["values"] == truth.detach().tolist()
    assert got["grad"]["values"] == truth.grad.tolist()


def test_an_elementwise_step_gives_each_elements_local_derivative(base_url: str) -> None:
    """For the chain rule's steps that act element by element: spread × local is the
    gradient PyTorch sent to each input, element for element (to float32 rounding)."""
    source = example("chain_rule").source
    run = httpx.post(base_url + "/api/v1/runs", json={"source": source}, timeout=60).json()
    plain = run_plain_passes(source)[0]
    checked = 0
    for step, truth in zip(run["passes"][0]["steps"], plain.steps, strict=True):
        got = httpx.get(
            f"{base_url}/api/v1/runs/{run['id']}/tensors/{step['node']}", timeout=60
        ).json()
        for local, theirs in zip(got["local"], truth.grad_inputs, strict=False):
            if local is None or theirs is None:
                continue
            product = as_tensor(got["spread"]).double() * as_tensor(local)
            torch.testing.assert_close(product, theirs.double(), rtol=1e-6, atol=1e-7)
            checked += 1
    assert checked >= 4  # mean, mul, pow, add
