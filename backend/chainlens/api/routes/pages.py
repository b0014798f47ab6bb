"""The page and the API's documentation, both from the package's own files (no CDN)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment

from ...errors import RunNotFound
from ...version import __version__
from ...web.assets import APP_PREFIX, page_assets


def router(templates: Environment) -> APIRouter:
    routes = APIRouter(include_in_schema=False)

    @routes.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        assets = page_assets()
        html = templates.get_template("index.html").render(
            version=__version__, js=assets.js, css=assets.css
        )
        return HTMLResponse(html)

    @routes.get("/r/{run_id}")
    async def kept_run(run_id: str, request: Request) -> RedirectResponse:
        """A link to a kept run (made here, on another replica, before a restart, or
        imported): the page, opened on it (``#r=<id>``)."""
        if not request.app.state.service.kept(run_id):
            raise RunNotFound.of(run_id)
        return RedirectResponse(f"/#r={run_id}", status_code=307)

    @routes.get("/docs", response_class=HTMLResponse)
    async def docs() -> HTMLResponse:
        """Swagger UI from our own static files: no CDN, works offline."""
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="chainlens API",
            swagger_js_url=APP_PREFIX + "swagger/swagger-ui-bundle.js",
            swagger_css_url=APP_PREFIX + "swagger/swagger-ui.css",
            swagger_favicon_url="data:,",
        )

    return routes
