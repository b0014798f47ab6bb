"""The compact Run (chainlens.compact): each tensor once, numbers in binary. It decodes to
the JSON Run, value for value, for every example and every tutorial program, and the
server answers with it when asked (``?format=compact`` or ``Accept``)."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest

from chainlens import Client
from chainlens.compact import MEDIA_TYPE, decode, encode
from chainlens.compact import tensor_slots as slots_of
from chainlens.engine import run_wire
from chainlens.examples.catalog import examples

from tutorial_corpus import TUTORIALS

PROGRAMS = {
    **{f"example:{e.id}": e.source for e in examples()},
    **{f"tutorial:{name}": source for name, source in TUTORIALS.items()},
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_the_compact_run_decodes_to_the_json_run(name: str) -> None:
    wire = orjson.loads(orjson.dumps(run_wire(PROGRAMS[name])))
    data = encode(wire)
    assert decode(data) == wire
    # byte for byte as the JSON Run is written (key order included)
    assert orjson.dumps(decode(data)) == orjson.dumps(wire)


def test_each_tensor_is_carried_once_and_its_numbers_in_binary() -> None:
    source = "import torch\nx = torch.linspace(-1, 1, 10, requires_grad=True)\n" + (
        "y = x\nfor i in range(6):\n    y = torch.tanh(y * 1.5)\ny.sum().backward()\n"
    )
    wire = orjson.loads(orjson.dumps(run_wire(source)))
    data = encode(wire)
    (length,) = np.frombuffer(data, "<u4", 1, 4)
    header = orjson.loads(data[8 : 8 + length])
    written = [container[key] for container, key in slots_of(wire) if container[key] is not None]
    # each gradient is one step's downstream and the next step's upstream, and a node's
    # output is its step's upstream: each written once
    assert len(header["tensors"]) == len({orjson.dumps(v) for v in written}) < len(written) / 2
    x = wire["variables"]["x"]["value"]["values"]
    entry = header["tensors"][header["run"]["variables"]["x"]["value"]]
    at, count = entry["values"]["at"], entry["values"]["count"]
    blob = data[(8 + length + 7) // 8 * 8 :]
    assert entry["values"]["type"] == "f8" and count == len(x)
    assert np.frombuffer(blob, "<f8", count, at).tolist() == x


def test_non_finite_integer_and_boolean_tensors_survive() -> None:
    source = (
        "import torch\nx = torch.tensor([0.0, 1.0, -1.0], requires_grad=True)\n"
        "y = torch.log(x)\ni = torch.arange(5)\nb = x > 0\nflag = torch.tensor(True)\n"
        "y.sum().backward()\n"
    )
    wire = orjson.loads(orjson.dumps(run_wire(source)))
    back = decode(encode(wire))
    assert back == wire
    assert back["variables"]["y"]["value"]["values"][0] == "-inf"
    assert back["variables"]["y"]["value"]["values"][2] == "nan"
    assert back["variables"]["i"]["value"]["values"] == [0, 1, 2, 3, 4]
    assert back["variables"]["b"]["value"]["values"] == [False, True, False]
    assert back["variables"]["flag"]["value"]["values"] is True


def test_bytes_that_are_not_a_compact_run_are_refused() -> None:
    with pytest.raises(ValueError, match="not a compact Run"):
        decode(b'{"id": "x"}')


def test_the_server_answers_compact_when_asked(base_url: str) -> None:
    source = next(e.source for e in examples() if e.id == "two_layer_nn")
    body = orjson.dumps({"source": source, "seed": 5})
    headers = {"content-type": "application/json"}
    as_json = httpx.post(f"{base_url}/api/v1/runs", content=body, headers=headers)
    assert as_json.status_code == 200
    run_id = as_json.json()["id"]
    by_query = httpx.get(f"{base_url}/api/v1/runs/{run_id}", params={"format": "compact"})
    by_accept = httpx.get(f"{base_url}/api/v1/runs/{run_id}", headers={"accept": MEDIA_TYPE})
    for r in (by_query, by_accept):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith(MEDIA_TYPE)
        assert decode(r.content) == as_json.json()
    # a new run answered compact at once (the run cache answers this request again)
    posted = httpx.post(
        f"{base_url}/api/v1/runs", params={"format": "compact"}, content=body, headers=headers
    )
    assert posted.headers["x-chainlens-cache"] == "hit"
    got = decode(posted.content)
    assert {**got, "id": run_id} == as_json.json()
    assert len(posted.content) < len(as_json.content)
    bad = httpx.get(f"{base_url}/api/v1/runs/{run_id}", params={"format": "xml"})
    assert bad.status_code == 422


def test_the_client_reads_compact_runs_into_the_same_run(base_url: str) -> None:
    source = next(e.source for e in examples() if e.id == "lenet")
    with Client(base_url, compact=True) as compact, Client(base_url) as plain:
        run = compact.run(source, seed=3)
        assert run.model_dump() == plain.get(run.id).model_dump()
        assert compact.get(run.id).model_dump() == run.model_dump()


#: The run the page's decoder is tested on (frontend/tests/compact.test.ts): floats,
#: non-finite numbers, int64 and bool tensors, 0-d values, shared formulas.
DECODER_PROGRAM = """import torch
x = torch.tensor([0.0, 1.0, 4.0], requires_grad=True)
y = torch.sqrt(x)
keep = x > 0.5
index = torch.arange(3)
loss = (y * keep).sum()
loss.backward()
"""
FIXTURES = Path(__file__).resolve().parent.parent / "frontend" / "tests" / "fixtures"


def test_the_pages_decoder_fixture_is_current(request: pytest.FixtureRequest) -> None:
    """The page decodes a compact Run in TypeScript; its test reads this pair (the
    compact bytes and the JSON Run they carry), written by the engine's encoder. Rewrite
    with ``--rewrite-golden``."""
    wire = run_wire(DECODER_PROGRAM, run_id="fixture")
    wire["timings_ms"] = {}
    body = orjson.dumps(wire)
    data = encode(orjson.loads(body))
    kinds = {
        t["values"]["type"]
        for t in orjson.loads(data[8 : 8 + int.from_bytes(data[4:8], "little")])["tensors"]
        if isinstance(t["values"], dict)
    }
    assert kinds == {"f8", "i8", "b1"} and b'"nan"' in body  # every kind of number
    # (the bytes as base64 text: the test reads both files as text, with no Node types)
    pair = {"decoder_run.clr.b64": base64.b64encode(data) + b"\n", "decoder_run.json": body}
    if request.config.getoption("--rewrite-golden"):
        for name, content in pair.items():
            (FIXTURES / name).write_bytes(content)
    for name, content in pair.items():
        assert (FIXTURES / name).read_bytes() == content, f"{name}: rewrite with --rewrite-golden"
