"""What every route answers with: JSON bodies, the error body for each kind of error and
its status, the client's address, and the OpenAPI entries routes share."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ..compact import MEDIA_TYPE, encode_json
from ..errors import (
    ChainlensError,
    ProgramRejected,
    RateLimited,
    RequestTooLarge,
    RunNotFound,
    ServiceBusy,
)
from ..schema import ErrorBody
from .limits import UnsupportedMediaType
from .requests import BadRequest

STATUS: dict[type, int] = {
    ProgramRejected: 400,
    BadRequest: 400,
    RunNotFound: 404,
    RequestTooLarge: 413,
    UnsupportedMediaType: 415,
    RateLimited: 429,
    ServiceBusy: 503,
}
RETRY_AFTER = {RateLimited: "5", ServiceBusy: "2"}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = data if isinstance(data, bytes) else orjson.dumps(data)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


#: How a Run is answered: the JSON Run (the contract's default) or the compact encoding.
RunFormat = Literal["json", "compact"]
FORMAT = Query(
    "json",
    description="compact: the Run in chainlens's compact encoding (each tensor once, its "
    f"numbers in binary: see chainlens.compact), as ``Accept: {MEDIA_TYPE}`` asks too",
)
#: The compact answer, as OpenAPI documents it.
COMPACT: dict[int | str, dict[str, Any]] = {
    200: {"content": {MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}
}


#: How a kept Run may be read back: also as one standalone HTML file (the viewer and the
#: Run, opening offline), what the page's "HTML" button saves.
StoredFormat = Literal["json", "compact", "html"]
STORED_FORMAT = Query(
    "json",
    description="compact: as on POST /runs; html: one standalone HTML file holding the "
    "page's viewer and this Run (graph, steps, chain-rule card, nodes table), which opens "
    "from a file with no server and no network",
)
#: The answers GET /runs/{id} may give, as OpenAPI documents them.
STORED: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            **COMPACT[200]["content"],
            "text/html": {"schema": {"type": "string"}},
        }
    }
}


async def run_response(
    body: bytes, request: Request, format: RunFormat, headers: dict[str, str] | None = None
) -> Response:
    """A Run's JSON ``body`` as the client asked for it (``?format=`` or ``Accept``)."""
    if format == "compact" or MEDIA_TYPE in request.headers.get("accept", ""):
        # (off the event loop: a 6 MB Run takes ~100 ms to re-encode)
        compact = await run_in_threadpool(encode_json, body)
        return Response(compact, media_type=MEDIA_TYPE, headers=headers)
    return json_response(body, headers=headers)


def error_response(e: ChainlensError) -> Response:
    status = next((code for cls, code in STATUS.items() if isinstance(e, cls)), 400)
    retry = next((v for cls, v in RETRY_AFTER.items() if isinstance(e, cls)), None)
    body = e.body() if isinstance(e, ProgramRejected) else {"error": e.to_dict()}
    return json_response(body, status, {"Retry-After": retry} if retry else None)


def client_address(host: Any) -> str:
    """The client's address as the server sees it (the per-client limits' key)."""
    return getattr(host, "host", None) or "unknown"


def json_body_only(request: Request) -> None:
    ctype = request.headers.get("content-type", "")
    if ctype.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType("the body must be application/json")
    if request.headers.get("content-encoding", "identity").lower() != "identity":
        raise UnsupportedMediaType("compressed request bodies are not accepted")


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entry of a route's error statuses: each an ErrorBody."""
    return {status: {"model": ErrorBody} for status in statuses}


def json_body(model: str) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route that parses its body itself (strictly:
    ``api/requests.py``) as the schema ``model``."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}},
        }
    }
