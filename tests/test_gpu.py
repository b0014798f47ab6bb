"""The GPU path on a real CUDA device, in process and through the sandboxed service.

Skipped where torch sees no CUDA device (CI never has one); run on a GPU machine with
``pytest tests/test_gpu.py``. The oracle runs the same program in plain PyTorch on the
same device, so every value and gradient must match exactly, as on the CPU.
"""

from __future__ import annotations

import httpx
import pytest
import torch
from test_gradcheck import leaf_id
from test_manual import compare_pass, execute

import chainlens
from chainlens import Client
from chainlens.examples.catalog import example, examples
from chainlens.explain.gradcheck import run_check
from chainlens.explain.manual import manual_code
from chainlens.settings import Settings

from oracle import assert_matches, run_plain
from programs import PROGRAMS
from server import serve

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


@pytest.mark.parametrize("ex", examples(), ids=lambda e: e.id)
def test_example_on_cuda_matches_pytorch_on_cuda(ex) -> None:
    run = chainlens.run(ex.source, device="cuda")
    assert run.device == "cuda:0"
    assert_matches(run, run_plain(ex.source, device="cuda"))


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program_on_cuda_matches_pytorch_on_cuda(name: str) -> None:
    source = PROGRAMS[name]
    assert_matches(chainlens.run(source, device="cuda"), run_plain(source, device="cuda"))


def test_custom_function_backward_runs_on_the_engine_device_thread() -> None:
    """On CUDA the autograd engine calls backward hooks and custom backwards from its own
    device thread: the user's backward still runs in the interpreter and is recorded."""
    run = chainlens.run(example("custom_relu").source, device="cuda")
    assert run.status == "ok"
    steps = [s for p in run.passes for s in p.steps]
    node_of = {n.id: n for n in run.nodes}
    custom = [
        s
        for s in steps
        if node_of[s.node].grad_fn.endswith("Backward")
        and not node_of[s.node].grad_fn[-1].isdigit()
    ]
    assert custom and all(s.grad_inputs for s in custom)


def test_device_mix_on_a_gpu_machine_is_pytorchs_error() -> None:
    source = example("pitfall_device").source
    run = chainlens.run(source)
    assert_matches(run, run_plain(source))
    assert run.error.message.startswith("Expected all tensors to be on the same device")
    assert [d.line for d in run.diagnostics if d.code == "device_mismatch"] == [run.error.line]


def test_every_example_step_on_cuda_is_verified() -> None:
    """Explanations are computed on the host from a CUDA run's tensors: each step's
    upstream × local = downstream still holds."""
    unverified = []
    for ex in examples():
        run = chainlens.run(ex.source, device="cuda")
        unverified += [
            (ex.id, s.node)
            for p in run.passes
            for s in p.steps
            if s.formula is None or not s.formula.verified
        ]
    assert unverified == []


@pytest.mark.parametrize(
    "example_id,name", [("chain_rule", "x"), ("lenet", "net.fc3.bias"), ("custom_relu", "x")]
)
def test_gradient_check_of_a_cuda_run(example_id: str, name: str) -> None:
    source = example(example_id).source
    run = chainlens.run(source, device="cuda")
    result = run_check(source, "cuda", 0, Settings(), run.id, leaf_id(run, name), 0, 6)
    assert result["kind"] == "leaf" and result["ok"], result


@pytest.mark.parametrize("example_id", ["two_layer_nn", "lenet"])
def test_manual_code_of_a_cuda_run_matches_its_gradients(example_id: str, tmp_path) -> None:
    """The numpy file is written from the pass re-run on the GPU; its gradients are the
    CUDA run's."""
    source = example(example_id).source
    run = chainlens.run(source, device="cuda")
    ns = execute(manual_code(source, "cuda", 0, Settings(), run.id, 0), tmp_path)
    assert compare_pass(run, 0, ns) == len(run.passes[0].steps)


@pytest.fixture(scope="module")
def gpu_server():
    with serve(workers=2, device="cuda") as url:
        yield url


def test_health_lists_the_gpu(gpu_server: str) -> None:
    assert "cuda:0" in httpx.get(gpu_server + "/api/v1/health").json()["devices"]


@pytest.mark.parametrize("example_id", ["chain_rule", "lenet", "custom_relu", "two_layer_adam"])
def test_sandboxed_worker_runs_on_the_gpu(gpu_server: str, example_id: str) -> None:
    """Forked, rlimited, seccomp-filtered workers still reach the GPU, and agree with torch."""
    source = example(example_id).source
    run = Client(gpu_server).run(source, device="cuda")
    assert run.device == "cuda:0", run.error
    assert_matches(run, run_plain(source, device="cuda"))


def test_server_default_device_is_used(gpu_server: str) -> None:
    run = Client(gpu_server).run("import torch\nx = torch.ones(2, requires_grad=True)\n")
    assert run.variables["x"].value.device == "cuda:0"


def test_cpu_runs_still_work_on_a_gpu_server(gpu_server: str) -> None:
    source = example("chain_rule").source
    run = Client(gpu_server).run(source, device="cpu")
    assert run.device == "cpu"
    assert_matches(run, run_plain(source))


def test_stream_on_the_gpu(gpu_server: str) -> None:
    events = list(Client(gpu_server).stream(example("lenet").source, device="cuda"))
    types = [e["type"] for e in events]
    assert types[-1] == "done", events[-1]
    assert types.index("node") < types.index("step")
    assert events[-1]["run"]["device"] == "cuda:0"


def test_a_recording_on_cuda_is_pytorchs_on_cuda() -> None:
    """``chainlens.record()`` around the user's own model on the GPU: backward's hooks run
    on the engine's device threads, and the numbers are still those tensors."""
    from oracle import assert_view_equals

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)).cuda()
    x = torch.randn(5, 4, device="cuda")
    with chainlens.record() as rec:
        loss = net(x).pow(2).mean()
        loss.backward()
    run = rec.run
    assert run is not None and run.status == "ok" and run.device == "cuda:0"
    names = {n.id: n.names[0] for n in run.nodes if n.kind == "leaf" and n.names}
    grads = {names[s.node]: s.grad_output for s in run.passes[0].steps if s.node in names}
    for name, p in net.named_parameters():
        assert_view_equals(grads[f"net.{name}"], p.grad, name)
    assert run.passes[0].loss == loss.item()
