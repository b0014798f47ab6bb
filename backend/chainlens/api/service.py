"""Runs as the API serves them: through the worker pool, into the store.

Both the REST route and the WebSocket speak to ``RunService``; neither knows about
frames, workers or timeouts.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator

import orjson
from fastapi.concurrency import run_in_threadpool

from ..engine import resolve_device
from ..errors import ChainlensError, ProgramRejected, RunNotFound, limit_text
from ..explain.gradcheck import CheckFailed, expected_from_run
from ..explain.manual import ManualUnavailable
from ..explain.values import TensorsUnavailable
from ..runs import error_body, with_id
from ..sandbox.pool import WorkerPool
from ..sandbox.protocol import DELTA, DONE, EVENT, LOST, OUTPUT, REFUSED, REPEATABLE, TIMEOUT
from ..schema import CheckRequest, RunRequest
from ..settings import PLACEMENT, Settings
from ..store import RunStore
from ..web.viewer import standalone_html
from .imports import checked_run
from .quotas import Limiter

#: The store keeps each Run's body without its id (``runs.with_id`` gives it one), under
#: its id; each run's program under this prefix (``job:<id>``), for checks.
JOB_KEY = "job:"
#: ...and, under this one, which run answered a request (``req:<digest>``), for the cache.
REQUEST_KEY = "req:"


class RunService:
    def __init__(
        self, settings: Settings, pool: WorkerPool, store: RunStore, limiter: Limiter
    ) -> None:
        """``store`` and ``limiter``: in this process, or shared by the replicas
        (``api.shared_state``)."""
        self.settings = settings
        self.pool = pool
        self.store = store
        self.limiter = limiter
        # Runs made under other settings (other limits) answer other requests.
        computing = settings.model_dump_json(exclude=set(PLACEMENT))
        self._settings_digest = hashlib.sha256(computing.encode())

    def _job(self, req: RunRequest, stream: bool) -> dict:
        device = resolve_device(req.device or self.settings.device)
        return {
            "id": uuid.uuid4().hex[:16],
            "source": req.source,
            "device": device,
            "seed": req.seed,
            "stream": stream,
        }

    def _finish(
        self, job: dict, kind: bytes, payload: bytes, stdout: list[str], repeatable: bool
    ) -> bytes:
        """The Run's JSON for the last frame: the worker's own, or one made here; kept, and
        when the worker said it may answer the same request again (``REPEATABLE``), kept
        as that request's answer too."""
        if kind == DONE:
            body = payload
        elif kind == TIMEOUT:
            body = error_body(
                job["device"],
                "timeout",
                limit_text(
                    "wall_timeout_s",
                    self.settings.wall_timeout_s,
                    "exceeded: the program ran too long and was stopped",
                ),
                "".join(stdout),
            )
        else:
            lost = orjson.loads(payload)
            body = error_body(job["device"], lost["code"], lost["message"], "".join(stdout))
        self._keep(job, body)
        if kind == DONE and repeatable and self.settings.run_cache:
            self.store.put(self._request_key(job), job["id"].encode())
        return with_id(job["id"], body)

    def _keep(self, job: dict, body: bytes) -> None:
        """The Run (``body``, without its id) under the job's id."""
        self.store.put(job["id"], body)
        # what a gradient check needs to run the program again
        self.store.put(
            JOB_KEY + job["id"], orjson.dumps({k: job[k] for k in ("source", "device", "seed")})
        )

    def _request_key(self, job: dict) -> str:
        digest = self._settings_digest.copy()
        digest.update(orjson.dumps([job["source"], job["device"], job["seed"]]))
        return REQUEST_KEY + digest.hexdigest()

    def _answered(self, job: dict) -> bytes | None:
        """The Run that answered this request before, under the job's own id; None when
        there is none (never run, not repeatable, or expired from the store)."""
        if not self.settings.run_cache:
            return None
        key = self._request_key(job)
        earlier = self.store.get(key)
        body = self.store.get(earlier.decode()) if earlier is not None else None
        if earlier is None or body is None:
            return None
        self._keep(job, body)
        # the newest copy answers next time: a run asked for often stays in the store
        self.store.put(key, job["id"].encode())
        return with_id(job["id"], body)

    async def run(self, req: RunRequest, client: str) -> tuple[bytes, bool]:
        """POST /runs: the Run's JSON body, and whether it is a run made earlier for the
        same request (no worker ran)."""
        job = self._job(req, stream=False)
        self.limiter.admit(client)
        try:
            body = self._answered(job)
            if body is not None:
                return body, True
            repeatable = False
            async for kind, payload in self.pool.execute(job, client):
                if kind == REPEATABLE:
                    repeatable = True
                elif kind == REFUSED:
                    raise _refusal(payload)
                elif kind != EVENT:
                    return self._finish(job, kind, payload, [], repeatable), False
        finally:
            self.limiter.release(client)
        raise RuntimeError("the worker ended without a result")

    async def stream(
        self, req: RunRequest, client: str, delta: bool = False
    ) -> AsyncIterator[list[bytes]]:
        """WS /stream: the events' JSON in order, as the worker sends them (a list per
        batch the worker flushed), ``done`` last; with ``delta``, a ``done`` that leaves
        out what the events carried (``chainlens.delta``)."""
        job = self._job(req, stream=True)
        if delta:
            job["delta"] = True
        self.limiter.admit(client)
        stdout: list[str] = []
        repeatable = False
        less: bytes | None = None
        try:
            async for kind, payload in self.pool.execute(job, client):
                if kind == REPEATABLE:
                    repeatable = True
                elif kind == DELTA:
                    less = payload
                elif kind == EVENT:
                    yield payload.split(b"\n")
                elif kind == OUTPUT:
                    stdout.append(payload.decode())
                elif kind == REFUSED:
                    raise _refusal(payload)
                else:
                    body = self._finish(job, kind, payload, stdout, repeatable)
                    if kind == DONE and less is not None:
                        yield [b'{"type":"done","delta":' + less + b"}"]
                    else:
                        yield [b'{"type":"done","run":' + body + b"}"]
                    return
        finally:
            self.limiter.release(client)

    async def import_run(self, body: bytes, client: str) -> str:
        """POST /runs/import: a Run recorded elsewhere, checked and kept under a new id
        (without a program: nothing of it ever runs here)."""
        self.limiter.admit(client)
        try:
            kept = await run_in_threadpool(checked_run, body)  # (a few MB: ~100 ms)
        finally:
            self.limiter.release(client)
        run_id = uuid.uuid4().hex[:16]
        self.store.put(run_id, kept)
        return run_id

    def get(self, run_id: str) -> bytes | None:
        """The Run's JSON, while the store keeps it."""
        body = None if run_id.startswith(JOB_KEY) else self.store.get(run_id)
        return None if body is None else with_id(run_id, body)

    def kept(self, run_id: str) -> bool:
        """Whether the store keeps this run (made here, on a replica, or imported)."""
        return not run_id.startswith(JOB_KEY) and self.store.get(run_id) is not None

    async def page(self, run_id: str, client: str) -> str:
        """GET /runs/{id}?format=html: the run as one standalone HTML file, with its
        program (~3 MB of viewer around it, and its gzip: counted against the client's
        limits, and made off the event loop)."""
        self.limiter.admit(client)
        try:
            body = self.get(run_id)
            if body is None:
                raise RunNotFound.of(run_id)
            return await run_in_threadpool(standalone_html, body, self.program(run_id))
        finally:
            self.limiter.release(client)

    def _request_of(self, run_id: str) -> bytes | None:
        """The request a kept run was made from: its program, device and seed."""
        return None if run_id.startswith(JOB_KEY) else self.store.get(JOB_KEY + run_id)

    def program(self, run_id: str) -> str | None:
        """The program a kept run ran (None for an imported Run, which has none)."""
        stored = self._request_of(run_id)
        return None if stored is None else orjson.loads(stored)["source"]

    async def check(self, run_id: str, req: CheckRequest, client: str) -> bytes:
        """POST /runs/{id}/check: the program runs again in a worker, under the check."""
        run = self.get(run_id)
        expected = expected_from_run(orjson.loads(run), req.node, req.pass_) if run else {}
        return await self._rerun_stored(
            run_id,
            client,
            CheckFailed,
            {
                "check": {
                    "node": req.node,
                    "pass": req.pass_,
                    "elements": req.elements,
                    "expected": expected,
                }
            },
            "running the program again for each checked element took too long; check "
            "fewer elements",
        )

    async def manual(self, run_id: str, pass_index: int, client: str) -> bytes:
        """GET /runs/{id}/manual.py: the program runs again in a worker, and pass
        ``pass_index`` comes back as numpy code."""
        return await self._rerun_stored(
            run_id,
            client,
            ManualUnavailable,
            {"manual": {"pass": pass_index}},
            "running the program again took too long",
        )

    async def tensors(self, run_id: str, node: str, pass_index: int, client: str) -> bytes:
        """GET /runs/{id}/tensors/{node}: the program runs again in a worker, and the node's
        tensors in pass ``pass_index`` come back in full (a LeNet pass: ~15 ms of re-run)."""
        return await self._rerun_stored(
            run_id,
            client,
            TensorsUnavailable,
            {"tensors": {"node": node, "pass": pass_index}},
            "running the program again took too long",
        )

    async def _rerun_stored(
        self, run_id: str, client: str, failure: type[ChainlensError], task: dict, too_long: str
    ) -> bytes:
        """Run a stored run's program again in a worker for ``task``; what it answers,
        or ``failure`` saying why there is no answer."""
        stored = self._request_of(run_id)
        if stored is None:
            if self.kept(run_id):  # but without a program
                raise failure(
                    f"run {run_id!r} was imported: checks, numpy code and full tensors run "
                    "its program again, and an imported Run does not carry one",
                    code="needs_program",
                )
            raise RunNotFound.of(run_id)
        job = {**orjson.loads(stored), "id": run_id, "stream": False, **task}
        self.limiter.admit(client)
        try:
            async for kind, payload in self.pool.execute(job, client):
                if kind == DONE:
                    return payload
                if kind == REFUSED:
                    raise failure(**_rejection(payload))
                if kind == TIMEOUT:
                    raise failure(
                        limit_text(
                            "wall_timeout_s", self.settings.wall_timeout_s, "exceeded: " + too_long
                        )
                    )
                if kind == LOST:
                    raise failure(orjson.loads(payload)["message"])
        finally:
            self.limiter.release(client)
        raise RuntimeError("the worker ended without a result")


def _rejection(payload: bytes) -> dict:
    err = orjson.loads(payload)
    return {
        "message": err["message"],
        "line": err.get("line"),
        "col": err.get("col"),
        "code": err["code"],
    }


def _refusal(payload: bytes) -> ProgramRejected:
    """A worker's REFUSED frame for a run: the program was not run, for every reason in it."""
    return ProgramRejected(**_rejection(payload), errors=orjson.loads(payload).get("errors"))
