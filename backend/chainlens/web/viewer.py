"""The standalone viewer: one HTML file holding the page's viewer and one Run.

The viewer is the page itself, built a second time as a single script and stylesheet
with everything inside (``frontend/vite.viewer.config.ts``: the layout worker, KaTeX's
fonts). Written into the page's template with the Run beside it, it needs no server
and no network: ``Run.save("run.html")`` opens from ``file://``, a notebook shows it
inline (in an iframe of its own, so several runs in one notebook never meet), and the
page's "HTML" button downloads the same file from the server. The program runs
nowhere here: the file shows what was recorded.
"""

from __future__ import annotations

import html
import re
from functools import cache

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from ..version import __version__
from .assets import STATIC, TEMPLATES

#: How tall a notebook shows a run: the page's graph, stepper and card without scrolling.
NOTEBOOK_HEIGHT_PX = 780


@cache
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape())


def _inlined(text: str, element: str) -> str:
    r"""Code written inside a ``<script>`` or ``<style>``: the HTML parser ends one at
    ``</script`` (``</style``) wherever it stands, so that becomes ``<\/script``, which
    means the same in a JavaScript string, template or regular expression. (``<!--``
    would change how the parser reads the rest; the build has none, and a build that
    had one is refused rather than written out broken.)"""
    if "<!--" in text:
        raise ValueError(f"the viewer's {element} contains '<!--' and cannot be inlined")
    return re.sub(f"</({element})", r"<\\/\1", text, flags=re.IGNORECASE)


@cache
def _viewer_assets() -> tuple[str, str]:
    """The viewer's script and stylesheet (read once)."""
    folder = STATIC / "viewer"
    js = (folder / "viewer.js").read_text(encoding="utf-8")
    css = (folder / "viewer.css").read_text(encoding="utf-8")
    return _inlined(js, "script"), _inlined(css, "style")


def standalone_html(run_json: bytes, source: str | None = None, file: str | None = None) -> str:
    """The Run (its JSON, as the API sends it) in one HTML file with the viewer.
    ``source``: the program it ran, shown in the editor with its lines marked; ``file``:
    the file the program was, named when the source is not kept."""
    js, css = _viewer_assets()
    # JSON, escaped so that nothing in it (a label like "</script><img onerror=...>")
    # can leave the element: every "<" as \u003c, which JSON reads back as "<".
    payload = b'{"run":' + run_json + b',"source":' + orjson.dumps(source)
    payload += b',"file":' + orjson.dumps(file) + b"}"
    safe = payload.decode("utf-8").replace("<", "\\u003c")
    viewer = {"js": Markup(js), "css": Markup(css), "payload": Markup(safe)}
    return _environment().get_template("index.html").render(version=__version__, viewer=viewer)


def notebook_html(page: str) -> str:
    """A standalone page as a notebook output: in an iframe of its own (``srcdoc``), so
    its script, styles and ids never meet the notebook's or another run's."""
    return (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" '
        f'style="width:100%;height:{NOTEBOOK_HEIGHT_PX}px;border:1px solid #ccc" '
        'title="chainlens run"></iframe>'
    )
