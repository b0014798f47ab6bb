"""The FastAPI application: the endpoints of ``shared/API.md``, their errors, the page.

Runs never execute here: ``RunService`` hands them to worker processes, so the
event loop only waits on sockets and ``/api/v1/health`` stays fast during a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import orjson
import torch
from fastapi import FastAPI, Path, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from .. import __version__
from ..engine import available_devices
from ..errors import (
    ChainlensError,
    ProgramRejected,
    RateLimited,
    RequestTooLarge,
    RunNotFound,
    ServiceBusy,
    limit_text,
)
from ..examples.catalog import examples
from ..sandbox.pool import WorkerPool
from ..schema import (
    CheckRequest,
    ErrorBody,
    Example,
    GradCheck,
    Health,
    NodeTensors,
    Run,
    RunRequest,
)
from ..settings import Settings, get_settings
from ..store import MemoryStore
from ..web.assets import APP_PREFIX, page_assets
from .connections import StreamBudget
from .limits import BodyLimitMiddleware, UnsupportedMediaType
from .requests import BadRequest, SchemaError, parse_model, parse_run_request
from .service import RunService

log = logging.getLogger("chainlens")

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
#: On POST /runs: ``hit`` when the Run is one made earlier for the same request.
CACHE_HEADER = "X-Chainlens-Cache"
WEB = resources.files("chainlens") / "web"


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = data if isinstance(data, bytes) else orjson.dumps(data)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def error_response(e: ChainlensError) -> Response:
    status = next((code for cls, code in STATUS.items() if isinstance(e, cls)), 400)
    retry = next((v for cls, v in RETRY_AFTER.items() if isinstance(e, cls)), None)
    body = e.body() if isinstance(e, ProgramRejected) else {"error": e.to_dict()}
    return json_response(body, status, {"Retry-After": retry} if retry else None)


def _client(host: Any) -> str:
    return getattr(host, "host", None) or "unknown"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = WorkerPool(settings)
        pool.start()
        app.state.service = RunService(
            settings, pool, MemoryStore(settings.store_size, settings.store_ttl_s)
        )
        # The ~200k objects of torch, FastAPI and the app live as long as the server: a full
        # collection that scans them takes ~130 ms here, and stalls every request in flight.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            pool.stop()

    app = FastAPI(
        title="chainlens",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        description="Run tutorial PyTorch programs and see their autograd graph "
        "and every backward step. See shared/API.md.",
    )
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    streams = StreamBudget(settings.ws_max_per_client, settings.ws_max_open)
    templates = Environment(
        loader=FileSystemLoader(str(WEB / "templates")), autoescape=select_autoescape()
    )
    static = WEB / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.exception_handler(ChainlensError)
    async def _chainlens_error(request: Request, e: ChainlensError) -> Response:
        return error_response(e)

    @app.exception_handler(SchemaError)
    async def _schema_error(request: Request, e: SchemaError) -> Response:
        return json_response({"detail": e.errors}, 422)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, e: RequestValidationError) -> Response:
        detail = [
            {"type": err.get("type"), "loc": list(err.get("loc", ())), "msg": err.get("msg")}
            for err in e.errors()
        ]
        return json_response({"detail": detail}, 422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, e: Exception) -> Response:
        log.exception("unexpected error")
        return json_response(
            {"error": {"code": "internal", "message": type(e).__name__, "line": None, "col": None}},
            500,
        )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        assets = page_assets()
        html = templates.get_template("index.html").render(
            version=__version__, js=assets.js, css=assets.css
        )
        return HTMLResponse(html)

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs() -> HTMLResponse:
        """Swagger UI from our own static files: no CDN, works offline."""
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="chainlens API",
            swagger_js_url=APP_PREFIX + "swagger/swagger-ui-bundle.js",
            swagger_css_url=APP_PREFIX + "swagger/swagger-ui.css",
            swagger_favicon_url="data:,",
        )

    @app.get("/api/v1/health", response_model=Health)
    async def health() -> Response:
        return json_response(
            {
                "status": "ok",
                "version": __version__,
                "torch": torch.__version__,
                "devices": available_devices(),
            }
        )

    @app.get("/api/v1/examples", response_model=list[Example])
    async def list_examples() -> Response:
        return json_response([e.model_dump() for e in examples()])

    @app.post(
        "/api/v1/runs",
        response_model=Run,
        responses={
            200: {
                "headers": {
                    CACHE_HEADER: {
                        "description": "hit: the run made earlier for the same program, device "
                        "and seed (CPU), under a new id; miss: run now",
                        "schema": {"type": "string", "enum": ["hit", "miss"]},
                    }
                }
            },
            400: {"model": ErrorBody},
            413: {"model": ErrorBody},
            415: {"model": ErrorBody},
            429: {"model": ErrorBody},
            503: {"model": ErrorBody},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/RunRequest"}}
                },
            }
        },
    )
    async def create_run(request: Request) -> Response:
        """Run a program; the body is a RunRequest (parsed strictly: see api/requests.py).

        A request answered before (same program, device and seed, on the CPU) gets that
        run again under a new id, with the header ``X-Chainlens-Cache: hit``."""
        _json_body_only(request)
        req = parse_run_request(await request.body())
        body, cached = await request.app.state.service.run(req, _client(request.client))
        return json_response(body, headers={CACHE_HEADER: "hit" if cached else "miss"})

    @app.get("/api/v1/runs/{run_id}", response_model=Run, responses={404: {"model": ErrorBody}})
    async def get_run(run_id: str, request: Request) -> Response:
        body = request.app.state.service.get(run_id)
        if body is None:
            raise RunNotFound(f"no run {run_id[:40]!r}: unknown or expired")
        return json_response(body)

    @app.post(
        "/api/v1/runs/{run_id}/check",
        response_model=GradCheck,
        responses={
            400: {"model": ErrorBody},
            404: {"model": ErrorBody},
            413: {"model": ErrorBody},
            415: {"model": ErrorBody},
            429: {"model": ErrorBody},
            503: {"model": ErrorBody},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/CheckRequest"}}
                },
            }
        },
    )
    async def check_gradient(run_id: str, request: Request) -> Response:
        """Check one gradient of a finished run by finite differences: a leaf's (in a pass)
        or a step's (each input of that node). The program runs again in a worker; the body
        is a CheckRequest. 400 ``check_failed`` says why a check could not be made."""
        _json_body_only(request)
        req = parse_model(await request.body(), CheckRequest)
        body = await request.app.state.service.check(run_id, req, _client(request.client))
        return json_response(body)

    @app.get(
        "/api/v1/runs/{run_id}/manual.py",
        response_class=Response,
        responses={
            200: {
                "content": {"text/x-python": {"schema": {"type": "string"}}},
                "description": "A standalone Python file (numpy only).",
            },
            400: {"model": ErrorBody},
            404: {"model": ErrorBody},
            429: {"model": ErrorBody},
            503: {"model": ErrorBody},
        },
    )
    async def manual_backprop(
        run_id: str,
        request: Request,
        pass_: int = Query(
            0,
            alias="pass",
            ge=0,
            le=1_000_000,
            description="The backward pass to write out, "
            "by its index in the Run's passes (the file "
            "and its name number passes from 1).",
        ),
    ) -> Response:
        """One backward pass of a finished run as manual-backprop code: a standalone numpy
        file that recomputes the forward and every gradient, one chain-rule line per node
        in the engine's order, ending in ``GRADIENTS`` (dL/d each leaf) and ``UPSTREAM``
        (dL/d each node's output, by node id). The program runs again in a worker. 400
        ``manual_unavailable`` says why a pass cannot be written out (a custom Function,
        an op without a numpy translation, a pass the program never finished)."""
        body = await request.app.state.service.manual(run_id, pass_, _client(request.client))
        return Response(
            body,
            media_type="text/x-python; charset=utf-8",
            headers={
                "Content-Disposition": f'inline; filename="chainlens-{run_id[:16]}-pass{pass_ + 1}.py"'
            },
        )

    @app.get(
        "/api/v1/runs/{run_id}/tensors/{node}",
        response_model=NodeTensors,
        responses={
            400: {"model": ErrorBody},
            404: {"model": ErrorBody},
            429: {"model": ErrorBody},
            503: {"model": ErrorBody},
        },
    )
    async def node_tensors(
        run_id: str,
        request: Request,
        node: str = Path(
            max_length=64, pattern=r"^[A-Za-z0-9_]+$", description="A node id of the Run (n3)."
        ),
        pass_: int = Query(
            0,
            alias="pass",
            ge=0,
            le=1_000_000,
            description="The backward pass, by its index in the Run's passes.",
        ),
    ) -> Response:
        """One node's tensors in full (value, gradient, saved), for pictures whose every
        pixel can be read: the Run keeps values to 64 elements. The program runs again in
        a worker. 400 ``tensors_unavailable`` says why not (unknown node, a pass not
        recorded, more than max_fetched_elements elements)."""
        body = await request.app.state.service.tensors(run_id, node, pass_, _client(request.client))
        return json_response(body)

    @app.websocket("/api/v1/stream")
    async def stream(ws: WebSocket, batch: bool = False) -> None:
        """One message per event; with ``?batch=1``, events that are ready together come
        as one ``{"type": "batch", "events": [...]}`` message (the page uses this: a
        10,000-node run is 20,000 events). At most ws_max_per_client streams from one address
        and ws_max_open overall: past them a stream is closed at once with 1013 and the
        limit named; its program must come within ws_idle_timeout_s (else 1008)."""
        with streams.hold(_client(ws.client)) as refused:
            try:
                await ws.accept()
                if refused:
                    await _close(ws, 1013, refused)
                    return
                await serve_stream(ws, batch)
            except (WebSocketDisconnect, OSError):  # the client left early: nothing to report
                return

    async def serve_stream(ws: WebSocket, batch: bool) -> None:
        try:
            message = await asyncio.wait_for(ws.receive(), settings.ws_idle_timeout_s)
        except TimeoutError:
            await _close(
                ws,
                1008,
                limit_text(
                    "ws_idle_timeout_s", settings.ws_idle_timeout_s, "exceeded: no program was sent"
                ),
            )
            return
        if message.get("type") == "websocket.disconnect":
            return
        raw = message.get("text") or message.get("bytes") or b""
        try:
            if len(raw) > settings.ws_max_message_bytes:
                raise RequestTooLarge(
                    limit_text(
                        "ws_max_message_bytes",
                        settings.ws_max_message_bytes,
                        "exceeded by the first message",
                    )
                )
            req = parse_run_request(raw)

            async def send(text: str) -> None:
                await asyncio.wait_for(ws.send_text(text), settings.ws_send_timeout_s)

            async for events in ws.app.state.service.stream(req, _client(ws.client)):
                if batch:
                    await send((b'{"type":"batch","events":[' + b",".join(events) + b"]}").decode())
                else:
                    for event in events:
                        await send(event.decode())
        except TimeoutError:  # a client that does not read: the stream is dropped, not its deadline
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    _close(
                        ws,
                        1008,
                        "the client did not read the stream for "
                        f"ws_send_timeout_s={settings.ws_send_timeout_s} s",
                    ),
                    1,
                )
            return
        except ChainlensError as e:
            body = e.body() if isinstance(e, ProgramRejected) else {"error": e.to_dict()}
            await ws.send_text(orjson.dumps({"type": "error", **body}).decode())
        except SchemaError as e:
            await ws.send_text(
                orjson.dumps(
                    {
                        "type": "error",
                        "error": {
                            "code": "invalid_request",
                            "message": "; ".join(
                                f"{'.'.join(map(str, err['loc'][1:]))}: {err['msg']}"
                                for err in e.errors
                            ),
                            "line": None,
                            "col": None,
                        },
                    }
                ).decode()
            )
        await _close(ws, 1000)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (RunRequest, CheckRequest):
                schemas[model.__name__] = model.model_json_schema(
                    ref_template="#/components/schemas/{model}"
                )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _json_body_only(request: Request) -> None:
    ctype = request.headers.get("content-type", "")
    if ctype.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType("the body must be application/json")
    if request.headers.get("content-encoding", "identity").lower() != "identity":
        raise UnsupportedMediaType("compressed request bodies are not accepted")


async def _close(ws: WebSocket, code: int, reason: str | None = None) -> None:
    try:
        await ws.close(code, reason)
    except RuntimeError:
        pass
