"""The FastAPI application: middleware, errors, the static files, and the routers of
``routes/`` (the endpoints of ``shared/API.md``, the page).

Runs never execute here: ``RunService`` hands them to worker processes, so the
event loop only waits on sockets and ``/api/v1/health`` stays fast during a run.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..errors import ChainlensError
from ..sandbox.pool import WorkerPool
from ..schema import CheckRequest, RunRequest
from ..settings import Settings, get_settings
from ..version import __version__
from .connections import StreamBudget
from .limits import BodyLimitMiddleware
from .requests import SchemaError
from .responses import error_response, json_response
from .routes import info, pages, runs, stream
from .routes.runs import IMPORT_PATH
from .service import RunService
from .shared_state import shared_state_for

log = logging.getLogger("chainlens")

WEB = resources.files("chainlens") / "web"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = WorkerPool(settings)
        pool.start()
        app.state.shared = shared = shared_state_for(settings)
        app.state.service = RunService(settings, pool, shared.store, shared.limiter)
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
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        larger={IMPORT_PATH: ("max_import_bytes", settings.max_import_bytes)},
    )
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
            {"error": ChainlensError(type(e).__name__, code="internal").to_dict()}, 500
        )

    app.include_router(pages.router(templates))
    app.include_router(info.router)
    app.include_router(runs.router)
    app.include_router(stream.router(settings, streams))

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

    app.openapi = openapi  # type: ignore[method-assign]  # (FastAPI's documented override)
    return app
