"""Files a person keeps: a Run's graph in DOT, drawn the way torchviz draws one.

torchviz's ``make_dot`` is what most notebooks use to look at a graph, so its habits
carry over: a box per grad_fn (light grey), a leaf as its name and size (light blue),
the tensor backward started from in green, arrows from each input to what used it. On
top of that, where a value left the graph (``no_grad``, ``.detach()``, ``.data``) the
arrow is dashed and says so, as on the page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # (Run.to_dot calls this module: the models are only read here)
    from .schema import Node, Run

#: torchviz's colours: parameters and leaves, grad_fn nodes, the outputs.
LEAF, OP, ROOT = "lightblue", "lightgrey", "darkolivegreen1"


def quoted(text: str) -> str:
    """A DOT string: quotes and backslashes escaped, line breaks as DOT's ``\\n`` (text a
    program made is only ever text here, whatever it holds)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r", "").replace("\n", "\\n") + '"'


def _size(node: Node) -> str:
    shape = node.value.shape if node.value is not None else None
    return "" if shape is None else "(" + ", ".join(map(str, shape)) + ")"


def _label(node: Node) -> str:
    if node.kind == "leaf":
        return f"{node.label}\n{_size(node)}"
    return node.grad_fn if not node.module else f"{node.grad_fn}\n{node.module}"


def to_dot(run: Run) -> str:
    """The Run's graph (every node, every pass together) as a DOT digraph."""
    roots = {p.root for p in run.passes if p.root is not None}
    lines = [
        "digraph chainlens {",
        '  graph [rankdir=TB, fontname="Helvetica"]',
        "  node [style=filled, shape=box, align=left, fontsize=10, height=0.2, "
        'fontname="monospace"]',
        "  edge [arrowsize=0.6]",
    ]
    for node in run.nodes:
        colour = ROOT if node.id in roots else LEAF if node.kind == "leaf" else OP
        tooltip = f"line {node.line}" if node.line is not None else node.grad_fn
        lines.append(
            f"  {quoted(node.id)} [label={quoted(_label(node))}, fillcolor={colour}, "
            f"tooltip={quoted(tooltip)}]"
        )
    known = {node.id for node in run.nodes}
    for node in run.nodes:
        for source in node.inputs:
            if source in known:
                lines.append(f"  {quoted(source)} -> {quoted(node.id)}")
    for k, cut in enumerate(run.cut_edges):
        if cut.source not in known:
            continue
        where = f" (line {cut.line})" if cut.line is not None else ""
        target = quoted(f"cut{k}")
        lines.append(f"  {target} [label={quoted(cut.op + where)}, shape=plaintext, style=solid]")
        lines.append(
            f"  {quoted(cut.source)} -> {target} [style=dashed, label={quoted(cut.reason)}]"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"
