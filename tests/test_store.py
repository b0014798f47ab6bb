"""The run stores on their own: a real SQLite file (kept across a reopen, bounded in
bytes, least recently used out first, expired after the time to live) and the
in-process store, which bounds the same way."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from chainlens.store import MemoryStore, SqliteStore


def _sqlite(tmp_path: Path, max_bytes: int = 10_000, ttl_s: float = 60.0) -> SqliteStore:
    return SqliteStore(tmp_path / "data" / "runs.sqlite3", max_bytes, ttl_s, touch_s=0.0)


@pytest.fixture(params=["sqlite", "memory"])
def make(request: pytest.FixtureRequest, tmp_path: Path):  # noqa: ANN201
    if request.param == "sqlite":
        return lambda max_bytes, ttl_s=60.0: _sqlite(tmp_path, max_bytes, ttl_s)
    return lambda max_bytes, ttl_s=60.0: MemoryStore(max_bytes, ttl_s)


def test_a_body_comes_back_as_it_went_in(make) -> None:
    store = make(1000)
    body = bytes(range(256)) * 2
    store.put("a", body)
    assert store.get("a") == body and store.get("b") is None
    store.put("a", b"again")  # a key written twice keeps the second
    assert store.get("a") == b"again"


def test_bounded_in_bytes_least_recently_used_out_first(make) -> None:
    store = make(250)
    store.put("a", b"a" * 100)
    store.put("b", b"b" * 100)
    assert store.get("a") is not None  # a is used: b is now the least recent
    store.put("c", b"c" * 100)
    assert store.get("b") is None
    assert store.get("a") == b"a" * 100 and store.get("c") == b"c" * 100


def test_an_entry_past_its_time_to_live_is_gone(make) -> None:
    store = make(1000, ttl_s=0.05)
    store.put("a", b"body")
    time.sleep(0.1)
    assert store.get("a") is None


def test_the_sqlite_store_keeps_its_runs_across_a_reopen(tmp_path: Path) -> None:
    first = _sqlite(tmp_path, max_bytes=250)
    first.put("a", b"a" * 100)
    first.put("b", b"b" * 100)
    first.close()
    again = _sqlite(tmp_path, max_bytes=250)
    assert again.get("a") == b"a" * 100 and again.size == 200  # and its size is counted
    again.put("c", b"c" * 100)  # so the bound still holds
    assert again.get("b") is None and again.get("c") == b"c" * 100
