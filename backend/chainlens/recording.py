"""``chainlens.record``, ``trace`` and ``show``: the user's own code, recorded in the
user's own process.

The engine's recorder, explainer, diagnostics, backward calls and assembler, wired as
``engine.Execution`` wires them, but fed by ``tracing.observer.CallObserver`` (torch's
own dispatch) instead of chainlens's interpreter. No sandbox is involved and no limit
but the Run's size applies: any import, any model, on CPU or CUDA. It is the user's
code on the user's machine, run exactly as it would run without chainlens (the same
random numbers, the same gradients); chainlens only watches.

Process-wide state (the torch-function mode, the module hooks, ``Function.apply``, the
warning filters) is set in ``__enter__`` and put back in ``__exit__``.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import inspect
import io
import itertools
import linecache
import sys
import textwrap
import time
import types
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import torch

from .assembly import Assembler
from .backward import BackwardCalls
from .engine import program_error
from .errors import ChainlensError
from .explain.custom import CustomChecks, custom_backward_code
from .explain.diagnostics import Diagnostics
from .explain.explainer import Explainer
from .schema import ErrorInfo, Run
from .scope import gc_paused
from .settings import Settings, get_settings
from .text import wire_text
from .tracing.observer import CallObserver, user_frame
from .tracing.recorder import Recorder
from .tracing.summaries import Summarizer

#: A recording's backward calls are not limited (its code is the user's own); past
#: ``max_recorded_passes`` their passes cost only a loss each.
_UNLIMITED_BACKWARDS = sys.maxsize


class Recording:
    """``with chainlens.record() as rec: ...``; then ``rec.run`` is the Run.

    Every autograd node the block's code makes (in any file it calls) and every step of
    every backward it runs, recorded with the server's summaries, chain-rule formulas
    and diagnostics. An exception leaves the block as it came (chainlens swallows
    nothing) and the Run reports it, as a program's Run would."""

    def __init__(
        self,
        *,
        max_nodes: int | None = None,
        max_recorded_passes: int | None = None,
        explain: bool = True,
        settings: Settings | None = None,
        variables: Callable[[], dict[str, Any]] | None = None,
        program_file: str | None = None,
    ) -> None:
        """``max_nodes`` (default 20,000) bounds the graph kept; ``max_recorded_passes``
        (default 20) the backward passes kept whole (the first ones and the last);
        ``explain=False`` leaves out the chain-rule formulas (faster on big models).
        ``variables``: the names whose tensors are the Run's variables at the end (by
        default the local names where the ``with`` block is); ``program_file``: the file
        a saved page shows (by default the one the ``with`` block is in)."""
        base = settings or get_settings()
        self.settings = base.model_copy(
            update={
                "max_nodes": max_nodes or base.max_nodes,
                "max_recorded_passes": max_recorded_passes or base.max_recorded_passes,
                "max_backward_calls": _UNLIMITED_BACKWARDS,
            }
        )
        self.explain = explain
        self.variables = variables
        #: The file whose text a saved page shows (by default where the ``with`` is).
        self.program_file = program_file
        self.run: Run | None = None
        self._stack: contextlib.ExitStack | None = None

    # ---------------------------------------------------------------- wiring
    def _wire(self) -> None:
        settings = self.settings
        self.summarize = Summarizer()
        self.explainer = Explainer(gpu_run=torch.get_default_device().type != "cpu")
        self.recorder = Recorder(
            settings.max_nodes,
            settings.max_recorded_passes,
            explain=self.explainer if self.explain else None,
            keep_saved=settings.saved_max_nodes if self.explain else 0,
            hook_children=False,
        )
        self.diagnostics = Diagnostics(self.recorder, None)
        self.backward = BackwardCalls(
            settings,
            self.recorder,
            self.explainer,
            self.diagnostics,
            lambda: self.recorder.line,
            lambda: self.observer.last_inplace,
        )
        self.observer = CallObserver(
            self.recorder,
            self.backward,
            lambda t, line: self.diagnostics.nonleaf_grad(self.recorder.node_of(t), line),
        )
        self.custom = CustomChecks(
            self.recorder, self.explainer, self.diagnostics, lambda: self.recorder.line
        )
        self.assembler = Assembler(
            self.recorder, self.summarize, self.diagnostics, self.backward.freed
        )

    def __enter__(self) -> Recording:
        self._wire()
        self._frame = sys._getframe(1)
        # (the file a saved page shows: the user's, also when trace() or show() made this)
        where = user_frame(self._frame)
        self._user_file = (where or self._frame).f_code.co_filename
        self._began = time.perf_counter()
        with contextlib.ExitStack() as stack:  # (undone at once if any part fails)
            stack.enter_context(warnings.catch_warnings())
            self._printed = _Tee(sys.stdout, self.settings.max_stdout_bytes)
            stack.enter_context(contextlib.redirect_stdout(self._printed))
            self.diagnostics.watch_warnings(
                lambda: self.recorder.line, forward=warnings.showwarning
            )
            stack.enter_context(self._custom_functions())
            stack.callback(self.observer.remove_module_hooks)
            self.observer.install_module_hooks()
            stack.enter_context(self.observer)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        assert self._stack is not None
        self._stack.close()
        error = self._error(exc, tb) if exc is not None else None
        scope = self.variables() if self.variables is not None else self._frame.f_locals
        program = _program_of(self.program_file or self._user_file)
        del self._frame
        names = {k: v for k, v in scope.items() if isinstance(v, torch.Tensor)}
        self.run = self._assemble(error, names)
        self.run._program = program
        return None  # (an exception goes on as it came)

    @contextlib.contextmanager
    def _custom_functions(self) -> Any:
        """Each ``autograd.Function`` the user's code defines, checked by finite
        differences as the server checks a program's, its backward's source kept for
        the chain-rule card: ``Function.apply`` wrapped, and put back after."""
        function = torch.autograd.Function
        original = function.__dict__["apply"]
        apply = original.__func__
        recording = self

        def checked_apply(cls: type, *args: Any, **kwargs: Any) -> Any:
            observer = recording.observer
            if recording.recorder.paused or cls.__module__.startswith("torch."):
                return apply(cls, *args, **kwargs)
            observer.locate()
            observer.opaque += 1  # (its forward runs with grad off: no cuts, no nodes)
            try:
                result = apply(cls, *args, **kwargs)
            finally:
                observer.opaque -= 1
            with observer.aside():
                recording.recorder.record_outputs(result, cls.__name__)
                recording.explainer.custom_code.setdefault(cls.__name__, _backward_source(cls))
                recording.custom(types.MethodType(apply, cls), list(args), result)
            return result

        function.apply = classmethod(checked_apply)  # type: ignore[method-assign,assignment]  # (restored below)
        try:
            yield
        finally:
            function.apply = original  # type: ignore[method-assign]

    # ---------------------------------------------------------------- the Run
    def _error(self, exc: BaseException, tb: Any) -> ErrorInfo:
        """The exception the block raised, as a Run reports a program's: at the innermost
        line of the user's code it passed through (column counted from 1)."""
        line, col = self.recorder.line, None
        while tb is not None:
            code = tb.tb_frame.f_code
            if not self.observer.is_library(code):
                self.observer.name_locals(tb.tb_frame)  # (the names where it failed)
                where = next(itertools.islice(code.co_positions(), tb.tb_lasti // 2, None))
                line, col = where[0], None if where[2] is None else where[2] + 1
            tb = tb.tb_next
        if isinstance(exc, ChainlensError):  # (a limit of the recording itself)
            return ErrorInfo(
                code="limit_exceeded", type=type(exc).__name__, message=exc.message, line=line
            )
        return program_error(exc, line, col, self.diagnostics, self.backward)

    def _assemble(self, error: ErrorInfo | None, names: dict[str, Any]) -> Run:
        began = time.perf_counter()
        with gc_paused():
            for name, value in names.items():
                self.recorder.bind_name(name, value)
            wire = self.assembler.run(
                uuid.uuid4().hex[:16],
                _device_of(self.recorder),
                error,
                "".join(self._printed.kept),
                names,
                self.settings.max_recorded_passes,
            )
            self.recorder.release()
            now = time.perf_counter()
            wire["timings_ms"] = {
                "execute": (began - self._began) * 1000,
                "assemble": (now - began) * 1000,
                "total": (now - self._began) * 1000,
            }
            return Run.model_validate(wire)


class _Tee(io.TextIOBase):
    """What the code prints, shown where it always goes and kept for the Run's
    ``stdout`` (up to ``max_stdout_bytes``, as a program's)."""

    def __init__(self, out: Any, limit: int) -> None:
        self.out = out
        self.room = limit
        self.kept: list[str] = []

    def write(self, text: str) -> int:
        if self.room > 0:
            kept = wire_text(text)[: self.room]
            self.kept.append(kept)
            self.room -= len(kept.encode("utf-8"))
        return self.out.write(text)

    def flush(self) -> None:
        self.out.flush()

    # (what code asks of sys.stdout, answered by the stream it always writes to)
    @property
    def encoding(self) -> str:  # type: ignore[override]  # (TextIOBase's is read-only)
        return getattr(self.out, "encoding", None) or "utf-8"

    def isatty(self) -> bool:
        return bool(self.out.isatty())

    def fileno(self) -> int:
        return int(self.out.fileno())


def _program_of(file: str) -> tuple[str | None, str | None]:
    """The text of the file a recording was made in, and its name: what a saved page
    shows in its editor (a notebook cell's text is kept by ``linecache`` too)."""
    lines = linecache.getlines(file)
    return ("".join(lines) if lines else None), file


def _device_of(recorder: Recorder) -> str:
    for rec in recorder.nodes.values():
        if rec.value is not None:
            device = rec.value.device
            return "cpu" if device.type == "cpu" else f"{device.type}:{device.index or 0}"
    return "cpu"


def _backward_source(cls: type) -> str:
    """Its ``backward`` as the page shows a program's (``custom_backward_code``)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # (defined where no source is kept)
        return ""
    return custom_backward_code(ast.parse(source), source).get(cls.__name__, "")


def record(
    *, max_nodes: int | None = None, max_recorded_passes: int | None = None, explain: bool = True
) -> Recording:
    """``with chainlens.record() as rec: loss = model(x); loss.backward()``: the block's
    autograd graph and backward passes, recorded in this process; ``rec.run`` after."""
    return Recording(max_nodes=max_nodes, max_recorded_passes=max_recorded_passes, explain=explain)


def trace(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Run:
    """``fn(*args, **kwargs)`` recorded; when it returns a scalar tensor that requires
    grad and ran no backward itself, backward from it is recorded too (a model's loss)."""
    with Recording() as rec:
        out = fn(*args, **kwargs)
        if (
            not rec.backward.calls
            and isinstance(out, torch.Tensor)
            and out.requires_grad
            and out.numel() == 1
        ):
            out.backward()
    assert rec.run is not None
    return rec.run


def show(loss: torch.Tensor, **kwargs: Any) -> Run:
    """Run ``loss.backward()`` recorded, and display the Run (inline in a notebook). The
    forward ran before recording began: the graph and every gradient are there, but the
    values of the nodes between the leaves and ``loss`` are not (record the forward too,
    with ``chainlens.record()``, to see them)."""
    run = trace(functools.partial(loss.backward, **kwargs))
    from .notebook import display

    display(run)
    return run
