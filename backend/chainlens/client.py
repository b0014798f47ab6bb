"""``chainlens.Client``: the HTTP API from Python (httpx for REST, websockets for the stream).

4xx answers are raised as the same typed exceptions the engine uses, carrying the
server's code, message, line and column.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson

from .compact import MEDIA_TYPE, decode
from .delta import rebuild
from .errors import (
    ChainlensError,
    ProgramRejected,
    RateLimited,
    RequestTooLarge,
    RunNotFound,
    ServiceBusy,
)
from .schema import Example, GradCheck, Health, ImportedRun, Run


class InvalidRequest(ChainlensError):
    """422: the body did not match the schema."""

    code = "invalid_request"


_BY_STATUS: dict[int, type[ChainlensError]] = {
    400: ProgramRejected,
    404: RunNotFound,
    413: RequestTooLarge,
    422: InvalidRequest,
    429: RateLimited,
    503: ServiceBusy,
}


class Client:
    def __init__(
        self, base_url: str = "http://127.0.0.1:8000", timeout: float = 60.0, compact: bool = False
    ) -> None:
        """``compact``: Runs travel in the compact encoding (``chainlens.compact``: each
        tensor once, numbers in binary, about half the bytes of a large Run's JSON) and
        are read back into the same Run."""
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self._run_headers = {"accept": MEDIA_TYPE} if compact else {}

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _check(self, response: httpx.Response, text: bool = False) -> Any:
        if response.status_code < 400:
            if text:
                return response.text
            if response.headers.get("content-type", "").startswith(MEDIA_TYPE):
                return decode(response.content)
            return orjson.loads(response.content)
        cls = _BY_STATUS.get(response.status_code, ChainlensError)
        try:
            body = response.json()
        except ValueError:
            body = {}
        err = body.get("error") if isinstance(body, dict) else None
        if err is None:
            err = {"code": cls.code, "message": str(body.get("detail", response.text))[:500]}
        exc = cls(err.get("message", ""), err.get("line"), err.get("col"), code=err.get("code"))
        if isinstance(exc, ProgramRejected) and isinstance(body.get("errors"), list):
            exc.errors = body["errors"]
        # (what the server answered, for a caller deciding whether to retry: every error
        # the client raises carries them, not only the errors that can be retried)
        exc.retry_after = response.headers.get("retry-after")  # type: ignore[attr-defined]
        exc.status_code = response.status_code  # type: ignore[attr-defined]
        raise exc

    def health(self) -> Health:
        return Health.model_validate(self._check(self._http.get("/api/v1/health")))

    def examples(self) -> list[Example]:
        return [Example.model_validate(e) for e in self._check(self._http.get("/api/v1/examples"))]

    def run(self, source: str, device: str | None = None, seed: int = 0) -> Run:
        body: dict[str, Any] = {"source": source, "seed": seed}
        if device is not None:
            body["device"] = device
        response = self._http.post(
            "/api/v1/runs",
            content=orjson.dumps(body),
            headers={"content-type": "application/json", **self._run_headers},
        )
        return Run.model_validate(self._check(response))

    def get(self, run_id: str) -> Run:
        response = self._http.get(f"/api/v1/runs/{run_id}", headers=self._run_headers)
        return Run.model_validate(self._check(response))

    def import_run(self, run: Run) -> ImportedRun:
        """``POST /api/v1/runs/import``: keep a Run made elsewhere (``chainlens.run`` here,
        say) on this server, to open on its page."""
        response = self._http.post(
            "/api/v1/runs/import",
            content=run.model_dump_json().encode(),
            headers={"content-type": "application/json"},
        )
        return ImportedRun.model_validate(self._check(response))

    def check(
        self, run_id: str, node: str, pass_: int | None = None, elements: int = 16
    ) -> GradCheck:
        """``POST /api/v1/runs/{id}/check``: a finite-difference check of one gradient."""
        body: dict[str, Any] = {"node": node, "elements": elements}
        if pass_ is not None:
            body["pass"] = pass_
        response = self._http.post(
            f"/api/v1/runs/{run_id}/check",
            content=orjson.dumps(body),
            headers={"content-type": "application/json"},
        )
        return GradCheck.model_validate(self._check(response))

    def manual(self, run_id: str, pass_: int = 0) -> str:
        """``GET /api/v1/runs/{id}/manual.py``: pass ``pass_`` as standalone numpy code."""
        response = self._http.get(f"/api/v1/runs/{run_id}/manual.py", params={"pass": pass_})
        return self._check(response, text=True)

    def tensors(self, run_id: str, node: str, pass_: int = 0) -> dict:
        """``GET /api/v1/runs/{id}/tensors/{node}``: the node's value, gradient and saved
        tensors in pass ``pass_``, every element (a NodeTensors as a dict)."""
        response = self._http.get(f"/api/v1/runs/{run_id}/tensors/{node}", params={"pass": pass_})
        return self._check(response)

    def stream(self, source: str, device: str | None = None, seed: int = 0) -> Iterator[dict]:
        """One dict per event, in the server's order, ``done`` (or ``error``) last."""
        from websockets.sync.client import connect

        # Batched on the wire (fewer, larger messages), one dict per event here; ``done``
        # as a delta on the wire (the events are here already), the whole Run here.
        url = "ws" + self.base_url.removeprefix("http") + "/api/v1/stream?batch=1&done=delta"
        body: dict[str, Any] = {"source": source, "seed": seed}
        if device is not None:
            body["device"] = device
        seen: list[dict] = []
        with connect(url, max_size=None, open_timeout=30) as ws:
            ws.send(orjson.dumps(body).decode())
            for message in ws:
                data = orjson.loads(message)
                for event in data["events"] if data.get("type") == "batch" else [data]:
                    if event.get("type") == "done" and "delta" in event:
                        event = {"type": "done", "run": rebuild(event["delta"], seen)}
                    seen.append(event)
                    yield event
                    if event.get("type") in ("done", "error"):
                        return
