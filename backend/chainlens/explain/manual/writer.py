"""The manual-backprop file: a captured pass written as numpy, one chain-rule line per
node, the way a course writes backprop out by hand.

Layout of the file: the program (as comments), the helpers it needs, the leaves and
constants as they were when the pass began, the forward in the order the program built
it, the backward in the order PyTorch's engine ran it, and what each leaf received.
"""

from __future__ import annotations

import base64
import builtins
import keyword
import re
from typing import Any

import numpy as np

from .capture import Capture, Leaf, ManualUnavailable, OpNode
from .ops import HELPER_SOURCES, NUMPY_RULES, PIECES, Call, Code, Ref, lit, needed, np_dtype
from .tape import Operand

#: Arrays up to this many elements are written as literals, bigger ones as base64 bytes.
LITERAL_MAX = 64


def _number(v: Any) -> str:
    if isinstance(v, float):
        return lit(v)
    return repr(v)


def array_literal(a: np.ndarray) -> str:
    """Code that rebuilds ``a`` exactly (values, shape and dtype)."""
    dtype = np_dtype(a.dtype)
    if a.size <= LITERAL_MAX:

        def nested(x: Any) -> str:
            return (
                "[" + ", ".join(nested(i) for i in x) + "]" if isinstance(x, list) else _number(x)
            )

        return f"np.array({nested(a.tolist())}, dtype={dtype})"
    data = base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()
    return f"unpack({data!r}, {lit(a.shape)}, {dtype})"


def scalar_literal(a: np.ndarray) -> str:
    """A 0-d constant as a Python number: like torch's wrapped numbers, it takes the
    other operand's dtype instead of promoting it."""
    return _number(a.item())


class _Names:
    """Python identifiers for the file's variables: the program's own names where it
    gave one, unique, never a keyword, builtin or helper."""

    def __init__(self) -> None:
        self.taken = (
            set(keyword.kwlist)
            | set(dir(builtins))
            | set(HELPER_SOURCES)
            | {"np", "base64", "math"}
        )

    def make(self, preferred: str, fallback: str) -> str:
        base = re.sub(r"\W", "_", preferred).strip("_") or fallback
        if base[0].isdigit():
            base = f"v_{base}"
        name = base
        if name in self.taken or f"grad_{name}" in self.taken:
            name = f"{base}_{fallback}"
        while name in self.taken:
            name += "_"
        self.taken.update({name, f"grad_{name}"})
        return name


class _Writer:
    def __init__(self, cap: Capture, source: str, run_id: str) -> None:
        self.cap = cap
        self.source = source
        self.run_id = run_id
        self.names = _Names()
        self.var: dict[str, str] = {}  # node id -> variable
        self.refs: dict[int, Ref] = {}  # id(Operand) -> code
        self.const_names: dict[int, str] = {}  # id(Operand) -> the array's variable
        self.codes: dict[str, tuple[Code, Call]] = {}
        self.helpers: list[str] = []
        self.defined: set[str] = set()  # gradient variables assigned so far
        self.ops = {o.id: o for o in cap.ops}

    # ------------------------------------------------------------- naming
    def _name_nodes(self) -> None:
        counts: dict[str, int] = {}
        nodes: list[Leaf | OpNode] = [*self.cap.leaves.values(), *self.cap.ops]
        for o in nodes:
            if o.names:
                counts[o.names[-1]] = counts.get(o.names[-1], 0) + 1
        for o in nodes:
            preferred = (
                o.names[-1]
                if o.names and counts[o.names[-1]] == 1
                else (f"{o.names[-1]}_{o.id}" if o.names else o.id)
            )
            self.var[o.id] = self.names.make(preferred, o.id)

    def _pieces(self, nid: str) -> bool:
        """The node's outputs are a list of pieces (split, unbind), each with a gradient."""
        op = self.ops.get(nid)
        return op is not None and op.record.op in PIECES

    def grad_of(self, nid: str, output_nr: int = 0) -> str:
        return f"grad_{self.var[nid]}" + (f"_{output_nr}" if self._pieces(nid) else "")

    def _output(self, nid: str, output_nr: int) -> str:
        return f"{self.var[nid]}[{output_nr}]" if self._pieces(nid) else self.var[nid]

    def _ref(self, operand: Operand) -> Ref:
        ref = self.refs.get(id(operand))
        if ref is not None:
            return ref
        if operand.kind == "const":
            value, _ = self.cap.consts[id(operand)]
            name = scalar_literal(value) if value.ndim == 0 else self.const_names[id(operand)]
            ref = Ref(name, operand.shape, operand.dtype)
        else:
            nid, k = self.cap.nodes_of[id(operand)]
            ref = Ref(self._output(nid, k), operand.shape, operand.dtype, (nid, k))
        self.refs[id(operand)] = ref
        return ref

    # ------------------------------------------------------------- sections
    def write(self) -> str:
        self._name_nodes()
        consts_src: list[str] = []
        seen_values: list[tuple[np.ndarray, str, str]] = []
        for key, (value, hint) in self.cap.consts.items():
            if value.ndim == 0:
                continue
            same = next(
                (
                    n
                    for v, h, n in seen_values
                    if h == hint
                    and v.shape == value.shape
                    and v.dtype == value.dtype
                    and np.array_equal(v, value, equal_nan=True)
                ),
                None,
            )
            if same is None:
                same = self.names.make(
                    hint or f"c{len(seen_values) + 1}", f"c{len(seen_values) + 1}"
                )
                seen_values.append((value, hint, same))
                consts_src.append(f"{same} = {array_literal(value)}")
            self.const_names[key] = same
        forward = self._forward()
        backward = self._backward()
        leaves = [
            f"{self.var[nid]} = {array_literal(leaf.value)}"
            + (f"  # {nid}" if not leaf.names else f"  # {nid}: {leaf.names[0]}")
            for nid, leaf in self.cap.leaves.items()
        ]
        if any("unpack(" in line for line in leaves + consts_src):
            self.helpers.append("unpack")
        wanted = needed(self.helpers)
        defs = [HELPER_SOURCES[n] for n in wanted]
        imports = ["import base64"] if "unpack" in wanted else []
        if any("math." in d for d in defs):
            imports.append("import math")
        imports.append("import numpy as np")
        return (
            "\n".join(
                [
                    *self._header(),
                    "",
                    *imports,
                    "",
                    "",
                    *(["# ---- helpers", "", *[d + "\n" for d in defs]] if defs else []),
                    "# ---- leaves (requires_grad=True), as they were when the pass began",
                    *leaves,
                    "",
                    *(
                        ["# ---- constants (tensors that do not require grad)", *consts_src, ""]
                        if consts_src
                        else []
                    ),
                    "# ---- forward: every node's output, in the order the program made them",
                    *forward,
                    "",
                    "# ---- backward: one chain-rule line per node, in the order PyTorch's engine "
                    "ran them",
                    *backward,
                    "",
                    *self._footer(),
                ]
            )
            + "\n"
        )

    def _header(self) -> list[str]:
        cap = self.cap
        where = f" (line {cap.line})" if cap.line else ""
        lines = [
            f"# Manual backprop for chainlens run {self.run_id}, backward pass {cap.index + 1}{where}",
            f"# (passes count from 1, as the page shows them; the Run's passes[{cap.index}]).",
            "#",
            "# The forward and every gradient of that pass, recomputed with numpy alone:",
            "# one line per autograd node, upstream gradient times local derivative, in",
            "# the engine's order. `python this_file.py` prints each leaf's gradient.",
            "#",
            "# The program:",
        ]
        lines += [
            f"#   {i:>3} | {text}".rstrip() for i, text in enumerate(self.source.splitlines(), 1)
        ]
        return lines

    def _forward(self) -> list[str]:
        lines = []
        for o in self.cap.ops:
            rule = NUMPY_RULES.get(o.record.op)
            if rule is None:
                raise ManualUnavailable(
                    f"{o.grad_fn} (node {o.id}, ATen op {o.record.op}) has no numpy "
                    "translation in manual-backprop code yet",
                    o.line,
                )
            y = self.var[o.id]
            call = Call(o.record.op, [], dict(o.record.kwargs), y, o.record.shapes[0], [])
            call.args = [self._arg(a) for a in o.record.args]
            call.kwargs = {k: self._arg(v) for k, v in o.record.kwargs.items()}
            try:
                code = rule(self._with_upstream(call, o))
            except NotImplementedError as e:
                raise ManualUnavailable(
                    f"{o.grad_fn} (node {o.id}): {e} is not in manual-backprop code yet", o.line
                ) from None
            self.codes[o.id] = (code, call)
            self.helpers.extend(code.helpers)
            target = f"{y}, {y}_aux" if code.aux else y
            lines.append(f"{target} = {code.forward}  # {self._where(o)}")
        return lines

    def _with_upstream(self, call: Call, o: OpNode) -> Call:
        """The upstream gradient of each output, by the name the backward gives it."""
        call.upstream = (
            [self.grad_of(o.id, k) for k in range(len(o.record.shapes))]
            if self._pieces(o.id)
            else [self.grad_of(o.id)]
        )
        return call

    def _arg(self, a: Any) -> Any:
        if isinstance(a, Operand):
            return self._ref(a)
        if isinstance(a, (list, tuple)):
            return [self._arg(x) for x in a]
        return a

    def _where(self, o: OpNode) -> str:
        parts = [f"{o.id} {o.grad_fn}"]
        if o.line:
            parts.append(f"line {o.line}")
        if o.module:
            parts.append(o.module)
        return " · ".join(parts)

    def _backward(self) -> list[str]:
        cap = self.cap
        lines = []
        for root, output_nr in cap.roots:
            seed = self.grad_of(root, output_nr) if root in self.ops else f"grad_{self.var[root]}"
            value = self._output(root, output_nr)
            if cap.gradient is None:
                lines += [f"# the root {value}: dL/dL = 1", f"{seed} = np.ones_like({value})"]
            else:
                lines += [
                    "# the root is not a scalar: its gradient is the vector given to backward()",
                    f"{seed} = {array_literal(cap.gradient)}",
                ]
            self.defined.add(seed)
        for nid in cap.order:
            if nid in self.cap.leaves:
                lines += self._accumulate(nid)
            elif nid in self.ops:
                lines += self._step(self.ops[nid])
        return lines

    def _step(self, o: OpNode) -> list[str]:
        code, call = self.codes[o.id]
        n = len(call.upstream)
        if n > 1:  # pieces no path used get a zero gradient
            call.upstream = [
                g
                if g in self.defined
                else f"np.zeros({lit(o.record.shapes[k])}, dtype={np_dtype(o.record.dtype)})"
                for k, g in enumerate(call.upstream)
            ]
            code = NUMPY_RULES[o.record.op](call)
        lines = [f"# {self._where(o)}: {code.note}"]
        for pos, expr in code.grads.items():
            operand = call.args[pos[0]][pos[1]] if isinstance(pos, tuple) else call.arg(pos)
            if not isinstance(operand, Ref) or operand.node is None:
                continue
            if code.broadcast and operand.shape != call.shape:
                expr = f"unbroadcast({expr}, {lit(operand.shape)})"
                self.helpers.append("unbroadcast")
            nid, k = operand.node
            target = self.grad_of(nid, k) if nid in self.ops else f"grad_{self.var[nid]}"
            if target in self.defined:
                lines.append(
                    f"{target} = {target} + {expr}  # another path into {operand}: gradients add up"
                )
            else:
                lines.append(f"{target} = {expr}")
                self.defined.add(target)
        return lines

    def _accumulate(self, nid: str) -> list[str]:
        leaf = self.cap.leaves[nid]
        v = self.var[nid]
        shown = leaf.names[0] if leaf.names else v
        if leaf.grad_before is None:
            return [
                f"# {nid} AccumulateGrad: {shown}.grad was None, so it becomes dL/d{shown}",
                f"{v}_grad = grad_{v}",
            ]
        return [
            f"# {nid} AccumulateGrad: {shown}.grad already held a gradient; this pass adds to it",
            f"{v}_grad = {array_literal(leaf.grad_before)} + grad_{v}",
        ]

    def _footer(self) -> list[str]:
        leaves = [
            (nid, leaf)
            for nid, leaf in self.cap.leaves.items()
            if f"grad_{self.var[nid]}" in self.defined
        ]
        accumulated = [(nid, leaf) for nid, leaf in leaves if nid in self.cap.order]
        ran = [nid for nid in self.cap.order if nid in self.ops]

        firsts = [leaf.names[0] for leaf in self.cap.leaves.values() if leaf.names]

        def key(nid: str, leaf: Any) -> str:
            """The leaf's name, or its node id where it has none or shares it (leaves made
            in a loop, each bound to the same name in turn)."""
            named = leaf.names and firsts.count(leaf.names[0]) == 1
            return repr(leaf.names[0] if named else nid)

        return [
            "# ---- what the pass gave: dL/d(leaf), each leaf's .grad after it, and the",
            "# upstream gradient dL/d(output) of every node that ran, by node id",
            "GRADIENTS = {"
            + ", ".join(f"{key(n, leaf)}: grad_{self.var[n]}" for n, leaf in leaves)
            + "}",
            "GRAD_AFTER = {"
            + ", ".join(f"{key(n, leaf)}: {self.var[n]}_grad" for n, leaf in accumulated)
            + "}",
            "UPSTREAM = {"
            + ", ".join(f"{n!r}: {self.grad_of(n)}" for n in ran if self.grad_of(n) in self.defined)
            + "}",
            "",
            'if __name__ == "__main__":',
            "    np.set_printoptions(precision=4, suppress=True)",
            "    for name, grad in GRADIENTS.items():",
            '        print(f"dL/d{name} =", grad)',
        ]


def write_manual(cap: Capture, source: str, run_id: str) -> str:
    return _Writer(cap, source, run_id).write()
