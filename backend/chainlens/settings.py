"""All configuration in one place: ``CHAINLENS_*`` environment variables and CLI flags.

Every limit the engine and the sandbox enforce is a field here, so a message that
reports a limit can name the setting a teacher would change.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHAINLENS_", extra="ignore")

    # -- the server
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    #: Where finished runs are kept: ``sqlite`` (a file in ``data_dir``: they survive a
    #: restart) or ``memory`` (gone with the process). ``redis_url`` overrides both.
    store: Literal["sqlite", "memory"] = "sqlite"
    #: The data directory (the SQLite store): empty is ``$XDG_DATA_HOME/chainlens``, else
    #: ``~/.local/share/chainlens``.
    data_dir: str = ""
    #: The kept runs' bodies (each run's Run, its program, the cache's index), at most this
    #: many bytes, least recently used out first. A Run is at most max_run_bytes (32 MB).
    store_max_bytes: int = 1 << 30
    store_ttl_s: float = 7 * 24 * 3600.0
    #: Redis shared by every replica (``redis://host:6379/0``): the run store, the run
    #: cache and the rate and concurrency limits live there, so any replica serves any
    #: run. Size Redis with ``maxmemory`` and ``maxmemory-policy allkeys-lru``.
    redis_url: str = ""
    #: POST /runs answers a request it has already answered (same program, seed and
    #: settings, on the CPU) with that run again: API.md promises the same numbers.
    run_cache: bool = True
    queue_size: int = 32
    #: The proxies whose X-Forwarded-For names the client (comma-separated addresses).
    #: Empty: no header is trusted, and the client is the socket's peer (uvicorn's own
    #: default trusts 127.0.0.1, where every local client could name its own address).
    forwarded_allow_ips: str = ""
    spare_workers: int = 4

    # -- requests
    max_body_bytes: int = 32 * 1024
    #: POST /api/v1/runs/import: a Run recorded elsewhere, at most this large.
    max_import_bytes: int = 8 * 1024 * 1024
    max_source_bytes: int = 16 * 1024
    rate_limit_per_minute: int = 600
    max_concurrent_per_client: int = 8
    ws_max_message_bytes: int = 64 * 1024
    #: A stream's first message (its program) must arrive within this long.
    ws_idle_timeout_s: float = 5.0
    #: Streams open at once from one address, and overall (below uvicorn's 512
    #: connections, so that HTTP requests keep answering when every stream is taken).
    ws_max_per_client: int = 8
    ws_max_open: int = 256
    #: HTTP connections open at once from one address (not counting a trusted proxy's):
    #: 600 raw connections that sent nothing took all of uvicorn's 512, and health
    #: answered 503 to everyone until they closed, which they never had to.
    http_max_per_client: int = 64
    #: A request's headers must arrive within this long of the connection opening (or of
    #: the previous response): a client that sends nothing, or a header a byte at a time,
    #: is answered 408 and closed.
    http_header_timeout_s: float = 5.0
    #: A stream client that has not taken a message for this long loses the stream
    #: (closed 1008); its run was stopped at its own deadline long before.
    ws_send_timeout_s: float = 10.0
    #: permessage-deflate on the stream. Off: the page is served from this machine, where
    #: compressing a 3k-node run's 10 MB of events cost the server 0.17 s of CPU and the
    #: browser as much again; turn it on to stream over a slow network.
    ws_compression: bool = False

    # -- the program, before it runs
    max_ast_nodes: int = 20_000
    max_ast_depth: int = 100

    # -- the program, while it runs
    #: 10,000 MNIST-sized samples (7.84M values) fit, as a lecture's dataset does.
    max_tensor_elements: int = 10_000_000
    #: A dense Jacobian (jacobian, hessian, gradcheck) of n inputs is estimated as n x n:
    #: the conv-bn tutorial's gradcheck of 1,605 inputs is 2.6M entries.
    max_jacobian_elements: int = 4_000_000
    max_live_elements: int = 64_000_000
    max_parameters: int = 10_000_000
    max_layer_parameters: int = 5_000_000
    max_flops_per_op: float = 5e9
    max_flops: float = 5e10
    max_ops: int = 200_000
    max_statements: int = 2_000_000
    max_loop_iterations: int = 1_000_000
    max_recursion_depth: int = 50
    #: Generators started and not finished (each holds a stack of its own).
    max_live_generators: int = 10_000
    max_backward_calls: int = 10_000
    max_int_bits: int = 4096
    max_sequence_length: int = 1_000_000
    max_nodes: int = 20_000
    #: Nodes carry their saved tensors (inspector) in graphs of at most this many nodes.
    saved_max_nodes: int = 1_000
    max_recorded_passes: int = 20
    max_stdout_bytes: int = 256 * 1024
    max_run_bytes: int = 32 * 1024 * 1024
    #: Manual-backprop code is written for passes of at most this many nodes, starting
    #: from at most this many leaf and constant values (they are written into the file).
    manual_max_nodes: int = 2_000
    manual_max_elements: int = 2_000_000
    #: GET /runs/{id}/tensors/{node} gives tensors of at most this many elements: a batch
    #: of 64 feature maps of 64×64, or 16 MNIST images' 32 channels of 28×28 (~3 MB of JSON).
    max_fetched_elements: int = 262_144

    # -- the worker process
    isolation: Literal["fork", "pool"] = "fork"
    #: A run still computing after this long leaves its normal slot (and drops to SCHED_IDLE):
    #: the chain rule's whole run is ~10 ms of CPU. Measured under four attackers on four
    #: addresses (bench/sandbox.py): a benign run's p99 was 4-6x its idle p99 at 0.05 s,
    #: 2.0-2.4x at 0.02 s (a bomb's first moments are what an honest run can wait behind).
    long_run_after_s: float = 0.02
    #: Runs past long_run_after_s hold these slots (their workers under SCHED_IDLE), at most
    #: long_runs_per_client of them from one address: four attackers on four addresses
    #: fit, and the workers' normal slots stay for short runs.
    long_run_slots: int = 4
    long_runs_per_client: int = 1
    runs_per_worker: int = 50
    wall_timeout_s: float = 20.0
    cpu_limit_s: int = 30
    memory_limit_mb: int = 2048
    threads: int = 1  # torch threads in each worker (the template itself always uses 1)


#: Where and how a server runs, not what a run computes: replicas that differ only in
#: these share their run cache (the other settings, limits above all, are in its key).
PLACEMENT = (
    "host",
    "port",
    "workers",
    "spare_workers",
    "queue_size",
    "store",
    "data_dir",
    "store_max_bytes",
    "store_ttl_s",
    "redis_url",
    "forwarded_allow_ips",
)


def data_dir(settings: Settings) -> Path:
    """The data directory the settings name, or the platform's usual one."""
    if settings.data_dir:
        return Path(settings.data_dir)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "chainlens"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
