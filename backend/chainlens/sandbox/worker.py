"""One run inside a forked worker: apply the process limits, run the engine, stream frames.

The worker is forked from the warmed template before a request arrives, so torch is
already imported; it serves exactly one job and exits, so no state outlives a run.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
from pathlib import Path

import orjson

from ..delta import Streamed, run_delta
from ..errors import ChainlensError, ProgramRejected, limit_text
from ..runs import error_body
from ..schema import Event
from ..scope import gc_paused
from ..settings import Settings
from ..text import wire_text
from .protocol import (
    DELTA,
    DONE,
    EVENT,
    FAILED,
    JOB,
    OUTPUT,
    REFUSED,
    REPEATABLE,
    STARTED,
    recv_frame,
    send_frame,
)
from .seccomp import apply_filter, drop_privileges


def apply_limits(settings: Settings) -> None:
    """Address space, no core dumps, few files; CPU is limited once the job starts.

    The address-space limit is counted from what the warmed worker already maps: a CUDA
    build of torch maps about 4 GB of libraries, and an initialised CUDA driver reserves
    over 12 GB more, none of it memory the program uses."""
    mapped = int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    mem = mapped + settings.memory_limit_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(64, hard), min(64, hard)))


WARM_UP = (
    "import torch\nx = torch.ones(3, requires_grad=True)\ny = x + 2\n"
    "z = (y * y * 3).mean()\nz.backward()\nprint(x.grad)\n"
)
#: On a GPU machine a worker also loads cuBLAS, cuDNN and the optimizers' kernels before
#: it is locked down (the template could not: see its docstring).
GPU_WARM_UP = (
    "import torch\nimport torch.nn as nn\nnet = nn.Sequential(nn.Conv2d(1, 2, 3), "
    "nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))\nopt = torch.optim.Adam(net.parameters())\n"
    "sgd = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)\n"
    "loss = net(torch.ones(1, 1, 4, 4)).sum()\nloss.backward()\nopt.step()\nsgd.step()\n"
)


def prefault(settings: Settings, gpu: bool) -> None:
    """Run a small program while waiting for a job: the copy-on-write faults a fresh fork
    takes on first touching the interpreter's and torch's memory happen now, not during
    the request. With a GPU, CUDA is initialised here too: its driver opens device files
    read-write and maps gigabytes, which the lock-down that follows would refuse."""
    from ..engine import run_wire

    orjson.dumps(run_wire(WARM_UP, settings=settings))
    if gpu:
        orjson.dumps(run_wire(GPU_WARM_UP, device="cuda", settings=settings))


def _lower_priority(signum: int, frame: object) -> None:
    """Nice 19 still took ~1.5% of a core and preempted an honest run's wake-ups: under
    SCHED_IDLE the kernel gives a long run only the time no other run wants (benign p99
    under four attackers: 1.8-2.3x idle at nice 19, 1.7-2.0x under SCHED_IDLE, and p50
    20 -> 17 ms; bench/sandbox.py)."""
    os.setpriority(os.PRIO_PROCESS, 0, 19)
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def serve_one(sock: socket.socket, settings: Settings) -> bool:
    """Wait for one job on ``sock``, run it, answer. False when the server hung up."""
    from ..engine import run_wire

    try:
        kind, payload = recv_frame(sock)
    except EOFError:
        return False
    if kind != JOB:
        return False
    job = orjson.loads(payload)
    send_frame(sock, STARTED, b"")
    used = int(resource.getrusage(resource.RUSAGE_SELF).ru_utime)
    cpu = used + settings.cpu_limit_s
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    # A run that is still computing after long_run_after_s of CPU yields the processor to
    # short ones: the server has moved it to a long-run slot, the kernel schedules it last.
    signal.signal(signal.SIGPROF, _lower_priority)
    signal.setitimer(signal.ITIMER_PROF, settings.long_run_after_s)
    emit = None
    streamed = Streamed() if job.get("delta") else None
    if job.get("stream"):

        def emit(events: list[Event]) -> None:
            send_frame(sock, EVENT, b"\n".join(map(orjson.dumps, events)))
            if streamed is not None:
                streamed.note(events)
            printed = "".join(e["text"] for e in events if e["type"] == "stdout")
            if printed:
                send_frame(sock, OUTPUT, printed.encode())

    if "check" in job or "manual" in job or "tensors" in job:
        with gc_paused():
            return _rerun_job(sock, job, settings)
    try:
        with gc_paused():  # (through the Run's serialisation: ~10^5 small objects)
            run = run_wire(
                job["source"],
                device=job["device"],
                seed=job["seed"],
                settings=settings,
                emit=emit,
                run_id=job["id"],
            )
            signal.setitimer(signal.ITIMER_PROF, 0)
            body = orjson.dumps({k: v for k, v in run.items() if k != "id"})  # (protocol.DONE)
            device, stdout = run["device"], run["stdout"]
            error = run["error"]
            repeatable = device == "cpu" and (error is None or error["code"] == "runtime_error")
            delta = None if streamed is None else orjson.dumps(run_delta(run, streamed))
            del run
    except ProgramRejected as e:
        send_frame(sock, REFUSED, orjson.dumps({**e.to_dict(), "errors": e.errors}))
        return True
    if len(body) > settings.max_run_bytes:
        body = error_body(
            device,
            "limit_exceeded",
            limit_text(
                "max_run_bytes", settings.max_run_bytes, f"exceeded: the Run is {len(body):,} bytes"
            ),
            stdout,
        )
    else:
        if delta is not None:
            send_frame(sock, DELTA, delta)
        if repeatable:
            send_frame(sock, REPEATABLE, b"")
    send_frame(sock, DONE, body)
    return True


def _rerun_job(sock: socket.socket, job: dict, settings: Settings) -> bool:
    """A re-run instead of a run: a gradient check's GradCheck, a pass's manual-backprop
    code or a node's tensors in full, or why it could not be made."""
    from ..explain.gradcheck import run_check
    from ..explain.manual import manual_code
    from ..explain.values import node_tensors

    try:
        if "check" in job:
            c = job["check"]
            body = orjson.dumps(
                run_check(
                    job["source"],
                    job["device"],
                    job["seed"],
                    settings,
                    job["id"],
                    c["node"],
                    c["pass"],
                    c["elements"],
                    c.get("expected"),
                )
            )
        elif "tensors" in job:
            t = job["tensors"]
            body = orjson.dumps(
                node_tensors(
                    job["source"], job["device"], job["seed"], settings, t["node"], t["pass"]
                )
            )
        else:
            body = manual_code(
                job["source"],
                job["device"],
                job["seed"],
                settings,
                job["id"],
                job["manual"]["pass"],
            ).encode()
    except ChainlensError as e:
        send_frame(sock, REFUSED, orjson.dumps(e.to_dict()))
        return True
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
    send_frame(sock, DONE, body)
    return True


def _tell_failure(sock: socket.socket, exc: BaseException) -> None:
    """The server's last frame from a worker that is about to exit: what went wrong."""
    text = str(exc).strip().splitlines()
    failure = {"type": type(exc).__name__, "message": wire_text(text[0]) if text else ""}
    try:
        send_frame(sock, FAILED, orjson.dumps(failure))
    except OSError:  # the server has gone
        pass


def child_main(sock: socket.socket, settings: Settings, gpu: bool) -> None:
    """Entry point of a freshly forked worker. Never returns.

    Warm first, then lock down (limits, user nobody, seccomp), then serve."""
    code = 0
    try:
        if settings.threads != 1:
            import torch

            torch.set_num_threads(settings.threads)
        # Warm up at low priority: a spare must not slow the runs that are being served.
        os.setpriority(os.PRIO_PROCESS, 0, 10)
        prefault(settings, gpu)
        if os.getuid() == 0:
            os.setpriority(os.PRIO_PROCESS, 0, 0)
        apply_limits(settings)
        drop_privileges()
        apply_filter()
        runs = settings.runs_per_worker if settings.isolation == "pool" else 1
        for _ in range(runs):
            if not serve_one(sock, settings):
                break
        # Answered: what is left is the exit, unmapping a torch-sized address space
        # (~15 ms of a core), which takes only the time no run wants. Back to back, new
        # chain-rule runs at 1 client went from p50 21-22 to 16-19 ms; at 8 clients up to
        # 43 workers were exiting at once, holding 74 MB of private memory in all.
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except BaseException as e:  # noqa: BLE001 - a worker must exit, whatever happened
        code = 1
        _tell_failure(sock, e)
    finally:
        try:
            sock.close()
        finally:
            os._exit(code)
