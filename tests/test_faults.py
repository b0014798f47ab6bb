"""Faults: a worker killed mid-run, and 1,000 runs in a row."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import httpx

from server import children, rss_kb, serve_process

SLOW = "x = 0\nfor i in range(900000):\n    x = i + 1\n"
CHAIN = "import torch\nx = torch.ones(3, requires_grad=True)\nz = (3 * (x + 2) ** 2).mean()\nz.backward()\n"


def post(base: str, source: str) -> httpx.Response:
    return httpx.post(
        base + "/api/v1/runs",
        content=json.dumps({"source": source}),
        headers={"content-type": "application/json"},
        timeout=60,
    )


def wait_for_workers(template: int, n: int = 1) -> list[int]:
    deadline = time.monotonic() + 60
    while len(workers := children(template)) < n:
        assert time.monotonic() < deadline, "the template forked no workers"
        time.sleep(0.2)
    return workers


def test_worker_killed_mid_run_gives_clean_error_and_next_run_works() -> None:
    with serve_process() as (base, proc):
        template = children(proc.pid)
        assert len(template) == 1
        wait_for_workers(template[0])
        result: dict = {}
        t = threading.Thread(target=lambda: result.update(r=post(base, SLOW)))
        t.start()
        time.sleep(1.0)
        workers = children(template[0])
        assert workers, "the template holds workers"
        for pid in workers:  # the busy one and the spares alike
            os.kill(pid, signal.SIGKILL)
        t.join()
        r = result["r"]
        assert r.status_code == 200
        err = r.json()["error"]
        assert err["code"] == "worker_lost", err
        assert "killed (SIGKILL) from outside chainlens" in err["message"], err
        after = post(base, CHAIN)
        assert after.status_code == 200 and after.json()["status"] == "ok"
        assert after.json()["variables"]["x"]["grad"]["values"] == [6.0, 6.0, 6.0]


def test_thousand_runs_keep_memory_flat_and_leave_no_strays() -> None:
    # one client sends all 1,100 runs: the per-client rate limit is not what is tested here
    with serve_process(workers=2, spare_workers=4, rate_limit_per_minute=10**7) as (base, proc):
        template = children(proc.pid)[0]
        wait_for_workers(template, 4)

        def burst(n: int) -> None:
            answers: list[tuple[int, str]] = []

            def client(k: int) -> None:
                with httpx.Client(base_url=base, timeout=60) as http:
                    for _ in range(k):
                        r = http.post(
                            "/api/v1/runs",
                            content=json.dumps({"source": CHAIN}),
                            headers={"content-type": "application/json"},
                        )
                        answers.append((r.status_code, r.json().get("status", r.text[:200])))

            threads = [threading.Thread(target=client, args=(n // 4,)) for _ in range(4)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            assert answers == [(200, "ok")] * n, [a for a in answers if a != (200, "ok")][:3]

        burst(100)
        before = rss_kb(proc.pid) + rss_kb(template)
        burst(1000)
        after = rss_kb(proc.pid) + rss_kb(template)
        assert after <= before * 1.10, (before, after)
        time.sleep(1.0)
        # the spares, and the one the server holds for its next run (WorkerPool._worker)
        assert len(children(template)) == 4 + 1, "only the spares and the next run's worker remain"
