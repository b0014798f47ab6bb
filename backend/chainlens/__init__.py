"""chainlens: see what ``loss.backward()`` does.

``chainlens.run(source)`` runs a tutorial-style PyTorch program in chainlens's own
interpreter and returns its Run: the autograd graph, every backward step, the
variables and diagnostics. ``chainlens.Client`` does the same over HTTP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import LimitExceeded, ProgramRejected, RateLimited, ServiceBusy

__version__ = "0.1.0"
__all__ = [
    "run",
    "open",
    "Run",
    "Client",
    "ProgramRejected",
    "LimitExceeded",
    "RateLimited",
    "ServiceBusy",
    "__version__",
]

if TYPE_CHECKING:
    from .client import Client
    from .schema import Run


def run(source: str, device: str = "cpu", seed: int = 0, **kwargs: Any) -> Run:
    """Run a program in-process with the same engine and limits as the server."""
    from .engine import run as _run

    return _run(source, device=device, seed=seed, **kwargs)


def open(run: Run, server: str = "http://127.0.0.1:8000", browser: bool = True) -> str:
    """Send ``run`` (made here, by ``chainlens.run``) to a chainlens server and open its
    page on it; the page's address. ``browser=False`` only returns the address."""
    import webbrowser

    from .client import Client

    with Client(server) as client:
        url = server.rstrip("/") + client.import_run(run).url
    if browser:
        webbrowser.open(url)
    return url


def __getattr__(name: str) -> Any:
    if name == "Client":
        from .client import Client

        return Client
    if name == "Run":
        from .schema import Run

        return Run
    raise AttributeError(f"module 'chainlens' has no attribute {name!r}")
