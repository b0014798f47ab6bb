"""What PyTorch did: the autograd nodes a program created and every step of every backward.

Nodes are labelled as the interpreter's call gate (and nn.Module forward hooks)
see their outputs appear; each grad_fn carries its id in ``grad_fn.metadata``,
which lives on the C++ node, so no Python reference keeps a graph alive.
Leaves are keyed by tensor, because AccumulateGrad objects are recreated once a
graph is freed. Backward is observed with node hooks that only store references;
summaries are computed after the run.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import torch

from ..errors import LimitExceeded
from ..schema import CutReason, FormulaDict, PassJacobianDict


#: AccumulateGrad's class: checking ``type(fn) is`` is far cheaper than
#: ``hasattr(fn, "variable")``, which raises inside for every other node.
def _accumulate_class() -> type:
    fn = torch.ones(1, requires_grad=True).sum().grad_fn
    assert fn is not None
    return type(fn.next_functions[0][0])


ACCUMULATE = _accumulate_class()


def metadata(fn: Any) -> dict[str, Any]:
    """A grad_fn's metadata dict (torch's ``Node`` declares ``metadata`` a method; on a
    grad_fn it is the dict itself)."""
    return fn.metadata


#: Each recorder writes its node ids under a key of its own in ``grad_fn.metadata``: a
#: graph outlives an in-process recording (``chainlens.record``), and a later recording
#: of the same graph must not read the earlier one's ids as its own.
_SERIAL = itertools.count()
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


@functools.cache
def op_from_grad_fn(name: str) -> str:
    """``AddmmBackward0`` -> ``addmm``; ``MyReLUBackward`` -> ``MyReLU`` (cached: two
    regular expressions per node were a tenth of labelling a node)."""
    base = re.sub(r"Backward\d*$", "", name)
    if name.endswith("Backward") and not name[-1].isdigit():
        return base
    return _CAMEL.sub("_", base).lower()


#: Builds a step's formula from its node, id, upstream and downstream gradients (in
#: backward's hook, where the node's saved tensors can still be read).
ExplainStep = Callable[[Any, str, tuple, tuple], FormulaDict | None]


@dataclass(slots=True)
class NodeRecord:
    id: str
    kind: Literal["leaf", "op"]
    grad_fn: str
    op: str | None
    line: int | None
    module: str | None
    inputs: list[str | None]
    value: torch.Tensor | None
    seq: int
    #: The file ``line`` is in, for code recorded in its own process (None: the program).
    file: str | None = None
    names: list[str] = field(default_factory=list)
    grad: torch.Tensor | None = None
    call: int | None = None
    saved: dict[str, SavedTensor] | None = None
    #: A leaf's later values: (the pass whose forward first saw it, the value then), for
    #: each pass whose forward found it changed (an optimizer stepped it) since ``value``.
    later: list[tuple[int, torch.Tensor]] | None = None
    #: The last pass whose forward used this leaf (-1: none yet).
    seen: int = -1

    def value_at(self, index: int) -> torch.Tensor | None:
        """A leaf's value when pass ``index``'s forward ran."""
        value = self.value
        for first, v in self.later or ():
            if first > index:
                break
            value = v
        return value


@dataclass(slots=True)
class StepRecord:
    node: str
    grad_outputs: tuple[torch.Tensor | None, ...]
    grad_inputs: tuple[torch.Tensor | None, ...]
    formula: FormulaDict | None = None


@dataclass(slots=True)
class PassRecord:
    index: int
    root: str | None
    gradient: torch.Tensor | None
    line: int | None
    loss: float | None
    steps: list[StepRecord] = field(default_factory=list)
    recorded: bool = True
    node_ids: set[str] = field(default_factory=set)
    jacobian: PassJacobianDict | None = None


@dataclass(slots=True)
class CutRecord:
    source: str
    op: str
    line: int | None
    reason: CutReason


def _tensors_in(obj: Any) -> Iterable[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            if isinstance(item, torch.Tensor):
                yield item


def graph_of(roots: Iterable[torch.Tensor]) -> Iterator[Any]:
    """Every autograd node behind ``roots`` (AccumulateGrad included), once each."""
    stack = [r.grad_fn for r in roots if r.grad_fn is not None]
    seen: set[int] = set()
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        yield fn
        stack.extend(child for child, _ in fn.next_functions if child is not None)


class _Relay:
    """What the node hooks hold instead of the recorder. A hook holds what it calls, and
    torch keeps the hooks on nodes, edges the garbage collector cannot see: a hook holding
    the recorder, which holds tensors whose graph holds the hook, is a cycle no collection
    frees. ``Recorder.release`` cuts this one link instead of removing the hooks one by
    one (1.4 ms for an RNN's 3000 nodes)."""

    __slots__ = ("recorder",)

    def __init__(self, recorder: Recorder) -> None:
        self.recorder: Recorder | None = recorder


class Recorder:
    """Collects nodes, cut edges and passes for one run."""

    def __init__(
        self,
        max_nodes: int,
        max_passes: int,
        on_node: Callable[[NodeRecord], None] | None = None,
        on_step: Callable[[PassRecord, StepRecord], None] | None = None,
        on_pass: Callable[[PassRecord], None] | None = None,
        explain: ExplainStep | None = None,
        keep_saved: int = 0,
        hook_children: bool = True,
        more_passes: Callable[[], bool] | None = None,
    ) -> None:
        """``hook_children``: hook the children of a library container (``nn.Sequential``)
        that a module's forward begins, because nothing else sees them called; off where
        every module's forward is seen already (``chainlens.record``'s global hooks).
        ``more_passes``: whether another backward will most likely follow the one
        beginning (the interpreter's loops say so); see ``begin_pass``."""
        serial = next(_SERIAL)
        self.key = f"chainlens{serial}"
        self._hooked_key = f"chainlens{serial}_hooked"
        self.hook_children = hook_children
        self.nodes: dict[str, NodeRecord] = {}
        self.cuts: dict[tuple[str, str, int | None], CutRecord] = {}
        self.passes: list[PassRecord] = []
        self.losses: list[float | None] = []
        self.max_nodes = max_nodes
        self.max_passes = max_passes
        self.on_node = on_node
        self.on_step = on_step
        self.on_pass = on_pass
        #: Builds a step's formula from the node executing (its saved tensors are readable
        #: only inside the hook); None leaves formulas out.
        self.explain = explain
        #: Nodes keep their saved tensors (for the page's inspector) in graphs up to this size.
        self.keep_saved = keep_saved
        #: While true nothing is recorded (the engine is re-running user code to check it).
        self.paused = False
        self.line: int | None = None
        #: The file of ``line`` (in-process recordings; None for a program).
        self.file: str | None = None
        self.module_stack: list[str | None] = []
        self._module_paths: dict[int, str] = {}
        self._root_name = ""
        self._calls = 0
        self._roots: dict[int, tuple[torch.nn.Module, dict[int, str]]] = {}
        self._hooked_containers: set[int] = set()
        self._param_names: dict[int, str] = {}
        self._leaves: dict[int, tuple[torch.Tensor, str]] = {}
        #: Recorded values by storage, for ``before_inplace``. Indexed only when an in-place
        #: op comes (reading a tensor's storage costs more than the rest of a node's record,
        #: and most programs change nothing in place): ``_unindexed`` waits until then.
        self._by_storage: dict[int, list[NodeRecord]] = {}
        self._unindexed: list[NodeRecord] = []
        self._seq = 0
        self._counter = 0
        self._current: PassRecord | None = None
        # The running pass's nodes, read before the engine runs: after a failed backward
        # some torch versions no longer reach a node's inputs through next_functions.
        self.pass_fns: list[Any] = []
        self._kept_seq = 0  # nodes at or below this seq belong to passes kept in full
        self.dropped_passes = 0
        self.more_passes = more_passes
        self._relay = _Relay(self)

    # ---------------------------------------------------------------- nodes
    def _too_many(self) -> LimitExceeded:
        return LimitExceeded(
            "max_nodes", self.max_nodes, "the program made too many graph nodes", self.line
        )

    def _new_id(self) -> str:
        self._counter += 1
        if len(self.nodes) >= self.max_nodes:
            raise self._too_many()
        return f"n{self._counter}"

    def _add(self, rec: NodeRecord) -> None:
        self.nodes[rec.id] = rec
        if self.on_node is not None:
            self.on_node(rec)

    def leaf_id(self, t: torch.Tensor) -> str:
        """The node of a leaf tensor that requires grad, created on first sight."""
        key = id(t)
        hit = self._leaves.get(key)
        if hit is not None and hit[0] is t:
            return hit[1]
        self._seq += 1
        rec = NodeRecord(
            self._new_id(),
            "leaf",
            "AccumulateGrad",
            None,
            self.line,
            self.module_stack[-1] if self.module_stack else None,
            [],
            t.detach().clone(),
            self._seq,
            call=self._call_now(),
            file=self.file,
        )
        pname = self._param_names.get(key)
        if pname:
            rec.names.append(pname)
        self._leaves[key] = (t, rec.id)
        self._add(rec)
        return rec.id

    def _used_leaf(self, t: torch.Tensor) -> str:
        """The node of a leaf an op is using. On its first use in each pass's forward, its
        value is kept if it changed since the last one kept. Compared, not versioned:
        ``p.data -= lr * p.grad`` (the makemore update) changes the values without
        bumping ``p``'s version counter."""
        nid = self.leaf_id(t)
        rec = self.nodes.get(nid)
        index = len(self.losses)
        if rec is None or rec.seen == index or self.paused:
            return nid
        first_use, rec.seen = rec.seen == -1, index
        last = rec.later[-1][1] if rec.later else rec.value
        now = t.detach()
        if last is not None and last.shape == now.shape and torch.equal(last, now):
            return nid
        if first_use or last is None:  # changed before any op used it: that is its value
            rec.value = now.clone()
        else:
            if rec.later is None:
                rec.later = []
            rec.later.append((index, now.clone()))
        return nid

    def node_of(self, t: torch.Tensor) -> str | None:
        """The node standing for tensor ``t`` (its grad_fn, or its leaf), if it has one."""
        fn = t.grad_fn
        if fn is not None:
            nid = metadata(fn).get(self.key)
            return nid if nid is not None else self.label_fn(fn, t, None)
        if t.requires_grad:
            return self.leaf_id(t)
        return None

    def id_of_fn(self, fn: Any) -> str | None:
        """The node id this recorder gave grad_fn ``fn``, if it labelled it."""
        return fn.metadata.get(self.key)

    def fn_id(self, fn: Any) -> str:
        """The node of grad_fn ``fn``, labelled now if it is new."""
        return metadata(fn).get(self.key) or self.label_fn(fn, None, None)

    def label_fn(self, fn: Any, output: torch.Tensor | None, op: str | None) -> str:
        """Label ``fn`` and every unlabelled node behind it, inputs first."""
        # (node, its next_functions once read: each read builds a new tuple of tuples)
        stack: list[tuple[Any, Any]] = [(fn, None)]
        # Nodes waiting for a label: a graph PyTorch made out of sight (``sum`` over a
        # million tensors) stops here before the walk holds more of its nodes than the
        # graph may have. Python objects held for every node of a 1,000,000-node graph
        # make freeing it recurse through them until the stack overflows (a segfault).
        pending = 0
        top_id = ""
        module = self.module_stack[-1] if self.module_stack else None
        call = self._call_now()
        key = self.key
        while stack:
            node, nexts = stack.pop()
            meta = node.metadata
            if key in meta:
                continue
            if nexts is None:
                nexts = node.next_functions
            # one read of each child's metadata: its id, or it is labelled first
            ids: list[Any] = []
            unlabelled: list[Any] = []
            for child, _ in nexts:
                if child is None or type(child) is ACCUMULATE:
                    ids.append(child)
                else:
                    nid = child.metadata.get(key)
                    if nid is None:
                        unlabelled.append(child)
                    ids.append(nid)
            if unlabelled:
                pending += len(unlabelled)
                if len(self.nodes) + pending > self.max_nodes:
                    raise self._too_many()
                stack.append((node, nexts))
                for child in unlabelled:
                    stack.append((child, None))
                continue
            inputs: list[str | None] = [
                self._used_leaf(cast(Any, c).variable) if type(c) is ACCUMULATE else c for c in ids
            ]
            name = type(node).__name__
            is_top = node is fn
            value = output.detach() if (is_top and output is not None) else None
            self._seq += 1
            rec = NodeRecord(
                self._new_id(),
                "op",
                name,
                (op if is_top and op else op_from_grad_fn(name)),
                self.line,
                module,
                inputs,
                value,
                self._seq,
                call=call,
                file=self.file,
            )
            meta[key] = rec.id
            if value is not None:
                self._unindexed.append(rec)
            self._add(rec)
            if is_top:
                top_id = rec.id
        return top_id or fn.metadata[key]

    def record_outputs(self, result: Any, op: str) -> None:
        """Label the nodes behind whatever tensors a library call returned."""
        for t in _tensors_in(result):
            fn = t.grad_fn
            if fn is not None and self.key not in metadata(fn):
                self.label_fn(fn, t, op)

    def record_inplace(self, target: torch.Tensor, op: str) -> None:
        """After an in-place op the same tensor has a new grad_fn (e.g. CopySlices)."""
        fn = target.grad_fn
        if fn is not None and self.key not in metadata(fn):
            self.label_fn(fn, target, op)

    def before_inplace(self, target: torch.Tensor) -> None:
        """Snapshot recorded values that share ``target``'s storage, before it changes."""
        for rec in self._unindexed:
            if rec.value is not None:
                self._by_storage.setdefault(_storage_key(rec.value), []).append(rec)
        self._unindexed = []
        recs = self._by_storage.pop(_storage_key(target), None)
        if recs:
            for rec in recs:
                if rec.value is not None:
                    rec.value = rec.value.clone()

    def record_cut(
        self,
        inputs: Iterable[torch.Tensor],
        result: Any,
        op: str,
        reason: CutReason | None = None,
    ) -> None:
        """Note where a value that required grad produced one that does not."""
        outs = [t for t in _tensors_in(result) if not t.requires_grad]
        if not outs or self._current is not None:  # (a custom backward's own ops: no cut)
            return
        for t in inputs:
            if t.requires_grad:
                src = self.node_of(t)
                if src is None:
                    continue
                why = reason or ("no_grad" if not torch.is_grad_enabled() else "non_differentiable")
                key = (src, op, self.line)
                if key not in self.cuts:
                    self.cuts[key] = CutRecord(src, op, self.line, why)

    def bind_name(self, name: str, t: torch.Tensor) -> None:
        if self.paused:  # (a name inside the engine's own work: a custom Function's check)
            return
        nid = self.node_of(t) if (t.requires_grad or t.grad_fn is not None) else None
        if nid is not None:
            names = self.nodes[nid].names if nid in self.nodes else None
            if names is not None and name not in names:
                names.append(name)

    # -------------------------------------------------------------- modules
    def _call_now(self) -> int | None:
        """Which call of an outermost module is running: tells an RNN's steps apart."""
        return self._calls if self.module_stack else None

    def module_enter(
        self,
        module: torch.nn.Module,
        name: str | None = None,
        price: Callable[[torch.nn.Module, tuple], None] | None = None,
    ) -> None:
        """A module's forward begins: its path (``net``, ``net.fc1``, ``net.features.0``)
        labels the nodes made inside it. The outermost module called is named as the
        program called it (``net(x)``: ``net``), and names the ones inside it. ``price``
        (the gate's) prices each layer an ``nn.Sequential`` calls, before it runs."""
        if not self.module_stack:
            self._root_name = name or type(module).__name__.lower()
            self._calls += 1
            root = self._roots.get(id(module))
            if root is None or root[0] is not module:
                paths = {id(m): p for p, m in module.named_modules()}
                root = self._roots[id(module)] = (module, paths)
                for rel_name, p in module.named_parameters():
                    pname = f"{self._root_name}.{rel_name}"
                    self._param_names.setdefault(id(p), pname)
                    hit = self._leaves.get(id(p))
                    if hit is not None and hit[0] is p and pname not in self.nodes[hit[1]].names:
                        self.nodes[hit[1]].names.insert(0, pname)
            self._module_paths = root[1]
        rel = self._module_paths.get(id(module))
        self.module_stack.append(
            None if rel is None else f"{self._root_name}.{rel}" if rel else self._root_name
        )
        if (
            self.hook_children
            and module._modules
            and not getattr(module, "chainlens_user", False)
            and id(module) not in self._hooked_containers
        ):
            # A library container (Sequential...) calls its children itself, out of the
            # gate's sight: hook them, once per instance.
            self._hooked_containers.add(id(module))
            enter = functools.partial(
                self._child_enter, price=price if isinstance(module, torch.nn.Sequential) else None
            )
            for child in module.children():
                child.register_forward_pre_hook(enter)
                child.register_forward_hook(
                    lambda m, a, out: self.module_exit(m, out), always_call=True
                )

    def _child_enter(
        self,
        module: torch.nn.Module,
        args: tuple,
        price: Callable[[torch.nn.Module, tuple], None] | None,
    ) -> None:
        """A library container calls one of its children. A Sequential's library layers
        are priced here, before they run (their container was priced at nothing: it
        computes nothing of its own); a program's own module prices its own calls."""
        if price is not None and not getattr(module, "chainlens_user", False):
            price(module, args)
        self.module_enter(module, price=price)

    def module_exit(self, module: torch.nn.Module, output: Any) -> None:
        self.record_outputs(output, type(module).__name__)
        if self.module_stack:
            self.module_stack.pop()

    # ------------------------------------------------------------- backward
    def begin_pass(self, roots: list[torch.Tensor], gradient: torch.Tensor | None) -> PassRecord:
        """Hook every node reachable from ``roots`` and open a Pass.

        A pass past the ones kept in full is kept only while it is the latest, so each of
        a 1000-step loop's was recorded, explained and then dropped. When ``more_passes``
        says another will follow (a ``for`` with no ``break`` or ``return`` of its own has
        items left), this one is opened unhooked and unrecorded, as it would end up: its
        graph is still walked (its nodes, leaves and a failure's culprit are read from
        it). Should it turn out to be the last after all (its backward was conditional,
        or a later turn raised), ``last_pass_skipped`` says so and the run is made again
        without skipping (``engine.run_wire``). The makemore loop's 1000 steps: 11% less
        time (1165 -> 1033 ms)."""
        root_id = None
        loss = None
        for r in roots:
            nid = self.node_of(r) if r.requires_grad else None
            root_id = root_id or nid
        if roots and roots[0].numel() == 1:
            loss = float(roots[0].detach().reshape(()).cpu())
        self.losses.append(loss)
        index = len(self.losses) - 1
        p = PassRecord(index, root_id, gradient, self.line, loss)
        skip = index >= self.max_passes - 1 and self.more_passes is not None and self.more_passes()
        self.pass_fns = []
        for fn in graph_of(roots):  # bounded as label_fn is, for the same reason
            self.pass_fns.append(fn)
            if len(self.pass_fns) > self.max_nodes:
                self.pass_fns = []
                raise self._too_many()
        for fn in self.pass_fns:
            meta = fn.metadata
            leaf = type(fn) is ACCUMULATE
            if leaf:
                nid = self.leaf_id(fn.variable)
            else:
                nid = self.fn_id(fn)
            p.node_ids.add(nid)
            if not skip and self._hooked_key not in meta:
                meta[self._hooked_key] = True
                if leaf:
                    fn.register_prehook(_leaf_hook(self._relay, nid))
                else:
                    fn.register_hook(_op_hook(self._relay, nid))
        self._admit(p)
        if skip:
            p.recorded = False
            self.dropped_passes += 1
        self._current = p
        if self.on_pass is not None:
            self.on_pass(p)
        return p

    def _admit(self, p: PassRecord) -> None:
        """Keep the first ``max_passes - 1`` passes in full, and the latest one after them.

        When a newer pass arrives, the previous latest loses its steps and the nodes
        only it used; its loss stays in ``losses`` for the loss curve."""
        cap = self.max_passes
        if p.index == cap - 2 or (cap < 2 and p.index == 0):
            self._kept_seq = self._seq
        if p.index >= cap and self.passes:
            tail = self.passes[-1]
            if tail.recorded:
                tail.recorded = False
                tail.steps = []
                self.dropped_passes += 1
            # (the previous pass was either dropped now, or skipped: see begin_pass)
            keep = p.node_ids
            for nid in [
                n for n, rec in self.nodes.items() if rec.seq > self._kept_seq and n not in keep
            ]:
                del self.nodes[nid]
            self._forget_values(cap - 1, p.index)
        self.passes.append(p)

    @property
    def last_pass_skipped(self) -> bool:
        """The run's last pass was opened unrecorded (``begin_pass``): another was
        expected, and none came."""
        return bool(self.passes) and not self.passes[-1].recorded

    def leaf_values(self, p: PassRecord) -> dict[str, torch.Tensor]:
        """The leaves of pass ``p`` whose value when its forward ran is not their node's
        ``value`` (an optimizer stepped them since): that value, by node id. Walks the
        leaves, not the pass's nodes (an unrolled RNN has 3,000 nodes and 4 leaves)."""
        out = {}
        for _, nid in self._leaves.values():
            rec = self.nodes.get(nid)
            if rec is not None and rec.later and nid in p.node_ids:
                value = rec.value_at(p.index)
                if value is not rec.value and value is not None:
                    out[nid] = value
        return out

    def _forget_values(self, first: int, now: int) -> None:
        """Leaf values that no recorded pass shows any more: of those kept from pass
        ``first`` up to pass ``now``, only the last tells pass ``now``'s value (a
        1000-step loop would otherwise keep 1000 copies of every parameter)."""
        for _, nid in self._leaves.values():
            rec = self.nodes.get(nid)
            if rec is None or not rec.later:
                continue
            late = [k for k, (i, _) in enumerate(rec.later) if first <= i <= now]
            for k in reversed(late[:-1]):
                del rec.later[k]

    def release(self) -> None:
        """The run is over: cut the node hooks' link to the recorder (see ``_Relay``), so
        that its graph can be freed, and drop gradients that have graphs of their own
        (``create_graph=True``): such a graph holds its leaf, whose ``.grad`` holds the
        graph, a cycle PyTorch warns of."""
        self._relay.recorder = None
        for t, _ in self._leaves.values():
            if t.grad is not None and t.grad.grad_fn is not None:
                t.grad = None

    @contextlib.contextmanager
    def pause(self) -> Iterator[None]:
        """The engine's own autograd work (a Jacobian, a finite-difference check): neither
        recorded as the program's graph nor as its passes."""
        self.paused = True
        try:
            yield
        finally:
            self.paused = False

    def end_pass(self) -> None:
        self._current = None
        self.pass_fns = []

    @property
    def in_pass(self) -> bool:
        """A backward pass is running."""
        return self._current is not None

    def _record_step(self, nid: str, grad_outputs: tuple, grad_inputs: tuple) -> None:
        p = self._current
        if p is None or not p.recorded or self.paused:
            return
        step = StepRecord(nid, tuple(grad_outputs), tuple(grad_inputs))
        node = torch._C._current_autograd_node() if (self.explain or self.keep_saved) else None
        if self.explain is not None:
            step.formula = self.explain(node, nid, step.grad_outputs, step.grad_inputs)
        p.steps.append(step)
        rec = self.nodes.get(nid)
        if (
            rec is not None
            and rec.saved is None
            and node is not None
            and len(self.nodes) <= self.keep_saved
        ):
            rec.saved = saved_tensors(node)
        if rec is not None:
            rec.grad = grad_outputs[0] if grad_outputs else None
        if self.on_step is not None:
            self.on_step(p, step)

    def after_create_graph(self, leaves: Iterable[torch.Tensor]) -> None:
        """With ``create_graph=True`` the gradients have graphs of their own: label them."""
        for t in leaves:
            g = t.grad
            if g is not None and g.grad_fn is not None and self.key not in metadata(g.grad_fn):
                self.label_fn(g.grad_fn, g, None)

    def leaf_tensors(self) -> list[torch.Tensor]:
        return [t for t, _ in self._leaves.values()]


def _op_hook(relay: _Relay, nid: str) -> Callable:
    """A post-hook: ``grad_inputs`` are downstream, ``grad_outputs`` upstream."""

    def hook(grad_inputs: tuple, grad_outputs: tuple) -> None:
        if relay.recorder is not None:
            relay.recorder._record_step(nid, grad_outputs, grad_inputs)

    return hook


def _leaf_hook(relay: _Relay, nid: str) -> Callable:
    """A pre-hook on AccumulateGrad: upstream only; it passes nothing further down."""

    def hook(grad_outputs: tuple) -> None:
        if relay.recorder is not None:
            relay.recorder._record_step(nid, grad_outputs, ())

    return hook


_SAVED_NAMES: dict[type, list[str]] = {}

#: Saved tensors up to this many elements are copied; larger ones are kept by reference.
SAVED_COPY_MAX = 1 << 16


@dataclass(slots=True)
class SavedTensor:
    """A tensor a node saved for backward, as it was when backward read it.

    Copying every saved tensor doubled a large model's memory traffic (the MLP's 157 MB
    input, saved by ``addmm``, took 146 ms to clone), and most are never changed again:
    large ones are kept by reference with their version counter, which any in-place
    change bumps, so a changed one is known and left out rather than shown wrong."""

    tensor: torch.Tensor
    version: int

    @property
    def current(self) -> torch.Tensor | None:
        """The tensor, unless it was modified in place since it was saved."""
        return self.tensor if self.tensor._version == self.version else None


def saved_names(node: Any) -> list[str]:
    """The ``_saved_*`` attributes of a node's type (``dir`` once per type: it lists ~100
    names)."""
    names = _SAVED_NAMES.get(type(node))
    if names is None:
        names = _SAVED_NAMES[type(node)] = [a for a in dir(node) if a.startswith("_saved_")]
    return names


def saved_tensors(node: Any) -> dict[str, SavedTensor]:
    """What a node saved for backward (``self``, ``other``, ``result``...): readable only
    while it runs in backward, so taken then."""
    out = {}
    for attr in saved_names(node):
        try:
            value = getattr(node, attr)
        except RuntimeError:
            continue
        if isinstance(value, torch.Tensor):
            t = value.detach()
            if t.numel() <= SAVED_COPY_MAX:
                t = t.clone()
            out[attr.removeprefix("_saved_")] = SavedTensor(t, t._version)
    return out


def _storage_key(t: torch.Tensor) -> int:
    try:
        return t.untyped_storage().data_ptr()
    except RuntimeError:
        return id(t)
