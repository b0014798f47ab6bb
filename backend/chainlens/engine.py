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
import warnings
from collections.abc import Callable
from typing import Any, cast

import torch

from .errors import ChainlensError, LimitExceeded, ProgramRejected, error_context, limit_text
from .explain.custom import check_custom, custom_backward_code
from .explain.diagnostics import Diagnostics
from .explain.explainer import Explainer
from .explain.formulas import verify
from .explain.jacobians import pass_jacobian
from .language.checker import parse
from .language.hooks import ProgramHooks
from .language.interpreter import Interpreter
from .outbox import Emit, Outbox
from .schema import (
    CutEdgeDict,
    Diagnostic,
    ErrorInfo,
    NodeDict,
    PassDict,
    PassJacobianDict,
    Run,
    RunDict,
    StepDict,
    TensorViewDict,
    VariableDict,
)
from .scope import deep_recursion, gc_paused, seed_everything, torch_globals
from .settings import Settings, get_settings
from .text import wire_text
from .tracing.recorder import (
    ExplainStep,
    NodeRecord,
    PassRecord,
    Recorder,
    StepRecord,
    saved_names,
)
from .tracing.summaries import Summarizer, number

#: The first calls of each custom autograd.Function are checked by finite differences.
CUSTOM_CHECKS_PER_CLASS = 3

#: Receives stream events in order, a batch at a time (one list per flush).


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


class _Execution:
    """The state of one run: recorder, interpreter, diagnostics, output."""

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
    ) -> None:
        """``probe``: a re-run's (``explain.rerun``), which sees each statement and each
        call's result. Without ``explain`` the steps get no formulas and, unless ``saved``,
        nodes keep no saved tensors; a callable ``explain`` builds each step's formula
        instead of the explainer."""
        self.source = source
        self.device = device
        self.seed = seed
        self.settings = settings
        self.emit = emit
        self.run_id = run_id
        self.summarize = Summarizer()
        self.outbox = Outbox(emit, self.summarize.flush)
        self.stdout: list[str] = []
        self.stdout_bytes = 0
        self.backward_calls = 0
        self._culprit: str | None = None
        #: Node id -> the pass whose backward freed its saved tensors, for the nodes a
        #: second backward found freed.
        self._freed: dict[str, int | None] = {}
        streaming = emit is not None
        self.explainer = Explainer(gpu_run=device != "cpu")
        keep_saved = bool(explain) if saved is None else saved
        self.recorder = Recorder(
            settings.max_nodes,
            settings.max_recorded_passes,
            on_node=self._emit_node if streaming else None,
            on_step=self._emit_step if streaming else None,
            on_pass=self._emit_pass if streaming else None,
            explain=self.explainer if explain is True else (explain or None),
            keep_saved=settings.saved_max_nodes if keep_saved else 0,
        )
        self.diagnostics = Diagnostics(
            self.recorder,
            (
                lambda d: self.outbox.send(
                    {"type": "diagnostic", "diagnostic": d.model_dump(mode="json")}
                )
            )
            if streaming
            else None,
        )
        self._custom_checked: dict[str, int] = {}
        self.probe = probe
        if probe is not None:
            probe.ex = self
        hooks = ProgramHooks(
            on_backward=self._on_backward,
            on_statement=(
                probe.on_statement
                if probe is not None
                else self.outbox.flush_if_stale
                if streaming
                else None
            ),
            on_leaf_overwritten=self._leaf_overwritten,
            on_nonleaf_grad=lambda t, line: self.diagnostics.nonleaf_grad(
                self.recorder.node_of(t), line
            ),
            on_hook_changed=self.diagnostics.hook_changed_gradient,
            on_custom_apply=self._check_custom,
            on_result=probe.on_result if probe is not None else None,
        )
        self.interp = Interpreter(settings, self.recorder, self._write, hooks, seed)

    def _node_dict(self, rec: NodeRecord) -> NodeDict:
        label = rec.op or rec.grad_fn
        if rec.kind == "leaf":
            label = rec.names[0] if rec.names else "leaf"
        return {
            "id": rec.id,
            "kind": rec.kind,
            "grad_fn": rec.grad_fn,
            "op": rec.op,
            "label": label,
            "names": list(rec.names),
            "line": rec.line,
            "module": rec.module,
            "call": rec.call,
            "inputs": list(rec.inputs),
            "saved": (
                {k: self.summarize(t) for k, v in rec.saved.items() if (t := v.current) is not None}
                if rec.saved
                else None
            ),
            "value": self.summarize(rec.value),
            "grad": self.summarize(rec.grad),
            "freed_by": self._freed.get(rec.id),
        }

    def _emit_node(self, rec: NodeRecord) -> None:
        node = self._node_dict(rec)
        node["grad"] = None
        self.outbox.send({"type": "node", "node": node})

    def _emit_pass(self, p: PassRecord) -> None:
        """Sent at once: a pass beginning means the forward graph is whole, and the page
        draws it then."""
        self.outbox.send(
            {
                "type": "pass",
                "index": p.index,
                "root": p.root,
                "gradient": self.summarize(p.gradient),
                "leaf_values": self._leaf_values(p),
            }
        )
        self.outbox.flush()

    def _leaf_values(self, p: PassRecord) -> dict[str, TensorViewDict]:
        """``Pass.leaf_values``: each stepped leaf's value when the pass's forward ran."""
        return {nid: self.summarize(v) for nid, v in self.recorder.leaf_values(p).items()}

    def _step_dict(self, step: StepRecord) -> StepDict:
        return {
            "node": step.node,
            "grad_output": self.summarize(step.grad_outputs[0] if step.grad_outputs else None),
            "grad_inputs": [self.summarize(g) for g in step.grad_inputs],
            "formula": step.formula,
        }

    def _emit_step(self, p: PassRecord, step: StepRecord) -> None:
        self.outbox.send({"type": "step", "pass": p.index, "step": self._step_dict(step)})

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

    def _jacobian_dict(self, p: PassRecord) -> PassJacobianDict | None:
        """J, v and Jᵀv of a vector root, checked against what each leaf received."""
        if p.jacobian is None:
            return None
        received = {st.node: st.grad_outputs[0] for st in p.steps if st.grad_outputs}
        for leaf in p.jacobian["leaves"]:
            got = received.get(leaf["node"])
            leaf["verified"] = got is not None and verify(
                [torch.tensor(leaf["vjp"], dtype=torch.float64)], [got]
            )
        return p.jacobian

    # ------------------------------------------------------------ events
    def _check_custom(self, apply: Callable, args: list[Any], result: Any) -> None:
        """A program-defined Function just ran: compare its backward with finite differences."""
        nid = self.recorder.node_of(result) if isinstance(result, torch.Tensor) else None
        cls = cast(Any, apply).__self__.__name__  # (a Function's apply, bound to its class)
        if nid is None or self._custom_checked.get(cls, 0) >= CUSTOM_CHECKS_PER_CLASS:
            return
        self._custom_checked[cls] = self._custom_checked.get(cls, 0) + 1
        self.recorder.paused = True
        try:
            check = check_custom(apply, args, result)
        finally:
            self.recorder.paused = False
        if check is None:
            return
        self.explainer.custom_checks[nid] = check
        if not check["ok"]:
            self.diagnostics.custom_backward_mismatch(
                cls, nid, self.interp.line, check["analytic"], check["numeric"]
            )

    def _leaf_overwritten(self, name: str, old: torch.Tensor, line: int | None) -> None:
        self.diagnostics.leaf_overwritten(name, self.recorder.node_of(old), line)

    def _on_backward(self, op: str, fn: Callable, args: tuple, kwargs: dict, target: Any) -> Any:
        self.backward_calls += 1
        if self.backward_calls > self.settings.max_backward_calls:
            raise LimitExceeded(
                "max_backward_calls",
                self.settings.max_backward_calls,
                "the program called backward too many times",
                self.interp.line,
            )
        if op == "backward":
            roots = [target]
            gradient = args[0] if args else kwargs.get("gradient")
        else:
            first = args[0] if args else kwargs.get("tensors", kwargs.get("outputs"))
            roots = list(first) if isinstance(first, (list, tuple)) else [first]
            gidx = 1 if op == "autograd.backward" else 2
            gradient = (
                args[gidx]
                if len(args) > gidx
                else kwargs.get("grad_tensors" if op == "autograd.backward" else "grad_outputs")
            )
            if isinstance(gradient, (list, tuple)):
                gradient = gradient[0] if gradient else None
        roots = [r for r in roots if isinstance(r, torch.Tensor)]
        if not any(r.requires_grad for r in roots):
            return fn(*args, **kwargs)
        p = self.recorder.begin_pass(
            roots, gradient if isinstance(gradient, torch.Tensor) else None
        )
        if self.probe is not None:
            self.probe.at_pass(
                p.index, p.node_ids, roots, gradient if isinstance(gradient, torch.Tensor) else None
            )
        leaves = [(t, nid) for t, nid in self._leaves_in(p)]
        if isinstance(gradient, torch.Tensor) and len(roots) == 1 and roots[0].numel() > 1:
            self.recorder.paused = True
            try:
                p.jacobian = pass_jacobian(roots[0], gradient, leaves)
            finally:
                self.recorder.paused = False
        had_grad = {nid for t, nid in leaves if t.grad is not None and bool(t.grad.any())}
        try:
            result = fn(*args, **kwargs)
        except RuntimeError as e:
            if "modified by an inplace" in str(e):
                self._culprit = next(iter(self._unreadable_saved("modified by an inplace")), None)
            elif "second time" in str(e):
                self._mark_freed(p)
            raise
        finally:
            self.recorder.end_pass()
            self.explainer.end_pass()
        if op != "autograd.grad":
            for _, nid in leaves:
                if nid in had_grad:
                    rec = self.recorder.nodes.get(nid)
                    name = rec.names[0] if rec and rec.names else "the leaf"
                    self.diagnostics.grad_accumulated(name, nid, self.interp.line)
            if kwargs.get("create_graph"):
                self.recorder.after_create_graph(t for t, _ in leaves)
        else:
            self.recorder.record_outputs(result, "autograd.grad")
        return result

    def _leaves_in(self, p: PassRecord) -> list[tuple[torch.Tensor, str]]:
        out = []
        for t in self.recorder.leaf_tensors():
            nid = self.recorder.node_of(t)
            if nid in p.node_ids:
                out.append((t, nid))
        return out

    # --------------------------------------------------------------- run
    def execute(self) -> RunDict:
        """Run the program; the Run in its wire form (plain JSON-ready data)."""
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        tree = parse(self.source, self.settings)
        timings["parse"] = (time.perf_counter() - t0) * 1000
        self.explainer.custom_code = custom_backward_code(tree, self.source)
        if self.emit is not None:
            self.emit([{"type": "run", "id": self.run_id}])
        seed_everything(self.seed, self.device)
        t1 = time.perf_counter()
        with gc_paused():
            error = self._run_program(tree)
            timings["execute"] = (time.perf_counter() - t1) * 1000
            t2 = time.perf_counter()
            self.outbox.flush()
            run = self._assemble(error)
        timings["assemble"] = (time.perf_counter() - t2) * 1000
        timings["total"] = (time.perf_counter() - t0) * 1000
        run["timings_ms"] = timings
        return run

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

    def _run_program(self, tree: ast.Module) -> ErrorInfo | None:
        """The program, then the backward it asks for, inside the state a program may
        change (put back after); its error, if it raised one, as the Run reports it."""
        error: ErrorInfo | None = None
        # torch.device(...) installs a TorchFunctionMode that taxes every op: CPU needs none.
        device_ctx = torch.device(self.device) if self.device != "cpu" else contextlib.nullcontext()
        with deep_recursion(), device_ctx, torch_globals(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.diagnostics.watch_warnings(lambda: self.interp.line)
            torch.set_grad_enabled(True)
            try:
                self.interp.run(tree)
                self._auto_backward(tree)
            except ProgramRejected as e:
                if e.line is None:
                    e.line, e.col = self.interp.line, self.interp.col
                raise
            except LimitExceeded as e:
                error = ErrorInfo(
                    code="limit_exceeded",
                    type="LimitExceeded",
                    message=e.message,
                    line=e.line or self.interp.line,
                    col=e.col,
                )
            except (RecursionError, MemoryError) as e:
                error = self._exhausted(e)
            except ChainlensError:
                raise
            except Exception as e:  # the program raised: report it like Python would
                line, col = error_context(e).where or (self.interp.line, self.interp.col)
                error = ErrorInfo(
                    code="runtime_error",
                    type=type(e).__name__,
                    message=_first_line(e),
                    line=line,
                    col=col,
                )
                self.diagnostics.from_exception(e, line, self._error_node(e))
        return error

    def close(self) -> None:
        """Free the run's tensors and graph now: hooks and the program's own classes
        would otherwise keep them alive for good (see ``language.objects.Link``)."""
        self.recorder.release()
        self.interp.close()

    def _error_node(self, exc: BaseException) -> str | None:
        """The node an exception is about: the leaf changed in place, the node whose saved
        tensor was modified, the backward root, or the tensor the failing call was given
        (the [1, 400] input of an nn.Linear(256, 120))."""
        text = str(exc)
        rec = self.recorder
        target = self.interp.gate.last_inplace
        if "leaf Variable" in text and isinstance(target, torch.Tensor) and target.requires_grad:
            return rec.node_of(target)
        if ("modified by an inplace" in text or "second time" in text) and self._culprit:
            return self._culprit
        if rec.passes and (
            "scalar outputs" in text or "second time" in text or "modified by an inplace" in text
        ):
            return rec.passes[-1].root
        operand = error_context(exc).operand  # what the failing call was given
        if isinstance(operand, torch.Tensor) and (operand.requires_grad or operand.grad_fn):
            return rec.node_of(operand)
        return None

    def _unreadable_saved(self, why: str) -> list[str]:
        """Read the failed pass's saved tensors, nearest the root first: the nodes whose
        read raises with ``why`` (modified in place; freed by an earlier backward)."""
        found = []
        for fn in self.recorder.pass_fns:
            for attr in saved_names(fn):
                try:
                    getattr(fn, attr)
                except RuntimeError as e:
                    if why in str(e) and (nid := fn.metadata.get("chainlens")):
                        found.append(nid)
                        break
        return found

    def _mark_freed(self, failed: PassRecord) -> None:
        """A second backward through one graph: each node whose saved tensors are gone, and
        the pass that freed them (the last one before that went through it). The first,
        nearest the root, is the one backward stopped at."""
        freed = self._unreadable_saved("already been freed")
        earlier = [p for p in self.recorder.passes if p.index < failed.index]
        for nid in freed:
            self._freed[nid] = next((p.index for p in reversed(earlier) if nid in p.node_ids), None)
        self._culprit = freed[0] if freed else None

    def _auto_backward(self, tree: Any) -> None:
        if self.backward_calls or not tree.body:
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
            self._on_backward("backward", value.backward, (), {}, value)
        else:
            self.diagnostics.non_scalar_auto(
                self.recorder.node_of(value), last.lineno, list(value.shape)
            )

    # ---------------------------------------------------------- assemble
    def _assemble(self, error: ErrorInfo | None) -> RunDict:
        s = self.summarize
        rec = self.recorder
        self._check_unreached()
        recorded = [p for p in rec.passes if p.recorded]
        # Views are handed out empty and filled by flush: the step dicts are built as their
        # gradients are registered (every upstream one, which the NaN diagnostic reads).
        steps = [[self._step_dict(st) for st in p.steps] for p in rec.passes]
        for p in recorded:
            for st in p.steps:
                for g in st.grad_outputs[1:]:
                    s(g)
        s.flush()
        if s.nonfinite_seen:
            self.diagnostics.non_finite(recorded, lambda g: Summarizer.finite(s(g)))
        nodes = [self._node_dict(r) for r in rec.nodes.values()]
        passes: list[PassDict] = [
            {
                "index": p.index,
                "root": p.root if p.root in rec.nodes else None,
                "gradient": s(p.gradient),
                "steps": p_steps,
                "line": p.line,
                "loss": None if p.loss is None else number(p.loss),
                "recorded": p.recorded,
                "jacobian": self._jacobian_dict(p),
                "leaf_values": self._leaf_values(p),
            }
            for p, p_steps in zip(rec.passes, steps, strict=True)
        ]
        variables: dict[str, VariableDict] = {}
        for name, value in self.interp.globals.vars.items():
            if isinstance(value, torch.Tensor):
                nid = rec.node_of(value) if (value.requires_grad or value.grad_fn) else None
                grad = value.grad if value.is_leaf or value.retains_grad else None
                variables[name] = {
                    "node": nid if nid in rec.nodes else None,
                    "value": s(value),
                    "grad": s(grad),
                    "is_leaf": value.is_leaf,
                    "requires_grad": value.requires_grad,
                }
        s.flush()
        if rec.dropped_passes:
            self.diagnostics.add(
                Diagnostic(
                    code="passes_truncated",
                    severity="info",
                    message=f"The program ran {len(rec.losses)} backward passes; the first "
                    f"{self.settings.max_recorded_passes - 1} and the last are recorded step by step "
                    f"(limit max_recorded_passes={self.settings.max_recorded_passes}); every pass's loss "
                    "is in the loss curve.",
                    line=None,
                    node=None,
                    hint="Lower the number of iterations to see every pass.",
                )
            )
        return {
            "id": self.run_id,
            "status": "error" if error else "ok",
            "device": self.device,
            "error": error.model_dump() if error else None,
            "stdout": "".join(self.stdout),
            "variables": variables,
            "nodes": nodes,
            "passes": passes,
            "diagnostics": [d.model_dump() for d in self.diagnostics.items],
            "timings_ms": {},
            "cut_edges": [
                CutEdgeDict(source=c.source, op=c.op, line=c.line, reason=c.reason)
                for c in rec.cuts.values()
                if c.source in rec.nodes
            ],
            "losses": [None if v is None else number(v) for v in rec.losses],
        }

    def _check_unreached(self) -> None:
        """Leaves bound to a name that require grad but that no pass reached."""
        rec = self.recorder
        if not rec.passes or not rec.cuts:
            return
        reached = set().union(*(p.node_ids for p in rec.passes))
        cut_sources = {c.source for c in rec.cuts.values()}
        for name, value in self.interp.globals.vars.items():
            if (
                isinstance(value, torch.Tensor)
                and value.is_leaf
                and value.requires_grad
                and value.grad is None
            ):
                nid = rec.node_of(value)
                if nid not in reached and nid in cut_sources:
                    self.diagnostics.unreached_leaf(name, nid, rec.nodes[nid].line)


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
    ex = _Execution(source, concrete, seed, settings, emit, run_id or uuid.uuid4().hex[:16])
    try:
        return ex.execute()
    except LimitExceeded as e:  # a limit checked before running (program size, AST caps)
        raise ProgramRejected(e.message, e.line, e.col, code="limit_exceeded") from None
    finally:
        ex.close()


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
        return Run.model_validate(wire)
