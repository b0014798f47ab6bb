"""The template process: imports torch once, then forks a worker per run.

Run as ``python -m chainlens.sandbox.template FD EXITS``: FD is its end of a socket pair
with the server. For each ``A`` byte the server sends, the template hands back an
already-forked spare worker (its pid, and its socket by SCM_RIGHTS) and forks a
new spare. Threads are set to 1 before anything runs: a template that ran a
multithreaded torch op deadlocks its forked children. The template is its workers'
parent, so it alone learns how each one ended: it reaps them and writes each pid and
wait status to EXITS, so that the server can say why a worker it lost is gone.

On a machine with a GPU the template must never initialise CUDA: a child forked after
that cannot use it ("CUDA error: initialization error"), and the first ``backward()`` of
a CUDA build does so (the autograd engine counts devices to start its device threads).
So there it warms up with forward passes only; each worker initialises CUDA itself.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import socket
import struct
import sys
from collections import deque

import orjson

from .protocol import EXIT_RECORD

#: What the examples use, without a backward pass or an optimizer step (a step asks
#: for the CUDA devices too, with the same effect): see the module's docstring.
FORWARD_WARM_UP = """import torch
import torch.nn as nn
import torch.nn.functional as F
net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Flatten(), nn.Linear(2, 3), nn.Dropout(0.5))
x = torch.randn(2, 1, 4, 4, requires_grad=True)
y = net(x)
loss = F.cross_entropy(y, torch.tensor([0, 2])) + nn.MSELoss()(y, torch.zeros(2, 3))
print(f"{loss.item():.3f}", y)
"""


def main(fd: int, exits_fd: int) -> None:
    # Should anything ask whether CUDA is available, NVML answers, leaving the driver alone.
    os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"
    import torch

    from ..engine import run_wire
    from ..errors import ChainlensError
    from ..examples.catalog import example, examples

    # A worker drops to user nobody before its job: everything it may run must be in
    # memory by then (a source tree only root can read cannot be imported from later).
    from ..explain.gradcheck import run_check
    from ..explain.manual import manual_code
    from ..explain.values import node_tensors
    from ..language.checker import parse
    from ..settings import get_settings
    from .seccomp import prepare_filter
    from .worker import child_main

    settings = get_settings()
    torch.set_num_threads(1)  # always: a template that ran multithreaded ops deadlocks children
    torch.set_num_interop_threads(1)
    gpu = torch.cuda.device_count() > 0  # asks NVML: the CUDA driver stays uninitialised
    # Pay every lazy import (optimizers pull in torch._dynamo on their first step) once,
    # single-threaded, so forked workers start warm and never need a temp dir.
    examples_src = [ex.source for ex in examples()]
    runs, parses = ([FORWARD_WARM_UP], examples_src) if gpu else (examples_src, [])
    for source in runs:
        try:
            orjson.dumps(run_wire(source, settings=settings))
        except Exception:  # noqa: BLE001 - an example that is refused still warmed the parser
            pass
    for source in parses:
        try:
            parse(source, settings)
        except Exception:  # noqa: BLE001 - as above
            pass
    if not gpu:  # checks, numpy code and tensors pay their own lazy imports (all run backward)
        chain = example("chain_rule").source
        try:
            run_check(chain, "cpu", 0, settings, "warm", "n1", 0, 1)
            manual_code(chain, "cpu", 0, settings, "warm", 0)
            node_tensors(chain, "cpu", 0, settings, "n1", 0)
        except ChainlensError as e:
            print(f"chainlens: warming a check up failed: {e.message}", file=sys.stderr)

    prepare_filter()
    gc.collect()
    gc.freeze()  # children neither scan nor copy-on-write-touch the template's objects
    control = socket.socket(fileno=fd)
    exits = socket.socket(fileno=exits_fd)
    exits.setblocking(False)  # a record the server is too slow to take is dropped, not waited on

    def reap(signum: int, frame: object) -> None:
        """Each finished worker's pid and wait status, to the server."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            try:
                exits.send(EXIT_RECORD.pack(pid, status))
            except OSError:
                pass

    signal.signal(signal.SIGCHLD, reap)
    spares: deque[tuple[int, socket.socket]] = deque()

    def fork_spare() -> None:
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            control.close()
            exits.close()
            ours.close()
            for _, s in spares:
                s.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            child_main(theirs, settings, gpu)
        theirs.close()
        spares.append((pid, ours))

    # Forking and warming spares is preparation: it must not take CPU from runs being served.
    os.setpriority(os.PRIO_PROCESS, 0, 5)
    target = max(1, settings.spare_workers)
    for _ in range(target):
        fork_spare()
    control.sendall(b"R")  # warm, with spares waiting: the server may start serving
    while True:
        try:
            request = control.recv(1)
        except InterruptedError:
            continue
        if not request:
            break
        while spares and not _alive(spares[0][0]):
            # killed or stopped while waiting (an operator, the OOM killer)
            pid, sock = spares.popleft()
            sock.close()
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not spares:
            fork_spare()
        pid, sock = spares.popleft()
        socket.send_fds(control, [struct.pack(">q", pid)], [sock.fileno()])
        sock.close()
        # Refill, but a request already waiting is served first: forking costs tens of ms,
        # and under attack (a bomb takes a spare every few hundred ms) an honest run's
        # request waited behind each fork for its worker.
        while len(spares) < target and not select.select([control], [], [], 0)[0]:
            fork_spare()
    for pid, _ in spares:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _alive(pid: int) -> bool:
    """Running or able to run: not gone, not a zombie, not stopped (SIGSTOP, a debugger)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in (b"Z", b"X", b"T", b"t")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
