"""The service over real sockets: every endpoint and status code, the stream, the client."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson
import pytest
import torch
from websockets.sync.client import connect

import chainlens
from chainlens import Client, ProgramRejected
from chainlens.client import InvalidRequest
from chainlens.engine import run_wire
from chainlens.errors import RateLimited, RequestTooLarge, RunNotFound, ServiceBusy
from chainlens.schema import Run

from oracle import assert_matches, run_plain
from server import serve

CHAIN = "import torch\nx = torch.ones(3, requires_grad=True)\ny = x + 2\nz = (y*y*3).mean()\nz.backward()\nprint(x.grad)\n"
SLOW = "import torch\nx = torch.ones(3, requires_grad=True)\nfor i in range(4000):\n    y = (x * 2).sum()\n    y.backward()\nprint('done')\n"


def post(base: str, body: object, **kw) -> httpx.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers = kw.pop("headers", {"content-type": "application/json"})
    return httpx.post(base + "/api/v1/runs", content=data, headers=headers, timeout=60, **kw)


def comparable(run: dict) -> dict:
    run = dict(run)
    run.pop("id")
    run.pop("timings_ms")
    return run


def test_health(base_url: str) -> None:
    r = httpx.get(base_url + "/api/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["torch"] == torch.__version__
    assert body["devices"][0] == "cpu" and body["version"] == chainlens.__version__


def test_examples_endpoint(base_url: str) -> None:
    from chainlens.examples.catalog import examples

    got = httpx.get(base_url + "/api/v1/examples").json()
    assert [e["id"] for e in got] == [e.id for e in examples()]
    assert set(got[0]) >= {"id", "title", "description", "source"}


def test_post_run_equals_in_process_run(base_url: str) -> None:
    r = post(base_url, {"source": CHAIN})
    assert r.status_code == 200
    remote = r.json()
    local = chainlens.run(CHAIN).model_dump(mode="json")
    assert comparable(remote) == comparable(local)
    assert remote["variables"]["x"]["grad"]["values"] == [6.0, 6.0, 6.0]
    again = httpx.get(f"{base_url}/api/v1/runs/{remote['id']}")
    assert again.status_code == 200 and again.json() == remote


def test_run_matches_pytorch_over_http(base_url: str) -> None:
    from chainlens.examples.catalog import example

    src = example("two_layer_adam").source
    run = Client(base_url).run(src)
    assert_matches(run, run_plain(src))


def test_unknown_run_is_404(base_url: str) -> None:
    r = httpx.get(base_url + "/api/v1/runs/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_syntax_error_is_400_with_line(base_url: str) -> None:
    r = post(base_url, {"source": "x = 1\ny = (2 +\n"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "syntax_error" and err["line"] == 2


def test_forbidden_is_400(base_url: str) -> None:
    r = post(base_url, {"source": "import torch\ntorch.os.system('id')\n"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "forbidden" and err["line"] == 2 and "torch.os" in err["message"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_gpu_is_400_device_unavailable(base_url: str) -> None:
    r = post(base_url, {"source": "x = 1", "device": "cuda"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "device_unavailable"


def test_body_over_limit_is_413(base_url: str) -> None:
    r = post(base_url, {"source": "x = 1\n" * 10000})
    assert r.status_code == 413
    assert "max_body_bytes=32768" in r.json()["error"]["message"]


def test_wrong_schema_is_422(base_url: str) -> None:
    for body in (
        {"source": 3},
        {},
        {"source": "x", "seed": -1},
        {"source": "x", "extra": 1},
        {"source": "x", "device": "tpu"},
    ):
        r = post(base_url, body)
        assert r.status_code == 422, body
        assert "detail" in r.json()


@pytest.mark.parametrize(
    "raw",
    [
        b'{"source": NaN}',
        b'{"source": "x", "source": "y"}',
        b'{"source": "\\ud800"}',
        b"\xff\xfe",
        b'{"seed": 1' + b"0" * 5000 + b"}",
        b"[" * 5000,
        b"not json",
    ],
)
def test_malformed_json_is_400_never_500(base_url: str, raw: bytes) -> None:
    r = post(base_url, raw)
    assert r.status_code in (400, 422), r.text


def test_wrong_content_type_is_415(base_url: str) -> None:
    r = post(base_url, "source=x", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415


def test_program_error_is_200_with_status_error(base_url: str) -> None:
    r = post(
        base_url,
        {"source": "import torch\nx = torch.ones(3, requires_grad=True)\n(x*2).backward()\n"},
    )
    assert r.status_code == 200
    run = r.json()
    assert run["status"] == "error" and run["error"]["code"] == "runtime_error"
    assert run["error"]["type"] == "RuntimeError" and run["error"]["line"] == 3
    assert [d["code"] for d in run["diagnostics"]] == ["non_scalar_backward"]


def test_limit_is_200_limit_exceeded(base_url: str) -> None:
    r = post(base_url, {"source": "import torch\nx = torch.ones(10 ** 8)\n"})
    assert r.status_code == 200
    assert r.json()["error"]["code"] == "limit_exceeded"
    assert "max_tensor_elements=10000000" in r.json()["error"]["message"]


def test_stream_event_order(base_url: str) -> None:
    url = base_url.replace("http", "ws") + "/api/v1/stream"
    events = []
    with connect(url) as ws:
        ws.send(json.dumps({"source": CHAIN}))
        for message in ws:
            events.append(json.loads(message))
    types = [e["type"] for e in events]
    assert types[0] == "run" and types[-1] == "done"
    assert "node" in types and types.index("node") < types.index("pass") < types.index("step")
    first_step = types.index("step")
    assert all(t != "node" for t in types[first_step:]), "nodes of the forward come before steps"
    assert events[-1]["run"]["id"] == events[0]["id"]
    assert types.count("step") == len(events[-1]["run"]["passes"][0]["steps"])
    assert "stdout" in types
    node_events = [e["node"] for e in events if e["type"] == "node"]
    assert all(n["grad"] is None and n["value"] is not None for n in node_events)


def _stream_extensions(base: str) -> str | None:
    """What permessage extension the server agreed to, offering deflate as browsers do."""
    with connect(base.replace("http", "ws") + "/api/v1/stream", compression="deflate") as ws:
        agreed = ws.response.headers.get("Sec-WebSocket-Extensions")
        ws.send(json.dumps({"source": CHAIN}))
        assert json.loads(list(ws)[-1])["run"]["status"] == "ok"
    return agreed


def test_stream_compression_is_a_setting(base_url: str) -> None:
    assert _stream_extensions(base_url) is None  # off by default: see Settings.ws_compression
    with serve(ws_compression="true") as base:
        assert "permessage-deflate" in (_stream_extensions(base) or "")


def test_stream_refusal_is_error_event(base_url: str) -> None:
    events = list(Client(base_url).stream("import os\n"))
    assert [e["type"] for e in events] == ["error"]
    assert events[0]["error"]["code"] == "forbidden"


#: Four refusals, out of line order in the tree's walk: all are told, sorted by line.
MANY_REFUSED = "import torch\nx = eval('1')\nimport os\ny = torch.load('a')\nz = (1).__class__\n"


def test_every_refusal_comes_at_once(base_url: str) -> None:
    """Over HTTP, the stream and the client: ``error`` is the first by line, ``errors``
    every one, each with its line and column, as chainlens.run raises them."""
    with pytest.raises(ProgramRejected) as local:
        chainlens.run(MANY_REFUSED)
    want = [(e["line"], e["col"]) for e in local.value.errors]
    assert want == [(2, 5), (3, 1), (4, 5), (5, 5)]
    r = post(base_url, {"source": MANY_REFUSED})
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == body["errors"][0] == local.value.errors[0]
    assert body["errors"] == local.value.errors
    (event,) = list(Client(base_url).stream(MANY_REFUSED))
    assert event["type"] == "error" and event["errors"] == local.value.errors
    with pytest.raises(ProgramRejected) as remote:
        Client(base_url).run(MANY_REFUSED)
    assert remote.value.errors == local.value.errors and remote.value.line == 2


def test_stream_first_node_arrives_well_before_done(base_url: str) -> None:
    source = (
        "import torch\nx = torch.ones(3, requires_grad=True)\ny = x * 2\n"
        "t = torch.zeros(200, 200)\nfor i in range(2500):\n    t = (t @ t) * 0.0\nz = y.sum()\n"
    )
    times = {}
    for event in Client(base_url).stream(source):
        times.setdefault(event["type"], time.monotonic())
    # from the run's start in its worker (a cold GPU server first warms a worker for seconds);
    # the loop takes ~1 s here and ~0.4 s on a 4 GHz server core: long enough to tell apart
    took = times["done"] - times["run"]
    assert took > 0.25, times
    assert times["node"] - times["run"] < took / 2, times


def test_health_answers_fast_while_a_run_executes(base_url: str) -> None:
    t = threading.Thread(target=lambda: post(base_url, {"source": SLOW}))
    t.start()
    time.sleep(0.5)
    latencies = []
    with httpx.Client(base_url=base_url) as http:
        http.get("/api/v1/health")
        for _ in range(10):
            t0 = time.perf_counter()
            assert http.get("/api/v1/health").status_code == 200
            latencies.append(time.perf_counter() - t0)
    t.join()
    assert sorted(latencies)[len(latencies) // 2] < 0.05, latencies


def test_fifty_concurrent_runs_are_all_answered_correctly(base_url: str) -> None:
    def one(i: int) -> dict:
        src = f"import torch\nx = torch.tensor([{i}.0, 1.0], requires_grad=True)\n(x * x).sum().backward()\n"
        return post(base_url, {"source": src}).json()

    with ThreadPoolExecutor(16) as pool:
        runs = list(pool.map(one, range(50)))
    for i, run in enumerate(runs):
        assert run["status"] == "ok"
        assert run["variables"]["x"]["grad"]["values"] == [2.0 * i, 2.0]


def test_a_request_answered_before_is_answered_from_the_store(base_url: str) -> None:
    """Same program, device and seed: the earlier run, under a new id, with no worker
    run (API.md: the same request gives the same numbers). Another seed is another run."""
    source = CHAIN + "# cache " + str(time.time_ns()) + "\n"
    first, second = post(base_url, {"source": source}), post(base_url, {"source": source})
    assert (first.headers["x-chainlens-cache"], second.headers["x-chainlens-cache"]) == (
        "miss",
        "hit",
    )
    a, b = first.json(), second.json()
    assert a["id"] != b["id"] and comparable(a) == comparable(b)
    assert_matches(Run.model_validate(b), run_plain(source))
    assert httpx.get(f"{base_url}/api/v1/runs/{b['id']}").json() == b
    check = httpx.post(f"{base_url}/api/v1/runs/{b['id']}/check", json={"node": "n1"}, timeout=60)
    assert check.status_code == 200, check.text
    other = post(base_url, {"source": source, "seed": 1})
    assert other.headers["x-chainlens-cache"] == "miss"


def test_a_program_error_is_repeatable_but_a_timeout_is_not(base_url: str) -> None:
    failing = (
        "import torch\nx = torch.ones(2, requires_grad=True)\n(x * 2).backward()\n# "
        + str(time.time_ns())
        + "\n"
    )
    assert [post(base_url, {"source": failing}).headers["x-chainlens-cache"] for _ in range(2)] == [
        "miss",
        "hit",
    ]
    with serve(wall_timeout_s=0.5, max_loop_iterations=10**9, max_statements=10**9) as base:
        loop = {"source": "x = 0\nwhile True:\n    x = x + 1\n"}
        answers = [post(base, loop) for _ in range(2)]
        assert [r.json()["error"]["code"] for r in answers] == ["timeout", "timeout"]
        assert [r.headers["x-chainlens-cache"] for r in answers] == ["miss", "miss"]


def test_a_request_asked_for_often_stays_answered_in_a_small_store() -> None:
    """Each answer is stored under its own id and the index moves to it: the entries of
    other runs age out, the one asked for does not."""
    body = len(orjson.dumps(run_wire(CHAIN)))  # about the size each answer keeps
    with serve(store_max_bytes=4 * body) as base:
        answers = [post(base, {"source": CHAIN}).headers["x-chainlens-cache"] for _ in range(12)]
        assert answers == ["miss"] + ["hit"] * 11


def test_the_run_cache_is_a_setting() -> None:
    with serve(run_cache=False) as base:
        assert [post(base, {"source": CHAIN}).headers["x-chainlens-cache"] for _ in range(2)] == [
            "miss",
            "miss",
        ]


def test_client_roundtrip_and_typed_errors(base_url: str) -> None:
    with Client(base_url) as c:
        assert c.health().status == "ok"
        assert len(c.examples()) >= 12
        run = c.run(CHAIN)
        assert c.get(run.id).model_dump() == run.model_dump()
        with pytest.raises(ProgramRejected) as err:
            c.run("x = (\n")
        assert err.value.code == "syntax_error" and err.value.line == 1
        with pytest.raises(RunNotFound):
            c.get("missing")
        with pytest.raises(RequestTooLarge):
            c.run("#" * 40000)
        with pytest.raises(InvalidRequest):
            c.run(CHAIN, device="tpu")


def test_cli_run_json_equals_api(base_url: str, tmp_path) -> None:
    f = tmp_path / "prog.py"
    f.write_text(CHAIN)
    out = subprocess.run(
        [sys.executable, "-m", "chainlens", "run", str(f), "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    remote = post(base_url, {"source": CHAIN}).json()
    assert comparable(json.loads(out)) == comparable(remote)


def test_cli_run_summary_and_examples(tmp_path) -> None:
    f = tmp_path / "prog.py"
    f.write_text(CHAIN)
    out = subprocess.run(
        [sys.executable, "-m", "chainlens", "run", str(f)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "x = [1.0, 1.0, 1.0]   grad = [6.0, 6.0, 6.0]" in out
    assert "MeanBackward0 -> MulBackward0" in out
    listing = subprocess.run(
        [sys.executable, "-m", "chainlens", "examples"], capture_output=True, text=True, check=True
    ).stdout
    assert "chain_rule" in listing


def test_rate_limit_is_429_with_retry_after() -> None:
    with serve(rate_limit_per_minute=3) as base:
        codes = [post(base, {"source": "x = 1"}).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3] == 429
        r = post(base, {"source": "x = 1"})
        assert r.headers["retry-after"] and r.json()["error"]["code"] == "rate_limited"
        with pytest.raises(RateLimited):
            Client(base).run("x = 1")


def test_full_queue_is_503_with_retry_after() -> None:
    with serve(workers=1, queue_size=0, max_concurrent_per_client=10) as base:
        t = threading.Thread(target=lambda: post(base, {"source": SLOW}))
        t.start()
        time.sleep(0.5)
        r = post(base, {"source": "x = 1"})
        t.join()
        assert r.status_code == 503 and r.headers["retry-after"]
        with pytest.raises(ServiceBusy):
            raise ServiceBusy(r.json()["error"]["message"])


def test_timeout_is_a_clean_error_and_next_run_works() -> None:
    with serve(wall_timeout_s=1, max_loop_iterations=10**9, max_statements=10**9) as base:
        r = post(base, {"source": "x = 0\nwhile True:\n    x = x + 1\n"})
        assert r.status_code == 200
        assert r.json()["error"]["code"] == "timeout"
        assert "wall_timeout_s=1.0" in r.json()["error"]["message"]
        assert post(base, {"source": CHAIN}).json()["status"] == "ok"


def test_openapi_and_docs(base_url: str) -> None:
    spec = httpx.get(base_url + "/openapi.json").json()
    assert {"/api/v1/runs", "/api/v1/health", "/api/v1/examples", "/api/v1/runs/{run_id}"} <= set(
        spec["paths"]
    )
    schemas = spec["components"]["schemas"]
    assert {"Run", "RunRequest", "Node", "Step", "TensorView", "ErrorBody"} <= set(schemas)
    assert httpx.get(base_url + "/docs").status_code == 200
    page = httpx.get(base_url + "/")
    assert page.status_code == 200 and "chainlens" in page.text


def test_run_over_max_run_bytes_is_limit_exceeded() -> None:
    with serve(max_run_bytes=4000) as base:
        r = httpx.post(base + "/api/v1/runs", json={"source": CHAIN}, timeout=60)
    assert r.status_code == 200
    run = r.json()
    assert run["status"] == "error" and run["error"]["code"] == "limit_exceeded"
    assert "max_run_bytes=4000" in run["error"]["message"]
    assert run["stdout"] == run_plain(CHAIN).stdout  # what it printed is kept
