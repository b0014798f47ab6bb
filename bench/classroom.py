"""bench/service.py --classroom: a class of students against two replicas sharing Redis
behind a local nginx, all on loopback.

    .venv/bin/python bench/service.py --classroom [--students 300] [--minutes 2]

Each student, arriving within the first half of the time allowed, opens the page's
example list, picks an example, edits one constant in it (to one of a few values, as a
class following a lecture does), runs it, reopens the run by its link (as stepping
through it on a share link does), and asks for one gradient check; between actions they
think for 0.5 to 3 seconds. Each student connects from an address of their own
(127.0.x.y: loopback answers every one), which nginx passes on in X-Forwarded-For and
the replicas trust from nginx only, so each has their own limits as on a real network.

Prints the p50 and p99 of each kind of request, the errors (any answer that is not 2xx,
and any request that failed), and the share of runs answered from the run cache.
Needs Debian's ``redis-server`` and ``nginx`` (``apt-get install -y redis-server nginx``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx

from server import free_port, healthy, redis_server, running, serve

NGINX = "/usr/sbin/nginx"
#: The examples a lecture's class runs, and the constants a student may change in each.
EXAMPLES = ("chain_rule", "vjp", "accumulation", "gd_by_hand", "custom_relu")
VALUES = ("0.5", "1.0", "2.0", "3.0")


@contextlib.contextmanager
def nginx(upstreams: list[str]) -> Iterator[str]:
    """A local nginx in front of ``upstreams`` (host:port), as deploy/nginx.conf sets one
    up; its URL."""
    if not Path(NGINX).exists():
        raise SystemExit(f"{NGINX} is missing: apt-get install -y nginx")
    port = free_port()
    prefix = Path(tempfile.mkdtemp(prefix="chainlens-nginx-"))
    servers = "\n".join(f"    server {u};" for u in upstreams)
    (prefix / "nginx.conf").write_text(
        f"""worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  upstream chainlens {{
    least_conn;
{servers}
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 9m;
    location / {{
      proxy_pass http://chainlens;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_read_timeout 120s;
    }}
  }}
}}
"""
    )
    url = f"http://127.0.0.1:{port}"
    command = [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]
    try:
        with running(command, healthy(url), "nginx", 10):
            yield url
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


class Tally:
    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.cache = {"hit": 0, "miss": 0}

    async def ask(
        self, http: httpx.AsyncClient, kind: str, method: str, path: str, **kw
    ) -> httpx.Response | None:  # noqa: ANN003
        t0 = time.perf_counter()
        try:
            r = await http.request(method, path, **kw)
        except httpx.HTTPError as e:
            self.errors.append(f"{kind}: {type(e).__name__}")
            return None
        self.times[kind].append((time.perf_counter() - t0) * 1000)
        if not 200 <= r.status_code < 300:
            self.errors.append(f"{kind}: HTTP {r.status_code} {r.text[:120]}")
            return None
        return r


async def student(k: int, base: str, start_within: float, tally: Tally) -> None:
    rng = random.Random(k)
    await asyncio.sleep(rng.uniform(0, start_within))
    address = f"127.0.{1 + k // 250}.{1 + k % 250}"
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=base, transport=transport, timeout=120) as http:
        r = await tally.ask(http, "examples", "GET", "/api/v1/examples")
        if r is None:
            return
        wanted = rng.choice(EXAMPLES)
        chosen = next(e for e in r.json() if e["id"] == wanted)
        # one constant edited: the first decimal number in the program
        source = re.sub(r"\b\d+\.\d+\b", rng.choice(VALUES), chosen["source"], count=1)
        await asyncio.sleep(rng.uniform(0.5, 3))
        r = await tally.ask(http, "run", "POST", "/api/v1/runs", json={"source": source})
        if r is None:
            return
        tally.cache[r.headers.get("x-chainlens-cache", "miss")] += 1
        run = r.json()
        await asyncio.sleep(rng.uniform(0.5, 3))
        await tally.ask(http, "reopen", "GET", f"/api/v1/runs/{run['id']}")
        leaf = next((n["id"] for n in run["nodes"] if n["kind"] == "leaf"), None)
        if leaf is not None and run["passes"]:
            await asyncio.sleep(rng.uniform(0.5, 3))
            await tally.ask(
                http,
                "check",
                "POST",
                f"/api/v1/runs/{run['id']}/check",
                json={"node": leaf, "pass": 0},
            )


async def classroom(base: str, students: int, minutes: float) -> Tally:
    tally = Tally()
    jobs = [student(k, base, minutes * 30, tally) for k in range(students)]
    await asyncio.wait_for(asyncio.gather(*jobs), timeout=minutes * 60 + 120)
    return tally


def main(students: int, minutes: float) -> None:
    settings = {"forwarded_allow_ips": "127.0.0.1", "workers": 2}
    began = time.perf_counter()
    with (
        redis_server() as (url, _),
        serve(redis_url=url, **settings) as a,
        serve(redis_url=url, **settings) as b,
        nginx([a.removeprefix("http://"), b.removeprefix("http://")]) as lb,
    ):
        tally = asyncio.run(classroom(lb, students, minutes))
    wall = time.perf_counter() - began
    print(f"{students} students, two replicas + Redis behind nginx, {wall:.0f} s in all")
    print(f"{'request':12} {'count':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for kind, times in tally.times.items():
        times.sort()
        p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
        print(f"{kind:12} {len(times):6} {statistics.median(times):8.1f} {p99:8.1f}")
    runs = sum(tally.cache.values())
    print(f"errors: {len(tally.errors)}" + (f"  e.g. {tally.errors[:3]}" if tally.errors else ""))
    print(
        f"runs answered from the cache: {tally.cache['hit']}/{runs} = {tally.cache['hit'] / max(1, runs):.0%}"
    )
