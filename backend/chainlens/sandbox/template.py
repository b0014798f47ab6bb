"""The template process: imports torch once, then forks a worker per run.

Run as ``python -m chainlens.sandbox.template FD``: FD is its end of a socket pair
with the server. For each ``A`` byte the server sends, the template hands back an
already-forked spare worker (its pid, and its socket by SCM_RIGHTS) and forks a
new spare. Threads are set to 1 before anything runs: a template that ran a
multithreaded torch op deadlocks its forked children.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import struct
import sys
from collections import deque

import orjson


def main(fd: int) -> None:
    import torch

    from ..engine import run_wire
    from ..examples.catalog import examples
    from ..settings import get_settings
    from .worker import child_main

    settings = get_settings()
    torch.set_num_threads(1)  # always: a template that ran multithreaded ops deadlocks children
    torch.set_num_interop_threads(1)
    # Pay every lazy import (optimizers pull in torch._dynamo on their first step) once,
    # single-threaded, so forked workers start warm and never need a temp dir.
    for ex in examples():
        try:
            orjson.dumps(run_wire(ex.source, settings=settings))
        except Exception:  # noqa: BLE001 - an example that is refused still warmed the parser
            pass

    gc.collect()
    gc.freeze()  # children neither scan nor copy-on-write-touch the template's objects
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished workers
    control = socket.socket(fileno=fd)
    spares: deque[tuple[int, socket.socket]] = deque()

    def fork_spare() -> None:
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            control.close()
            ours.close()
            for _, s in spares:
                s.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            child_main(theirs, settings)
        theirs.close()
        spares.append((pid, ours))

    # Forking and warming spares is preparation: it must not take CPU from runs being served.
    os.setpriority(os.PRIO_PROCESS, 0, 5)
    for _ in range(max(1, settings.spare_workers)):
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
            spares.popleft()[1].close()  # killed while waiting (an operator, the OOM killer)
        if not spares:
            fork_spare()
        pid, sock = spares.popleft()
        socket.send_fds(control, [struct.pack(">q", pid)], [sock.fileno()])
        sock.close()
        fork_spare()
    for pid, _ in spares:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


if __name__ == "__main__":
    main(int(sys.argv[1]))
