"""One golden Run per example, checked in (``tests/golden/<id>.json``): any change to what
the wire carries for an example shows in review as a diff of that file, the way
torchview keeps golden ``.gv`` files. The Run is the engine's own (``run_wire``), seeded
as every run is, with its timings left out (the only field that varies between runs).

After a change to the wire that is meant, rewrite them and read the diff:
``.venv/bin/python -m pytest tests/test_golden.py --rewrite-golden``."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from chainlens.engine import run_wire
from chainlens.examples.catalog import examples

GOLDEN = Path(__file__).parent / "golden"
VARYING = ("timings_ms",)


def wire(source: str) -> bytes:
    run = run_wire(source, run_id="golden")
    for key in VARYING:
        run.pop(key)
    return orjson.dumps(run, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


@pytest.mark.parametrize("example", examples(), ids=lambda e: e.id)
def test_each_example_run_matches_its_golden_file(example, request) -> None:
    path = GOLDEN / f"{example.id}.json"
    got = wire(example.source)
    if request.config.getoption("--rewrite-golden"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(got)
    assert path.exists(), f"no golden Run for {example.id}: rewrite with --rewrite-golden"
    assert got == path.read_bytes(), f"{example.id}'s Run differs from {path}"


def test_every_golden_file_is_an_example() -> None:
    ids = {e.id for e in examples()}
    assert {p.stem for p in GOLDEN.glob("*.json")} == ids
