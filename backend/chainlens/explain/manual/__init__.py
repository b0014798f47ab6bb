"""Manual-backprop code (``GET /runs/{id}/manual.py``): one backward pass of a run
rewritten as a standalone numpy file, forward and backward, one chain-rule line per
autograd node. ``tape`` sees the calls, ``capture`` takes the pass from a re-run,
``ops`` and ``helpers`` are the numpy, ``writer`` lays out the file."""

from __future__ import annotations

from ...engine import resolve_device
from ...settings import Settings
from .capture import ManualUnavailable, capture_pass
from .writer import write_manual

__all__ = ["ManualUnavailable", "manual_code"]


def manual_code(
    source: str, device: str, seed: int, settings: Settings, run_id: str, pass_index: int
) -> str:
    """The file's text. Raises ManualUnavailable when the pass cannot be written out."""
    cap = capture_pass(source, resolve_device(device), seed, settings, pass_index)
    return write_manual(cap, source, run_id)
