"""The stream's ``done`` as a delta (``WS /api/v1/stream?done=delta``): the Run less what
the events carried. Rebuilt from the events — by ``chainlens.delta.rebuild``, by the
Python client, by the page — it is exactly the Run the server keeps (GET /runs/{id}),
for every example and for the runs whose end differs most from their stream: passes
dropped past ``max_recorded_passes``, a loop whose backward stops coming early, a program
that fails, a Run over ``max_run_bytes``.
"""

from __future__ import annotations

import json

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from chainlens import Client
from chainlens.delta import rebuild
from chainlens.examples.catalog import examples

from server import serve

#: In the style of the PyTorch tutorial "Learning PyTorch with Examples" (nn and optim):
#: 25 steps of SGD, past the 20 passes a Run keeps in full.
TRAINING = """import torch
torch.manual_seed(0)
x = torch.linspace(-1, 1, 16).unsqueeze(1)
y = 3 * x + 0.5
model = torch.nn.Linear(1, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(25):
    loss = torch.nn.functional.mse_loss(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
print(loss.item())
"""

#: A program that fails after its graph and one pass were streamed.
FAILING = """import torch
w = torch.ones(3, requires_grad=True)
loss = (w * 2).sum()
loss.backward()
z = w @ torch.ones(4)
"""

#: A loop whose backward stops coming before the loop ends: its last pass was streamed
#: unrecorded, and the Run comes from running the program again (test_skipped_passes.py).
STOPS = TRAINING.replace("range(25)", "range(40)").replace(
    "    loss.backward()\n", "    if step < 23:\n        loss.backward()\n"
)

RNN = """import torch
W = torch.randn(8, 8, requires_grad=True)
h = torch.zeros(1, 8)
for t in range(300):
    h = torch.tanh(h @ W + 0.1)
loss = h.sum()
loss.backward()
"""

PROGRAMS = {ex.id: ex.source for ex in examples()} | {
    "training": TRAINING,
    "failing": FAILING,
    "stops": STOPS,
    "rnn": RNN,
}


def stream(base: str, source: str, done: str | None = "delta") -> tuple[list[dict], int]:
    """Every event of one streamed run, and the size of the message that carried ``done``."""
    query = "?batch=1" + (f"&done={done}" if done else "")
    events: list[dict] = []
    last = 0
    with connect(base.replace("http", "ws") + "/api/v1/stream" + query, max_size=None) as ws:
        ws.send(json.dumps({"source": source}))
        for message in ws:
            data = orjson.loads(message)
            events += data["events"] if data["type"] == "batch" else [data]
            last = len(message)
    assert events[-1]["type"] == "done", events[-1]
    return events, last


def kept(base: str, run_id: str) -> dict:
    r = httpx.get(f"{base}/api/v1/runs/{run_id}", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("name", PROGRAMS)
def test_a_delta_rebuilds_the_run_the_server_keeps(base_url: str, name: str) -> None:
    events, _ = stream(base_url, PROGRAMS[name])
    done = events[-1]
    assert set(done) == {"type", "delta"}
    run = rebuild(done["delta"], events[:-1])
    assert run == kept(base_url, events[0]["id"])


def test_the_delta_names_what_was_streamed_instead_of_sending_it(base_url: str) -> None:
    events, delta_bytes = stream(base_url, RNN)
    delta = events[-1]["delta"]
    whole = kept(base_url, delta["id"])
    assert delta_bytes * 3 < len(orjson.dumps(whole)), (delta_bytes, len(orjson.dumps(whole)))
    # every node was streamed with its value: only what changed since comes again
    assert all("streamed" in n and "value" not in n["changed"] for n in delta["nodes"])
    assert all("grad" in n["changed"] for n in delta["nodes"])  # (each got its gradient)
    assert [p["steps"] for p in delta["passes"]] == [None]


def test_dropped_passes_and_a_failure_say_what_differs_from_the_stream(base_url: str) -> None:
    events, _ = stream(base_url, TRAINING)
    delta = events[-1]["delta"]
    streamed_passes = {e["index"] for e in events if e["type"] == "pass"}
    assert streamed_passes == set(range(25))
    recorded = [p for p in delta["passes"] if p["recorded"]]
    dropped = [p for p in delta["passes"] if not p["recorded"]]
    assert len(recorded) == 20 and dropped  # past max_recorded_passes
    assert all(p["steps"] is None for p in recorded) and all(p["steps"] == [] for p in dropped)
    events, _ = stream(base_url, FAILING)
    delta = events[-1]["delta"]
    assert delta["status"] == "error" and delta["error"]["type"] == "RuntimeError"


def test_without_asking_done_carries_the_whole_run(base_url: str) -> None:
    events, _ = stream(base_url, TRAINING, done=None)
    assert events[-1]["run"] == kept(base_url, events[0]["id"])


def test_the_python_client_hands_over_the_whole_run(base_url: str) -> None:
    events = list(Client(base_url).stream(TRAINING))
    assert events[-1]["type"] == "done"
    assert events[-1]["run"] == kept(base_url, events[0]["id"])


def test_a_run_over_max_run_bytes_ends_with_the_limit_not_a_delta() -> None:
    with serve(max_run_bytes=20_000) as base:
        events, _ = stream(base, RNN)
    run = events[-1]["run"]
    assert (
        run["error"]["code"] == "limit_exceeded"
        and "max_run_bytes=20000" in run["error"]["message"]
    )


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("?done=bogus", "done: must be 'run' or 'delta', not 'bogus'"),
        ("?batch=banana", "batch: must be 1 or 0 (true or false), not 'banana'"),
    ],
)
def test_a_query_the_stream_cannot_read_is_named(base_url: str, query: str, says: str) -> None:
    with connect(base_url.replace("http", "ws") + "/api/v1/stream" + query) as ws:
        event = orjson.loads(ws.recv())
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert event == {"type": "error", "error": {**event["error"], "code": "invalid_request"}}
    assert event["error"]["message"] == says
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
