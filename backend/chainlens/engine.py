"""``chainlens.run``: run one program and return its Run.

Parse and check (``language.checker``), interpret under the recorder
(``language.interpreter``, ``tracing.recorder``), then assemble the Run with
summaries and diagnostics. The same function runs in-process and inside the
sandbox's worker processes; ``emit`` receives stream events as they happen.
"""

from __future__ import annotations

import ast
import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import torch

from .assembly import Assembler
from .backward import BackwardCalls
from .errors import ChainlensError, LimitExceeded, ProgramRejected, error_context, limit_text
from .explain.custom import CustomChecks, custom_backward_code
from .explain.diagnostics import Diagnostics
from .explain.explainer import Explainer
from .language.checker import parse
from .language.hooks import ProgramHooks
from .language.interpreter import Interpreter
from .outbox import Emit, Outbox
from .schema import (
    Diagnostic,
    ErrorInfo,
    Run,
    RunDict,
)
from .scope import RunScope, gc_paused
from .settings import Settings, get_settings
from .text import wire_text
from .tracing.recorder import (
    ExplainStep,
    NodeRecord,
    PassRecord,
    Recorder,
    StepRecord,
)
from .tracing.summaries import Summarizer


def resolve_device(device: str) -> str:
    """``cpu`` / ``cuda`` / ``auto`` -> a concrete device, or ProgramRejected."""
    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ProgramRejected(
                "device 'cuda' is not available on this server "
                "(it has no CUDA GPU); use 'cpu' or 'auto'",
                code="device_unavailable",
            )
        return "cuda:0" if device == "cuda" else device
    if device != "cpu":
        raise ProgramRejected(f"unknown device {device!r}", code="device_unavailable")
    return "cpu"


def available_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return devices


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, KeyError) and exc.args:
        text = repr(exc.args[0])
    return wire_text(text.splitlines()[0]) if text else type(exc).__name__


def program_error(
    exc: BaseException,
    line: int | None,
    col: int | None,
    diagnostics: Diagnostics,
    backward: BackwardCalls,
) -> ErrorInfo:
    """An exception the program's own code raised, as its Run reports it (Python's type
    and first line, where it was), with the diagnostic that explains it if there is one."""
    diagnostics.from_exception(exc, line, backward.error_node(exc))
    return ErrorInfo(
        code="runtime_error", type=type(exc).__name__, message=_first_line(exc), line=line, col=col
    )


class Execution:
    """One run, as a pipeline: its collaborators made and wired through their
    constructors here, then ``execute``'s stages (parse, execute, assemble) inside one
    ``RunScope``."""

    def __init__(
        self,
        source: str,
        device: str,
        seed: int,
        settings: Settings,
        emit: Emit | None,
        run_id: str,
        probe: Any = None,
        explain: bool | ExplainStep | None = True,
        saved: bool | None = None,
        skip_passes: bool = False,
    ) -> None:
        """``probe``: a re-run's (``explain.rerun``), which sees each statement, each
        call's result and each pass. Without ``explain`` the steps get no formulas and,
        unless ``saved``, nodes keep no saved tensors; a callable ``explain`` builds each
        step's formula instead of the explainer. ``skip_passes``: passes past those kept
        in full go unrecorded while a loop says another will follow
        (``Recorder.begin_pass``)."""
        self.source = source
        self.device = device
        self.seed = seed
        self.settings = settings
        self.emit = emit
        self.run_id = run_id
        self.stdout: list[str] = []
        self.stdout_bytes = 0
        streaming = emit is not None
        summarize = Summarizer()
        self.outbox = Outbox(emit, summarize.flush)
        self.explainer = Explainer(gpu_run=device != "cpu")
        keep_saved = bool(explain) if saved is None else saved
        self.recorder = Recorder(
            settings.max_nodes,
            settings.max_recorded_passes,
            on_node=self._send_node if streaming else None,
            on_step=self._send_step if streaming else None,
            on_pass=self._send_pass if streaming else None,
            explain=self.explainer if explain is True else (explain or None),
            keep_saved=settings.saved_max_nodes if keep_saved else 0,
            more_passes=(lambda: self.interp.more_iterations()) if skip_passes else None,
        )
        self.diagnostics = Diagnostics(self.recorder, self._send_diagnostic if streaming else None)
        line = self._line
        self.backward = BackwardCalls(
            settings,
            self.recorder,
            self.explainer,
            self.diagnostics,
            line,
            lambda: self.interp.gate.last_inplace,
            probe,
        )
        self.assembler = Assembler(self.recorder, summarize, self.diagnostics, self.backward.freed)
        self.probe = probe
        if probe is not None:
            probe.ex = self
        hooks = ProgramHooks(
            on_backward=self.backward,
            on_statement=(
                probe.on_statement
                if probe is not None
                else self.outbox.flush_if_stale
                if streaming
                else None
            ),
            on_leaf_overwritten=lambda name, old, line: self.diagnostics.leaf_overwritten(
                name, self.recorder.node_of(old), line
            ),
            on_nonleaf_grad=lambda t, line: self.diagnostics.nonleaf_grad(
                self.recorder.node_of(t), line
            ),
            on_hook_changed=self.diagnostics.hook_changed_gradient,
            on_custom_apply=CustomChecks(self.recorder, self.explainer, self.diagnostics, line),
            on_result=probe.on_result if probe is not None else None,
        )
        self.interp = Interpreter(settings, self.recorder, self._write, hooks, seed)

    def _line(self) -> int | None:
        """The program's line now."""
        return self.interp.line

    # ------------------------------------------------------------ the stream
    def _send_node(self, rec: NodeRecord) -> None:
        node = self.assembler.node(rec)
        node["grad"] = None
        self.outbox.send({"type": "node", "node": node})

    def _send_pass(self, p: PassRecord) -> None:
        """Sent at once: a pass beginning means the forward graph is whole, and the page
        draws it then."""
        self.outbox.send(
            {
                "type": "pass",
                "index": p.index,
                "root": p.root,
                "gradient": self.assembler.summarize(p.gradient),
                "leaf_values": self.assembler.leaf_values(p),
            }
        )
        self.outbox.flush()

    def _send_step(self, p: PassRecord, step: StepRecord) -> None:
        self.outbox.send({"type": "step", "pass": p.index, "step": self.assembler.step(step)})

    def _send_diagnostic(self, d: Diagnostic) -> None:
        self.outbox.send({"type": "diagnostic", "diagnostic": d.model_dump(mode="json")})

    def _write(self, text: str) -> None:
        text = wire_text(text)
        self.stdout_bytes += len(text.encode("utf-8"))
        if self.stdout_bytes > self.settings.max_stdout_bytes:
            raise LimitExceeded(
                "max_stdout_bytes",
                self.settings.max_stdout_bytes,
                "the program printed too much",
                self.interp.line,
            )
        self.stdout.append(text)
        if self.emit is not None:
            self.outbox.send({"type": "stdout", "text": text})
            self.outbox.flush()

    # ------------------------------------------------------------ the stages
    def execute(self) -> RunDict:
        """Run the program; the Run in its wire form (plain JSON-ready data). The stages,
        each timed under its name: parse, execute, assemble."""
        timings: dict[str, float] = {}
        start = time.perf_counter()

        @contextlib.contextmanager
        def stage(name: str) -> Iterator[None]:
            began = time.perf_counter()
            yield
            timings[name] = (time.perf_counter() - began) * 1000

        with RunScope(self.device, self.seed) as scope:
            with stage("parse"):
                tree = parse(self.source, self.settings)
                self.explainer.custom_code = custom_backward_code(tree, self.source)
            if self.emit is not None:
                self.emit([{"type": "run", "id": self.run_id}])
            with stage("execute"), scope.program():
                error = self._run_program(tree)
            with stage("assemble"):
                self.outbox.flush()
                run = self.assembler.run(
                    self.run_id,
                    self.device,
                    error,
                    "".join(self.stdout),
                    self.interp.globals.vars,
                    self.settings.max_recorded_passes,
                )
        timings["total"] = (time.perf_counter() - start) * 1000
        run["timings_ms"] = timings
        return run

    def _run_program(self, tree: ast.Module) -> ErrorInfo | None:
        """The program, then the backward it asks for (inside ``RunScope.program``); its
        error, if it raised one, as the Run reports it."""
        self.diagnostics.watch_warnings(self._line)
        try:
            self.interp.run(tree)
            self._auto_backward(tree)
        except ProgramRejected as e:
            if e.line is None:
                e.line, e.col = self.interp.line, self.interp.col
            raise
        except LimitExceeded as e:
            return ErrorInfo(
                code="limit_exceeded",
                type="LimitExceeded",
                message=e.message,
                line=e.line or self.interp.line,
                col=e.col,
            )
        except (RecursionError, MemoryError) as e:
            return self._exhausted(e)
        except ChainlensError:
            raise
        except Exception as e:  # the program raised: report it like Python would
            line, col = error_context(e).where or (self.interp.line, self.interp.col)
            return program_error(e, line, col, self.diagnostics, self.backward)
        return None

    def _exhausted(self, e: RecursionError | MemoryError) -> ErrorInfo:
        """Python's own limits, reported as the settings that set them."""
        name, value, why = (
            (
                "max_recursion_depth",
                self.settings.max_recursion_depth,
                "the program nests too deeply",
            )
            if isinstance(e, RecursionError)
            else ("memory_limit_mb", self.settings.memory_limit_mb, "the program ran out of memory")
        )
        return ErrorInfo(
            code="limit_exceeded",
            type=type(e).__name__,
            message=limit_text(name, value, f"exceeded: {why}"),
            line=self.interp.line,
        )

    def _auto_backward(self, tree: Any) -> None:
        if self.backward.calls or not tree.body:
            return
        last = tree.body[-1]
        value = self.interp.last_value
        if not isinstance(last, (ast.Expr, ast.Assign, ast.AnnAssign)) or not isinstance(
            value, torch.Tensor
        ):
            return
        if not value.requires_grad:
            return
        self.interp.line = self.recorder.line = self.interp.gate.line = last.end_lineno
        if value.numel() == 1 and value.dim() == 0:
            self.backward("backward", value.backward, (), {}, value)
        else:
            self.diagnostics.non_scalar_auto(
                self.recorder.node_of(value), last.lineno, list(value.shape)
            )

    def close(self) -> None:
        """Free the run's tensors and graph now: hooks and the program's own classes
        would otherwise keep them alive for good (see ``language.objects.Link``)."""
        self.recorder.release()
        self.interp.close()


def run_wire(
    source: str,
    device: str = "cpu",
    seed: int = 0,
    *,
    settings: Settings | None = None,
    emit: Emit | None = None,
    run_id: str | None = None,
) -> RunDict:
    """The Run as plain data, ready for orjson: what the server sends. Raises
    ProgramRejected for a program that is not run."""
    settings = settings or get_settings()
    concrete = resolve_device(device)
    run_id = run_id or uuid.uuid4().hex[:16]
    ex = Execution(source, concrete, seed, settings, emit, run_id, skip_passes=True)
    try:
        run = ex.execute()
        again = ex.recorder.last_pass_skipped
    except LimitExceeded as e:  # a limit checked before running (program size, AST caps)
        raise ProgramRejected(e.message, e.line, e.col, code="limit_exceeded") from None
    finally:
        ex.close()
    if again and run["timings_ms"]["total"] < settings.cpu_limit_s * 1000 / 4:
        # A loop's last backward was expected to come again and did not (it was
        # conditional, or a later turn raised): the same run, deterministic with its seed,
        # once more recording the latest pass as it comes, unstreamed (what was
        # streamed is the same up to there). A run that took a quarter of its CPU
        # allowance already keeps its passes as they are, the last one unrecorded.
        ex = Execution(source, concrete, seed, settings, None, run_id)
        try:
            run = ex.execute()
        finally:
            ex.close()
    return run


def run(
    source: str,
    device: str = "cpu",
    seed: int = 0,
    *,
    settings: Settings | None = None,
    emit: Emit | None = None,
    run_id: str | None = None,
) -> Run:
    """Run ``source`` and return its Run. Raises ProgramRejected for a program that is not
    run (syntax, forbidden construct, unavailable device); a program that fails is a Run
    with ``status == "error"``."""
    wire = run_wire(source, device, seed, settings=settings, emit=emit, run_id=run_id)
    with gc_paused():  # (validating ~10^5 small objects)
        result = Run.model_validate(wire)
    result._program = (source, None)
    return result
