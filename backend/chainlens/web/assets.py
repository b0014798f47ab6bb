"""Which built files the page shell links, read from the Vite manifest.

The front end (``frontend/``) builds into ``static/app`` with hashed file names and a
``manifest.json``; the server reads the manifest once, so a rebuild needs no template
change and browsers may cache the hashed files for ever.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import orjson

STATIC = resources.files("chainlens") / "web" / "static"
TEMPLATES = resources.files("chainlens") / "web" / "templates"
APP_PREFIX = "/static/app/"
ENTRY = "src/main.ts"


@dataclass(frozen=True)
class PageAssets:
    js: list[str]
    css: list[str]


@cache
def page_assets() -> PageAssets:
    """The entry's script and stylesheets; empty when the front end was never built."""
    manifest = STATIC / "app" / "manifest.json"
    if not manifest.is_file():
        return PageAssets(js=[], css=[])
    entry = orjson.loads(manifest.read_bytes())[ENTRY]
    return PageAssets(
        js=[APP_PREFIX + entry["file"]], css=[APP_PREFIX + c for c in entry.get("css", [])]
    )
