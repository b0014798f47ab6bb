"""Several replicas sharing one real Redis (Debian's ``redis-server``): any of them
serves any run, check and numpy code; a client's limits hold across them; Redis going
away is a clean 503 and its return a recovery. And a single server keeps its runs in
its data directory across a restart."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server import redis_server, serve

CHAIN = "import torch\nx = torch.ones(3, requires_grad=True)\nz = (3 * (x + 2) ** 2).mean()\nz.backward()\n"


def post(base: str, source: str, **kw: object) -> httpx.Response:
    return httpx.post(base + "/api/v1/runs", json={"source": source, **kw}, timeout=60)


@pytest.fixture(scope="module")
def replicas() -> Iterator[tuple[str, str, str]]:
    """Two servers on different ports sharing one Redis; and that Redis's URL."""
    with redis_server() as (url, _), serve(redis_url=url) as a, serve(redis_url=url) as b:
        yield a, b, url


def test_any_replica_serves_any_run_check_and_numpy_code(replicas) -> None:
    a, b, _ = replicas
    made = post(a, CHAIN)
    assert made.status_code == 200 and made.headers["x-chainlens-cache"] == "miss"
    run_id = made.json()["id"]
    fetched = httpx.get(f"{b}/api/v1/runs/{run_id}", timeout=30)
    assert fetched.status_code == 200 and fetched.json() == made.json()
    leaf = next(n["id"] for n in made.json()["nodes"] if n["kind"] == "leaf")
    check = httpx.post(
        f"{b}/api/v1/runs/{run_id}/check", json={"node": leaf, "pass": 0}, timeout=60
    )
    assert check.status_code == 200, check.text
    assert check.json()["ok"] and check.json()["run_id"] == run_id
    manual = httpx.get(f"{b}/api/v1/runs/{run_id}/manual.py?pass=0", timeout=60)
    assert manual.status_code == 200 and "import numpy" in manual.text
    program = httpx.get(f"{b}/api/v1/runs/{run_id}/program", timeout=30)
    assert program.json() == {"run_id": run_id, "source": CHAIN}
    page = httpx.get(f"{b}/api/v1/runs/{run_id}?format=html", timeout=30)
    assert page.status_code == 200 and f'"id":"{run_id}"' in page.text
    again = post(b, CHAIN)  # the run cache is shared too
    assert again.headers["x-chainlens-cache"] == "hit"
    assert again.json()["nodes"] == made.json()["nodes"]


def test_a_clients_rate_limit_holds_across_replicas() -> None:
    with (
        redis_server() as (url, _),
        serve(redis_url=url, rate_limit_per_minute=4, run_cache="false") as a,
        serve(redis_url=url, rate_limit_per_minute=4, run_cache="false") as b,
    ):
        answers = [post(base, f"x = {i}").status_code for i, base in enumerate([a, b, a, b])]
        assert answers == [200, 200, 200, 200]
        for base in (a, b):
            r = post(base, "x = 9")
            assert r.status_code == 429
            assert "rate_limit_per_minute=4" in r.json()["error"]["message"]


def test_redis_going_away_is_a_clean_503_and_its_return_a_recovery() -> None:
    slow = "t = 0.0\nfor i in range(300000):\n    t = t + i * 0.5\nprint(t)\n"
    with redis_server() as (url, redis_proc), serve(redis_url=url, run_cache="false") as a:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert httpx.get(a + "/api/v1/ready").json()["status"] == "ready"
        kept = post(a, CHAIN).json()["id"]
        in_flight: list[httpx.Response] = []
        runner = threading.Thread(target=lambda: in_flight.append(post(a, slow)))
        runner.start()
        time.sleep(0.3)
        redis_proc.kill()  # mid-run
        redis_proc.wait()
        runner.join()
        answers = [
            in_flight[0],
            post(a, CHAIN),
            httpx.get(f"{a}/api/v1/runs/{kept}", timeout=30),
        ]
        for r in answers:
            assert r.status_code == 503, r.text
            error = r.json()["error"]
            assert error["code"] == "busy" and "Redis" in error["message"], error
            assert "Traceback" not in r.text
        ready = httpx.get(a + "/api/v1/ready")
        assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
        with redis_server(port) as _:
            deadline = time.monotonic() + 20
            while (r := post(a, CHAIN)).status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert r.status_code == 200, r.text
            assert httpx.get(a + "/api/v1/ready").json()["status"] == "ready"


def test_a_restarted_server_keeps_its_runs(tmp_path: Path, chromium: Any) -> None:
    data = tmp_path / "data"
    with serve(data_dir=data) as base:
        made = post(base, CHAIN).json()
    with serve(data_dir=data) as base:
        # its link opens the page on it, drawn as it was
        link = httpx.get(f"{base}/r/{made['id']}")
        assert link.status_code == 307 and link.headers["location"] == f"/#r={made['id']}"
        assert httpx.get(f"{base}/r/nosuchrun").status_code == 404
        context = chromium.new_context()
        try:
            page = context.new_page()
            page.goto(f"{base}/r/{made['id']}")
            page.wait_for_function("document.body.dataset.painted", timeout=30_000)
            assert page.evaluate("document.body.dataset.painted") == made["id"]
            editor = page.get_by_role("textbox", name="Program").inner_text()
            assert "(3 * (x + 2) ** 2).mean()" in editor  # its program, kept with it
        finally:
            context.close()
        kept = httpx.get(f"{base}/api/v1/runs/{made['id']}", timeout=30)
        assert kept.status_code == 200 and kept.json() == made
        leaf = next(n["id"] for n in made["nodes"] if n["kind"] == "leaf")
        check = httpx.post(
            f"{base}/api/v1/runs/{made['id']}/check", json={"node": leaf, "pass": 0}, timeout=60
        )
        assert check.status_code == 200 and check.json()["ok"], check.text
        assert post(base, CHAIN).headers["x-chainlens-cache"] == "hit"
    assert (data / "runs.sqlite3").is_file()


def test_a_data_directory_it_cannot_use_is_said_before_it_serves(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    env = {**os.environ, "CHAINLENS_DATA_DIR": str(tmp_path / "a-file" / "data")}
    done = subprocess.run(
        [sys.executable, "-m", "chainlens", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "cannot keep runs in" in done.stderr and "CHAINLENS_DATA_DIR" in done.stderr
