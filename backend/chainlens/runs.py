"""A Run's body as the server keeps and sends it: without its id until it answers a
request, and the Runs the server makes itself when the engine could not finish one
(timeout, lost worker).

A worker's Run may answer more than one request (the run cache: the same program, seed
and device), each under its own id, so the store keeps the body without one and the
answer is composed: ``{"id": ...`` followed by the rest of the object.
"""

from __future__ import annotations

import orjson

from .schema import ErrorInfo, Run


def with_id(run_id: str, body: bytes) -> bytes:
    """The Run's JSON, answering request ``run_id``: ``body`` is a Run object without
    an ``id`` (a worker's ``DONE`` frame, or ``error_body``'s)."""
    return b'{"id":' + orjson.dumps(run_id) + b"," + body.removeprefix(b"{")


def error_body(device: str, code: str, message: str, stdout: str = "") -> bytes:
    """A Run the server makes itself (nothing ran to its end), without an id."""
    run = Run(
        id="",
        status="error",
        device=device,
        error=ErrorInfo(code=code, type=None, message=message),
        stdout=stdout,
        variables={},
        nodes=[],
        passes=[],
        diagnostics=[],
        timings_ms={},
    )
    return run.model_dump_json(exclude={"id"}).encode()
