"""How a worker ended, told honestly: the template reaps its workers and reports each
pid's wait status; a run whose worker ended without answering says what ended it.

A worker lost to the CPU limit is the limit (``limit_exceeded``); one that crashed,
failed or was killed by someone else is ``worker_lost``, with the signal or exit status
(a segfault is not "out of memory").
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections import OrderedDict

import orjson

from ..errors import limit_text
from ..settings import Settings
from .protocol import EXIT_RECORD

_CRASHES: dict[int, str] = {
    signal.SIGSEGV: "a segmentation fault",
    signal.SIGBUS: "a bus error",
    signal.SIGABRT: "an abort",
    signal.SIGFPE: "a floating-point exception",
    signal.SIGILL: "an illegal instruction",
}


class ExitLog:
    """The wait status of recently ended workers, read from the template as they come."""

    #: Statuses kept (most workers end by the server's own kill after answering).
    KEEP = 4096
    #: How long a lost worker's status may take to arrive (the template reaps on SIGCHLD).
    WAIT_S = 2.0

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None
        self._statuses: OrderedDict[int, int] = OrderedDict()
        self._waiters: dict[int, asyncio.Future[int]] = {}

    def open(self) -> socket.socket:
        """A new channel; the end returned is the template's."""
        self.close()
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        self._sock = ours
        return theirs

    def follow(self) -> None:
        """Start reading the channel (once, inside the server's event loop)."""
        if self._task is None and self._sock is not None:
            self._task = asyncio.get_running_loop().create_task(self._read(self._sock))

    async def _read(self, sock: socket.socket) -> None:
        reader, _ = await asyncio.open_unix_connection(sock=sock)
        while True:
            try:
                record = await reader.readexactly(EXIT_RECORD.size)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            pid, status = EXIT_RECORD.unpack(record)
            self._statuses[pid] = status
            while len(self._statuses) > self.KEEP:
                self._statuses.popitem(last=False)
            waiter = self._waiters.pop(pid, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(status)

    async def status(self, pid: int) -> int | None:
        """Worker ``pid``'s wait status, or None when it does not come in time."""
        if pid in self._statuses:
            return self._statuses[pid]
        waiter = self._waiters[pid] = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(waiter, self.WAIT_S)
        except TimeoutError:
            return None
        finally:
            self._waiters.pop(pid, None)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def describe_exit(status: int | None, settings: Settings) -> tuple[str, str]:
    """A lost worker's wait status as an error ``(code, message)``."""
    if status is None:
        return (
            "worker_lost",
            "the worker process ended without answering; how it ended is not known",
        )
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        if sig == signal.SIGXCPU:
            return (
                "limit_exceeded",
                limit_text(
                    "cpu_limit_s",
                    settings.cpu_limit_s,
                    "exceeded: the program used more CPU time than a run may",
                ),
            )
        if sig == signal.SIGKILL:
            return (
                "worker_lost",
                "the worker process was killed (SIGKILL) from outside "
                "chainlens: by the system's out-of-memory killer when the machine ran "
                "short of memory, or by an operator",
            )
        if sig == signal.SIGSYS:
            return (
                "worker_lost",
                "the worker process made a system call the sandbox "
                "forbids, and was stopped (SIGSYS)",
            )
        crash = _CRASHES.get(sig)
        if crash is not None:
            return (
                "worker_lost",
                f"the worker process crashed with {crash} ({name}) while running the program",
            )
        return "worker_lost", f"the worker process was ended by {name}"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    return "worker_lost", f"the worker process exited with status {code} without answering"


def lost_payload(code: str, message: str) -> bytes:
    return orjson.dumps({"code": code, "message": message})


def failure_message(payload: bytes) -> str:
    """A worker's FAILED frame as text: ``ModuleNotFoundError: ...``."""
    failure = orjson.loads(payload)
    return f"{failure['type']}: {failure['message']}" if failure["message"] else failure["type"]
