"""chainlens: see what ``loss.backward()`` does.

``chainlens.run(source)`` runs a tutorial-style PyTorch program in chainlens's own
interpreter and returns its Run: the autograd graph, every backward step, the
variables and diagnostics. ``chainlens.Client`` does the same over HTTP.
``chainlens.record()`` (a ``with`` block), ``trace(fn, *args)`` and ``show(loss)``
record the user's own code, in the user's own process, into the same Run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import LimitExceeded, ProgramRejected, RateLimited, ServiceBusy
from .version import __version__

__all__ = [
    "run",
    "record",
    "trace",
    "show",
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
    import torch

    from .client import Client
    from .recording import Recording
    from .schema import Run


def run(source: str, device: str = "cpu", seed: int = 0, **kwargs: Any) -> Run:
    """Run a program in-process with the same engine and limits as the server."""
    from .engine import run as _run

    return _run(source, device=device, seed=seed, **kwargs)


def record(
    *, max_nodes: int | None = None, max_recorded_passes: int | None = None, explain: bool = True
) -> Recording:
    """``with chainlens.record() as rec: loss = model(x); loss.backward()`` records the
    block's own code (any import, any model) in this process; ``rec.run`` is its Run.
    This is not sandboxed: it is your code, running as it would without chainlens."""
    from .recording import record as _record

    return _record(max_nodes=max_nodes, max_recorded_passes=max_recorded_passes, explain=explain)


def trace(fn: Any, *args: Any, **kwargs: Any) -> Run:
    """``fn(*args, **kwargs)`` recorded in this process, with backward from the scalar it
    returns when it ran none itself (``chainlens.trace(lambda: loss_fn(model(x), y))``)."""
    from .recording import trace as _trace

    return _trace(fn, *args, **kwargs)


def show(loss: torch.Tensor, **kwargs: Any) -> Run:
    """``loss.backward()`` recorded and displayed (inline in a notebook); the Run."""
    from .recording import show as _show

    return _show(loss, **kwargs)


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
