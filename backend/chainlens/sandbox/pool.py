"""The server's side of the sandbox: a bounded number of concurrent runs, each in a fresh
worker forked from the template, killed at the wall-clock limit.

``WorkerPool.execute`` yields frames as the worker sends them; the slowest consumer
sets the pace (a worker blocks on a full socket: backpressure by pause), and the
wall-clock limit still holds: a task of the pool's own keeps it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable

import orjson

from ..errors import ServiceBusy
from ..settings import Settings
from .exits import ExitLog, describe_exit, failure_message, lost_payload
from .protocol import DONE, FAILED, JOB, LOST, REFUSED, STARTED, TIMEOUT, read_frame, write_frame
from .slots import Slots

#: The frames that end a run.
FINAL = (DONE, REFUSED, TIMEOUT, LOST)


class _Worker:
    """A forked worker as the server holds it: its socket streams and a pidfd to kill it by
    (a pidfd cannot hit a reused pid)."""

    def __init__(
        self, pid: int, pidfd: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.reader = reader
        self.writer = writer
        self.runs = 0

    def kill(self) -> None:
        try:
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.close(self.pidfd)
        self.writer.close()


class WorkerPool:
    """``isolation="fork"``: a fresh worker per run. ``"pool"``: a worker serves up to
    ``runs_per_worker`` runs, and is replaced after any timeout or crash."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._idle: list[_Worker] = []
        self._control: socket.socket | None = None
        self._exits = ExitLog()
        self._proc: subprocess.Popen | None = None
        self._acquire_lock = asyncio.Lock()
        self.slots = Slots(settings.workers, settings.long_run_slots, settings.long_runs_per_client)
        #: The runs in normal slots, oldest first: when someone has to wait for a slot, the
        #: oldest that may move to a long-run slot moves now, not at its timer.
        self._in_normal_slots: dict[object, Callable[[], bool]] = {}
        self.slots.on_wait = self._make_room
        #: The next run's worker, asked of the template while this one runs
        #: (``isolation="fork"``; see ``_worker``).
        self._next: asyncio.Task[_Worker] | None = None

    #: How long the template may take to import torch and warm up, and a spare to warm up
    #: and take a job (seconds).
    START_TIMEOUT_S = 180.0

    def start(self) -> None:
        """Starts the warm template and waits until it is ready, so the first run after
        the server starts is as fast as the next (the server listens only then)."""
        ours, theirs = socket.socketpair()
        exits = self._exits.open()
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chainlens.sandbox.template",
                str(theirs.fileno()),
                str(exits.fileno()),
            ],
            pass_fds=(theirs.fileno(), exits.fileno()),
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        exits.close()
        self._control = ours
        ours.settimeout(self.START_TIMEOUT_S)
        try:
            ready = ours.recv(1)
        except TimeoutError:
            ready = b""
        ours.settimeout(None)
        if ready != b"R":
            self.stop()
            raise RuntimeError("the worker template did not start (see its output above)")

    def stop(self) -> None:
        for w in self._idle:
            w.kill()
        self._idle.clear()
        if self._next is not None:
            ready, self._next = self._next, None
            if ready.done() and not ready.cancelled() and ready.exception() is None:
                ready.result().kill()
            ready.cancel()
        self._exits.close()
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._proc = None

    def _acquire_blocking(self) -> tuple[int, socket.socket]:
        assert self._control is not None
        self._control.sendall(b"A")
        msg, fds, _, _ = socket.recv_fds(self._control, 8, 1)
        if not fds:
            raise RuntimeError("the worker template stopped")
        return struct.unpack(">q", msg)[0], socket.socket(fileno=fds[0])

    async def _acquire(self) -> tuple[int, socket.socket]:
        async with self._acquire_lock:
            return await asyncio.to_thread(self._acquire_blocking)

    async def _worker(self) -> _Worker:
        """A worker for the next run. With a fresh worker per run, the one after it is
        asked for at once: the template forks a replacement spare after each it hands
        out, and a request arriving meanwhile waited for that fork (back to back, the
        chain rule's acquire took 7-9 ms instead of 1 ms, a third of its latency)."""
        if self._idle:
            return self._idle.pop()
        ready, self._next = self._next, None
        worker = await (ready or self._spare())
        if self.settings.isolation == "fork":
            self._next = asyncio.create_task(self._spare())
        return worker

    async def _spare(self) -> _Worker:
        """A spare from the template, connected."""
        self._exits.follow()
        pid, sock = await self._acquire()
        pidfd = os.pidfd_open(pid)  # the worker is alive now: no pid-reuse race later
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=1 << 20)
        return _Worker(pid, pidfd, reader, writer)

    async def _lost(self, worker: _Worker, failure: bytes = b"") -> bytes:
        """Why ``worker`` ended without answering, as a LOST frame's payload."""
        if failure:
            return lost_payload(
                "worker_lost", "the worker process failed: " + failure_message(failure)
            )
        return lost_payload(*describe_exit(await self._exits.status(worker.pid), self.settings))

    #: Frames a run has sent that its consumer has not taken yet, at most: past this many
    #: the worker waits (its socket fills up), and its deadline still runs.
    OUTBOX_FRAMES = 64
    #: A spare that has not taken its job within this long is stopped or stuck: it is
    #: killed and a fresh one takes the job. The last try waits START_TIMEOUT_S (a GPU
    #: spare may still be initialising CUDA, seconds).
    START_GRACE_S = 1.0
    START_TRIES = 3

    def _make_room(self) -> None:
        for promote in list(self._in_normal_slots.values()):
            if promote():
                return

    @property
    def waiting(self) -> int:
        return self.slots.waiting

    async def execute(self, job: dict, client: str = "") -> AsyncIterator[tuple[bytes, bytes]]:
        """Run ``job`` in a worker; yield (kind, payload) frames. The last one is DONE or
        REFUSED from the worker, or TIMEOUT (wall clock) or LOST (the worker ended without
        answering; the payload says how: ``{"code", "message"}``).

        The worker is driven by a task of its own, which keeps the wall clock whoever
        consumes the frames and however slowly: a consumer that stops reading (a client
        that never reads its WebSocket) fills a bounded outbox, the worker then waits on
        its socket, and at the deadline it is killed and its slot freed like any other.
        ``client`` (its address) has a fair share of the workers (``Slots``)."""
        if self.waiting >= self.settings.queue_size:
            raise ServiceBusy(
                f"all {self.settings.workers} workers are busy and the queue "
                f"(queue_size={self.settings.queue_size}) is full; retry shortly"
            )
        await self.slots.acquire(client)
        outbox: asyncio.Queue[tuple[bytes, bytes]] = asyncio.Queue(self.OUTBOX_FRAMES)
        pump = asyncio.create_task(self._pump(job, client, outbox))
        try:
            while True:
                kind, payload = await outbox.get()
                yield kind, payload
                if kind in FINAL:
                    return
        finally:
            pump.cancel()  # the consumer left early: the worker is killed, its slot freed

    async def _pump(
        self, job: dict, client: str, outbox: asyncio.Queue[tuple[bytes, bytes]]
    ) -> None:
        """Drives the worker, then hands over its last frame: at the consumer's pace when
        the run ended by itself; at once, dropping what the consumer has not read, when
        it ended at its deadline (a consumer that never reads must not hold it)."""
        last = await self._drive(job, client, outbox)
        if last[0] in (TIMEOUT, LOST):
            while outbox.full():
                outbox.get_nowait()
        await outbox.put(last)

    async def _drive(
        self, job: dict, client: str, outbox: asyncio.Queue[tuple[bytes, bytes]]
    ) -> tuple[bytes, bytes]:
        """Runs ``job`` in a worker, owning the worker and the slot, putting each event
        frame into ``outbox``; answers the last frame, with worker and slot released."""
        worker: _Worker | None = None
        reusable = False
        promoted = False

        def promote() -> bool:
            """Past long_run_after_s, or as soon as someone waits for its slot, a run leaves
            its slot to short runs (while its address has a long-run slot to take): a CPU
            bomb cannot make honest users queue."""
            nonlocal promoted
            if not promoted:
                promoted = self.slots.promote(client)
                if promoted:
                    self._in_normal_slots.pop(key, None)
            return promoted

        key = object()
        self._in_normal_slots[key] = promote
        timer = asyncio.get_running_loop().call_later(self.settings.long_run_after_s, promote)
        try:
            for attempt in range(1, self.START_TRIES + 1):
                last_try = attempt == self.START_TRIES
                worker = await self._worker()
                write_frame(worker.writer, JOB, orjson.dumps(job))
                # The wall clock starts when the worker takes the job: a spare still warming
                # up (seconds on a GPU machine, where each one initialises CUDA) is not the
                # program running long.
                deadline = time.monotonic() + (
                    self.START_TIMEOUT_S if last_try else self.START_GRACE_S
                )
                started = False
                while True:
                    remaining = max(deadline - time.monotonic(), 0.001)
                    try:
                        kind, payload = await asyncio.wait_for(read_frame(worker.reader), remaining)
                    except TimeoutError:
                        if started:
                            return TIMEOUT, b""
                        if not last_try:
                            break  # stopped or stuck: killed, and a fresh spare takes the job
                        return LOST, lost_payload(
                            "worker_lost",
                            "the worker process did not take the job within "
                            f"{self.START_TIMEOUT_S:.0f} s (stopped, or the machine is overloaded)",
                        )
                    except (asyncio.IncompleteReadError, EOFError, ConnectionError):
                        if not started and not last_try:
                            break  # it died before our job began (a killed spare): once more
                        return LOST, await self._lost(worker)
                    if kind == FAILED:
                        return LOST, await self._lost(worker, payload)
                    if kind == STARTED:
                        started = True
                        deadline = time.monotonic() + self.settings.wall_timeout_s
                        continue
                    if kind in (DONE, REFUSED):
                        worker.runs += 1
                        # A long run left its worker at nice 19 under SCHED_IDLE, which it cannot undo.
                        reusable = (
                            self.settings.isolation == "pool"
                            and not promoted
                            and worker.runs < self.settings.runs_per_worker
                        )
                        return kind, payload
                    try:
                        await asyncio.wait_for(
                            outbox.put((kind, payload)), max(deadline - time.monotonic(), 0.001)
                        )
                    except TimeoutError:  # the consumer stopped reading; the clock did not
                        return TIMEOUT, b""
                worker.kill()
                worker = None
            raise AssertionError("unreachable: the last try always returns")
        finally:
            timer.cancel()
            self._in_normal_slots.pop(key, None)
            if worker is not None:
                if reusable:
                    self._idle.append(worker)
                else:
                    worker.kill()
            self.slots.release(client, promoted)
