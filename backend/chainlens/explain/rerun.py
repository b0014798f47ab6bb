"""Running a finished run's program again, under a probe, to look at one backward pass
with live tensors (the Run itself holds summaries only).

A probe is what the engine calls back during the re-run (``Execution.probe``):
``at_pass`` before each backward call, ``on_statement`` before each statement and
``on_result`` after each library call. It ends the re-run by raising ``Stop``. Node ids
come out as in the original run because the re-run does everything the run did, with
the same seed; only streaming is left out.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch

from ..engine import Execution
from ..errors import ChainlensError
from ..settings import Settings
from ..tracing.recorder import ExplainStep


class Stop(ChainlensError):
    """Ends a re-run where the probe has what it needs: an engine error, so neither the
    program's ``try`` nor the engine's error report catches it."""

    def __init__(self, value: float | None = None) -> None:
        super().__init__("stop")
        self.value = value


class Probe(Protocol):
    ex: Execution

    def on_statement(self) -> None: ...

    def on_result(self, fn: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> None: ...

    def at_pass(
        self,
        index: int,
        node_ids: set[str],
        roots: list[torch.Tensor],
        gradient: torch.Tensor | None,
    ) -> None: ...


def rerun(
    source: str,
    device: str,
    seed: int,
    settings: Settings,
    probe: Probe,
    dtype: torch.dtype | None = None,
    context: contextlib.AbstractContextManager[Any] | None = None,
    explain: bool | ExplainStep = True,
    saved: bool | None = None,
    finished: Callable[[Execution], None] | None = None,
) -> tuple[Stop | None, str]:
    """Run the program again under ``probe`` (in default dtype ``dtype``, inside
    ``context``): how it stopped (None: it ran to its end), and the program's error if it
    raised. Without ``explain`` the steps get no formulas and, unless ``saved``, nodes
    keep no saved tensors (neither changes node ids); a callable ``explain`` is called
    for each step instead of the explainer (``Recorder.explain``). ``finished`` reads the execution once it has
    stopped, before its tensors are freed."""
    ex = Execution(
        source, device, seed, settings, None, uuid.uuid4().hex[:16], probe, explain, saved
    )
    old = torch.get_default_dtype()
    if dtype is not None:
        torch.set_default_dtype(dtype)
    try:
        with context or contextlib.nullcontext():
            run = ex.execute()
    except Stop as stop:
        if finished is not None:
            finished(ex)
        return stop, ""
    else:
        if finished is not None:
            finished(ex)
    finally:
        ex.close()
        torch.set_default_dtype(old)
    error = run.get("error")
    return None, (f"{error['type']}: {error['message']}" if error else "")
