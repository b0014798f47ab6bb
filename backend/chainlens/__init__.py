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


def __getattr__(name: str) -> Any:
    if name == "Client":
        from .client import Client

        return Client
    raise AttributeError(f"module 'chainlens' has no attribute {name!r}")
