"""The wire schema: every structure chainlens sends or receives.

This is the one module that knows the shape of the JSON in ``shared/API.md``. Each
shape is a pydantic model (what the API documents and validates, what the client and
``chainlens.run`` hand back). The engine does not build ~10^5 models per run: it builds
plain dicts for orjson, each declared below its model as a ``TypedDict`` of the same
fields (``...Dict``), so the type checker holds every producer to the declaration and
``tests/test_schema.py`` holds each pair to one another. The stream's events, which
only the engine makes and only the page reads, are declared as ``TypedDict``s alone.

Field names are the contract: add fields, never rename or remove them. A field a shape
may lack is sent as null, never left out: every formula of a kind has the same keys.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

# (pydantic reads a TypedDict field's declaration only from typing_extensions' before
# Python 3.12; pydantic itself depends on it)
from typing_extensions import TypedDict

#: A number where JSON may need to carry a non-finite value: "nan", "inf", "-inf".
Number = float | int | str


class Stats(BaseModel):
    """Summary statistics over the finite elements of a tensor, plus counts of the rest."""

    min: Number | None
    max: Number | None
    mean: Number | None
    std: Number | None
    norm: Number | None
    nan: int
    inf: int
    hist: list[int] | None = Field(
        default=None,
        description="For tensors sent without values: counts in 20 equal bins "
        "from min to max (of an evenly strided sample past 16,384 elements).",
    )


class TensorView(BaseModel):
    """A tensor as the client sees it: always its shape and stats, its values when small."""

    shape: list[int]
    dtype: str
    device: str
    numel: int
    values: Any = Field(
        default=None,
        description="A number or nested list when numel is small (64 or fewer); "
        "non-finite numbers are the strings 'nan', 'inf', '-inf'.",
    )
    stats: Stats | None = None


class StatsDict(TypedDict):
    """``Stats`` as ``tracing.summaries`` builds it."""

    min: Number | None
    max: Number | None
    mean: Number | None
    std: Number | None
    norm: Number | None
    nan: int
    inf: int
    hist: list[int] | None


class TensorViewDict(TypedDict):
    """``TensorView`` as ``tracing.summaries`` builds it: handed out with ``values`` and
    ``stats`` empty, filled when the summarizer flushes."""

    shape: list[int]
    dtype: str
    device: str
    numel: int
    values: Any
    stats: StatsDict | None


class ErrorInfo(BaseModel):
    """Why a program stopped early (a Run with status "error")."""

    code: str = Field(description="runtime_error | limit_exceeded | timeout")
    type: str | None = Field(default=None, description="The exception class, e.g. RuntimeError")
    message: str
    line: int | None = None
    col: int | None = None


class RejectedError(BaseModel):
    """Why a program was not run (HTTP 400/413/429/503 bodies, the stream's `error` event)."""

    code: str
    message: str
    line: int | None = None
    col: int | None = None


class ErrorBody(BaseModel):
    error: RejectedError


class Variable(BaseModel):
    """A tensor bound to a user variable at the end of the program."""

    node: str | None
    value: TensorView
    grad: TensorView | None
    is_leaf: bool
    requires_grad: bool


class VariableDict(TypedDict):
    node: str | None
    value: TensorViewDict
    grad: TensorViewDict | None
    is_leaf: bool
    requires_grad: bool


class Node(BaseModel):
    """One autograd graph node: a leaf (AccumulateGrad) or an op's grad_fn."""

    id: str
    kind: Literal["leaf", "op"]
    grad_fn: str
    op: str | None
    label: str
    names: list[str]
    line: int | None
    module: str | None
    call: int | None = Field(
        default=None,
        description="Which call of an outermost module made this node (1, 2, "
        "...): an RNN cell called 500 times has 500 calls with the same module path.",
    )
    inputs: list[str | None]
    value: TensorView | None = Field(
        description="The forward output (leaf: the tensor). Null only for a node made "
        "inside a library op whose own output the program never saw (e.g. the "
        "transpose inside F.linear)."
    )
    grad: TensorView | None
    saved: dict[str, TensorView] | None = Field(
        default=None,
        description="What the node saved for backward (e.g. MulBackward0: "
        "self, other), in graphs of at most saved_max_nodes nodes, as backward read them. "
        "A saved tensor of more than 65,536 elements that the program later changed in place "
        "is left out.",
    )
    freed_by: int | None = Field(
        default=None,
        description="For a node a later backward found without its saved "
        "tensors: the pass (from 0) whose backward freed them (retain_graph=False). Set when "
        "a second backward through the graph failed.",
    )
    file: str | None = Field(
        default=None,
        description="The file ``line`` is in, for code recorded in its own process "
        "(``chainlens.record``, ``chainlens trace``): the user's module or notebook cell. "
        "Null for a program run by chainlens, whose lines are the program's.",
    )


class NodeDict(TypedDict):
    id: str
    kind: Literal["leaf", "op"]
    grad_fn: str
    op: str | None
    label: str
    names: list[str]
    line: int | None
    module: str | None
    call: int | None
    inputs: list[str | None]
    value: TensorViewDict | None
    grad: TensorViewDict | None
    saved: dict[str, TensorViewDict] | None
    freed_by: int | None
    file: str | None


#: Which tensor each letter of a formula stands for: an input's position, or "out".
Letters = dict[str, int | str]


class FormulaBase(BaseModel):
    """What every kind of formula carries (``explain.explainer`` makes them)."""

    latex: str = Field(description="The chain rule at this node, in LaTeX.")
    text: str = Field(description="The same in plain text.")
    verified: bool = Field(
        description="The formula's own numbers reproduce every gradient the engine "
        "produced at this step (an ``accumulate`` step: the leaf's new ``.grad``; "
        "``custom``: the program's backward agreed with finite differences)."
    )
    note: str | None = Field(default=None, description="What a reader should know besides.")
    letters: Letters | None = Field(
        default=None,
        description="Which tensor each single letter of ``latex`` (and of "
        "``steps``) stands for: an input's position in the node's ``inputs``, or \"out\" for "
        "the node's own output. The page writes the program's names in their place.",
    )


class ElementLine(BaseModel):
    """One element of an element-by-element step: upstream × local = downstream."""

    input: int = Field(description="Which input (its position in the node's inputs).")
    index: list[int] = Field(description="The element's index in that input.")
    upstream: Number
    local: Number = Field(description="The local derivative, from the node's saved tensors.")
    downstream: Number = Field(description="The engine's own downstream gradient.")


class RuleFormula(FormulaBase):
    """A hand-written rule for the node's grad_fn (``explain.formulas``)."""

    kind: Literal["rule"]
    steps: list[str] | None = Field(
        default=None,
        description="For a scalar step: upstream × local = downstream, in LaTeX, per input.",
    )
    elements: list[ElementLine] | None = Field(
        default=None, description="For an element-by-element step: its first elements."
    )


class JacobianFormula(FormulaBase):
    """No rule for this grad_fn: the node's Jacobian, built from the node itself."""

    kind: Literal["jacobian"]
    jacobian: list[list[Any]] | None = Field(
        description="One row per output element (null past 256 entries)."
    )


class AccumulateFormula(FormulaBase):
    """A leaf's ``.grad += ...``, checked once the pass has finished."""

    kind: Literal["accumulate"]


class CustomCheck(BaseModel):
    analytic: list[Any] = Field(description="What the program's backward returned, per input.")
    numeric: list[Any] = Field(description="Central finite differences, per input.")


class CustomFormula(FormulaBase):
    """A program's own ``autograd.Function``: its backward, as the program wrote it."""

    kind: Literal["custom"]
    code: str = Field(description="The source of the Function's backward method.")
    check: CustomCheck | None = Field(
        description="Its finite-difference check, when the Function's inputs were small."
    )


class NoFormula(FormulaBase):
    """No rule, and a Jacobian too large to build."""

    kind: Literal["none"]


#: A step's formula, by its ``kind``.
Formula = Annotated[
    RuleFormula | JacobianFormula | AccumulateFormula | CustomFormula | NoFormula,
    Field(discriminator="kind"),
]


class ElementLineDict(TypedDict):
    input: int
    index: list[int]
    upstream: Number
    local: Number
    downstream: Number


class CustomCheckDict(TypedDict):
    analytic: list[Any]
    numeric: list[Any]


class FormulaBaseDict(TypedDict):
    latex: str
    text: str
    verified: bool
    note: str | None
    letters: Letters | None


class RuleFormulaDict(FormulaBaseDict):
    kind: Literal["rule"]
    steps: list[str] | None
    elements: list[ElementLineDict] | None


class JacobianFormulaDict(FormulaBaseDict):
    kind: Literal["jacobian"]
    jacobian: list[list[Any]] | None


class AccumulateFormulaDict(FormulaBaseDict):
    kind: Literal["accumulate"]


class CustomFormulaDict(FormulaBaseDict):
    kind: Literal["custom"]
    code: str
    check: CustomCheckDict | None


class NoFormulaDict(FormulaBaseDict):
    kind: Literal["none"]


FormulaDict = (
    RuleFormulaDict
    | JacobianFormulaDict
    | AccumulateFormulaDict
    | CustomFormulaDict
    | NoFormulaDict
)


class Step(BaseModel):
    """One node executed by the autograd engine during a pass, in the engine's order."""

    node: str
    grad_output: TensorView | None
    grad_inputs: list[TensorView | None]
    formula: Formula | None = None


class StepDict(TypedDict):
    node: str
    grad_output: TensorViewDict | None
    grad_inputs: list[TensorViewDict | None]
    formula: FormulaDict | None


class JacobianLeafDict(TypedDict):
    node: str  # the leaf's node id
    jacobian: list[list[Any]]  # J: one row per element of the root
    vjp: Any  # Jᵀv, in the leaf's shape
    verified: bool  # Jᵀv equals what the leaf received in the pass


class PassJacobianDict(TypedDict):
    """For ``y.backward(v)`` on a small vector ``y`` (``explain.jacobians``). A plain
    dict in ``Pass`` too: scripts index it (``pass.jacobian["leaves"]``)."""

    v: list[Any]  # the vector given to backward, flat
    leaves: list[JacobianLeafDict]


class Pass(BaseModel):
    """One backward call (``backward`` or ``torch.autograd.grad``)."""

    index: int
    root: str | None
    gradient: TensorView | None
    steps: list[Step]
    line: int | None = None
    loss: Number | None = Field(default=None, description="The root's value when it is a scalar.")
    recorded: bool = Field(
        default=True, description="False for passes past the recording cap: steps omitted."
    )
    jacobian: PassJacobianDict | None = Field(
        default=None,
        description="For y.backward(v) on a small vector y: J, v and Jᵀv for each leaf.",
    )
    leaf_values: dict[str, TensorView] = Field(
        default_factory=dict,
        description="By node id, each leaf of this pass whose value "
        "when the pass's forward ran differs from its Node's ``value`` (a parameter an "
        "optimizer stepped after an earlier pass): its value then. A leaf not listed had its "
        "Node's value.",
    )


class PassDict(TypedDict):
    index: int
    root: str | None
    gradient: TensorViewDict | None
    steps: list[StepDict]
    line: int | None
    loss: Number | None
    recorded: bool
    jacobian: PassJacobianDict | None
    leaf_values: dict[str, TensorViewDict]


#: Why a value left the graph.
CutReason = Literal["no_grad", "detach", "non_differentiable"]


class CutEdge(BaseModel):
    """A place where a value left the graph: no_grad, detach, .data, or a
    non-differentiable op. Drawn dashed; it never appears in next_functions."""

    source: str
    op: str
    line: int | None
    reason: CutReason


class CutEdgeDict(TypedDict):
    source: str
    op: str
    line: int | None
    reason: CutReason


class Diagnostic(BaseModel):
    code: str
    severity: Literal["error", "warning", "info"]
    message: str
    line: int | None
    node: str | None
    hint: str


class Run(BaseModel):
    """Everything a program did: its graph, its backward passes, its variables."""

    id: str
    status: Literal["ok", "error"]
    device: str
    error: ErrorInfo | None
    stdout: str
    variables: dict[str, Variable]
    nodes: list[Node]
    passes: list[Pass]
    diagnostics: list[Diagnostic]
    timings_ms: dict[str, float]
    cut_edges: list[CutEdge] = Field(default_factory=list)
    losses: list[Number | None] = Field(
        default_factory=list, description="Every pass's root value, recorded or not."
    )

    def __repr__(self) -> str:
        """What a notebook cell or a REPL shows: the Run in a line, not its ~10^5 numbers
        (pydantic's own repr of a 34-node run was 95,905 characters)."""
        error = (
            f"{self.error.type or self.error.code}: {self.error.message}" if self.error else None
        )
        return (
            f"Run(id={self.id!r}, status={self.status!r}, device={self.device!r}, "
            f"nodes={len(self.nodes)}, passes={len(self.passes)}, "
            f"steps={sum(len(p.steps) for p in self.passes)}, "
            f"variables={list(self.variables)!r}, "
            f"diagnostics={[d.code for d in self.diagnostics]!r}, error={error!r})"
        )

    #: The program the Run ran and its file, where this process knows them (kept off the
    #: wire: the standalone viewer shows the program in its editor).
    _program: tuple[str | None, str | None] = PrivateAttr(default=(None, None))

    def to_dot(self) -> str:
        """The graph in DOT (Graphviz), drawn as torchviz draws one: ``dot -Tsvg``."""
        from .exports import to_dot  # (exports reads these models)

        return to_dot(self)

    def to_html(self) -> str:
        """One standalone HTML file: the page's viewer with this Run (graph, steps,
        chain-rule card, nodes table), opening offline from ``file://``."""
        from .web.viewer import standalone_html

        source, file = self._program
        return standalone_html(self.model_dump_json().encode(), source, file)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the Run to ``path``, in the format its suffix names: ``.html`` (the
        standalone viewer), ``.json`` (the API's Run), ``.dot``/``.gv`` (Graphviz)."""
        suffix = os.path.splitext(os.fspath(path))[1].lower()
        writers = {
            ".html": self.to_html,
            ".htm": self.to_html,
            ".json": self.model_dump_json,
            ".dot": self.to_dot,
            ".gv": self.to_dot,
        }
        if suffix not in writers:
            raise ValueError(
                f"cannot save a Run as {suffix or 'a file without a suffix'!r}: use .html, "
                ".json or .dot (an SVG comes from the page's SVG button, or dot -Tsvg)"
            )
        with open(path, "w", encoding="utf-8") as f:
            f.write(writers[suffix]())

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """A notebook's display: the viewer inline (JupyterLab, Notebook 7, VS Code), and
        the one-line repr where HTML is not shown."""
        from .web.viewer import notebook_html

        return {"text/plain": repr(self), "text/html": notebook_html(self.to_html())}


class RunDict(TypedDict):
    """``Run`` as ``engine.run_wire`` returns it (``ErrorInfo`` and ``Diagnostic`` are
    dumped from their models: a run has a few)."""

    id: str
    status: Literal["ok", "error"]
    device: str
    error: dict[str, Any] | None
    stdout: str
    variables: dict[str, VariableDict]
    nodes: list[NodeDict]
    passes: list[PassDict]
    diagnostics: list[dict[str, Any]]
    timings_ms: dict[str, float]
    cut_edges: list[CutEdgeDict]
    losses: list[Number | None]


# ------------------------------------------------------------------ the stream's events
# WS /api/v1/stream sends these in order (shared/API.md); the engine makes all but the
# last, the API the last (``done`` or ``error``). The page receives them a ``batch`` at a
# time unless it asks for one message per event.


class RunEvent(TypedDict):
    type: Literal["run"]
    id: str  # the Run's id, known before anything runs


class NodeEvent(TypedDict):
    type: Literal["node"]
    node: NodeDict  # as the forward pass made it: value filled, grad null


class PassEvent(TypedDict):
    type: Literal["pass"]
    index: int  # the pass, from 0
    root: str | None  # the node backward starts from
    gradient: TensorViewDict | None  # the gradient given to backward, if any
    leaf_values: dict[str, TensorViewDict]  # as Pass.leaf_values


#: ``pass`` is a Python keyword, so this one is declared by call.
StepEvent = TypedDict(
    "StepEvent",
    {
        "type": Literal["step"],
        "pass": int,  # which pass the step belongs to
        "step": StepDict,  # as the engine executed it
    },
)


class StdoutEvent(TypedDict):
    type: Literal["stdout"]
    text: str  # what one print() wrote


class DiagnosticEvent(TypedDict):
    type: Literal["diagnostic"]
    diagnostic: dict[str, Any]  # a Diagnostic, as found


#: What the engine sends while a program runs.
Event = RunEvent | NodeEvent | PassEvent | StepEvent | StdoutEvent | DiagnosticEvent


class DoneEvent(TypedDict):
    type: Literal["done"]
    run: RunDict  # the whole Run, as POST /runs answers it


class NodePatch(TypedDict):
    """A node of a ``done`` delta that the stream sent already."""

    streamed: str  # the id of the node the stream sent: this node is that one...
    changed: dict[str, Any]  # ...with these of its fields (a NodeDict's) as they are now


class DoneDeltaEvent(TypedDict):
    """``done`` on ``WS /api/v1/stream?done=delta``: the Run less what the stream carried.
    Its ``nodes`` are NodeDicts or NodePatches, in the Run's order; a pass whose
    ``steps`` is null has the steps the stream sent for it (``delta.rebuild``)."""

    type: Literal["done"]
    delta: dict[str, Any]  # the Run, with nodes and steps as above


class ErrorEvent(TypedDict):
    type: Literal["error"]
    error: dict[str, Any]  # a RejectedError: why the program was not run
    errors: list[dict[str, Any]]  # every reason found, by line (one for a limit)


class BatchEvent(TypedDict):
    type: Literal["batch"]
    events: list[dict[str, Any]]  # the events the engine flushed together, in order


class ImportedRun(BaseModel):
    """The answer to ``POST /api/v1/runs/import``: where the Run is kept now."""

    id: str = Field(description="The Run's id here (GET /api/v1/runs/{id}).")
    url: str = Field(description="The page, opened on this Run.")


class RunRequest(BaseModel):
    """The body of ``POST /api/v1/runs`` and the first message on the stream."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source": "x = torch.ones(3, requires_grad=True)\n"
                    "z = (3*(x+2)**2).mean()\nz.backward()",
                    "device": "cpu",
                    "seed": 0,
                }
            ]
        },
    )

    source: str
    device: Literal["cpu", "cuda", "auto"] | None = Field(
        default=None,
        description="Where factory functions create tensors; omitted: the "
        "server's --device (cpu unless the server was started otherwise).",
    )
    seed: int = Field(default=0, ge=0, le=2**63 - 1)


class CheckRequest(BaseModel):
    """The body of ``POST /api/v1/runs/{id}/check``: which gradient to check numerically."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={"examples": [{"node": "n1", "pass": 0, "elements": 16}]},
    )

    node: str = Field(
        max_length=32,
        description="A leaf's node id (its gradient in that "
        "pass), or any other node's (its step: each input's gradient).",
    )
    pass_: int | None = Field(
        default=None,
        alias="pass",
        ge=0,
        description=("The backward pass; default: the first one that reached the node."),
    )
    elements: int = Field(
        default=16,
        ge=1,
        le=64,
        description=(
            "How many elements of each gradient to check (evenly spaced over the tensor)."
        ),
    )


class CheckedElement(BaseModel):
    index: list[int]
    analytic: Number = Field(description="What autograd computed for this element.")
    numeric: Number = Field(
        description="(f(x + eps) - f(x - eps)) / (2 eps), f the pass's "
        "output (times the pass's gradient) or, for a step, the node's "
        "output times its upstream gradient."
    )
    kink: bool = Field(
        default=False,
        description=(
            "The one-sided differences disagree: the function has a kink here (ReLU at 0, a max "
            "over equal values), where a finite difference cannot judge; left out of ``ok``."
        ),
    )
    ok: bool | None = Field(
        default=None,
        description=(
            "Within ``tolerance`` of the finite difference, allowing for the rounding of the "
            "function's values in the type the differences ran in (always true at a kink)."
        ),
    )


class CheckedTensor(BaseModel):
    name: str = Field(description="The leaf's name, or the step's input (``input 0``...).")
    shape: list[int]
    elements: list[CheckedElement]
    max_error: Number = Field(
        description="max |analytic - numeric| over the checked elements (kinks left out)."
    )
    ok: bool = Field(
        description="Every checked element within ``tolerance`` (relative to the "
        "largest magnitude, absolute below 1)."
    )
    matches_run: bool | None = Field(
        default=None,
        description=(
            "Whether the ``analytic`` column is the Run's own gradient here (what the leaf "
            "received in that pass, or the step's downstream gradient for this input), value for "
            "value (statistics past 64 elements); null where the Run holds none to compare "
            "(a layer's parameter inside a step). The check's ``ok`` is false when it is false."
        ),
    )


class GradCheck(BaseModel):
    """A finite-difference check of one gradient: the program is run again, with its seed
    and in its own types (the run the user sees), and each checked element of the gradient
    is compared with central differences of the function that produced it."""

    model_config = ConfigDict(populate_by_name=True)

    run_id: str
    node: str
    kind: Literal["leaf", "step"]
    pass_: int = Field(alias="pass")
    dtype: str = Field(description="The floating-point type the check ran in.")
    eps: float
    tolerance: float
    checked: list[CheckedTensor]
    ok: bool
    note: str = ""


class FullTensor(BaseModel):
    """Every element of a tensor, for pictures whose every pixel can be read."""

    shape: list[int]
    dtype: str
    values: list[Number] = Field(
        description="Row-major, flat; float32 elements as the "
        "float64 numbers equal to them; non-finite ones as 'nan', "
        "'inf', '-inf'."
    )


class NodeTensors(BaseModel):
    """``GET /api/v1/runs/{id}/tensors/{node}``: one node's tensors in full, where the Run
    keeps values to 64 elements. The program runs again (same seed, same node ids)."""

    model_config = ConfigDict(populate_by_name=True)

    node: str
    pass_: int = Field(alias="pass", description="The pass (from 0) they belong to.")
    value: FullTensor | None = Field(
        description="The node's output (a leaf: its value when this pass's forward ran)."
    )
    grad: FullTensor | None = Field(
        description="The gradient of the node's output in this "
        "pass; null when the pass did not reach it."
    )
    saved: dict[str, FullTensor] = Field(
        description="What the node saved for backward (a "
        "convolution's input and weight), as Node.saved."
    )
    grad_inputs: list[FullTensor | None] = Field(
        default_factory=list,
        description="What the node's step sent to each of its inputs in "
        "this pass (Step.grad_inputs), in full; empty when the pass did not reach it.",
    )
    local: list[FullTensor | None] = Field(
        default_factory=list,
        description="For an op that acts element by element (unary "
        "functions, pow, add, mul, div on operands of one shape, sum and mean): each input's "
        "local derivative, element by element, in float64, from the node's verified rule; "
        "null for an input it does not apply to (a broadcast operand).",
    )
    spread: FullTensor | None = Field(
        default=None,
        description="With ``local``: the upstream gradient as it reaches each "
        "input element (a sum or mean copies it to every element it reduced), so that "
        "spread × local = grad_inputs element by element.",
    )
    attrs: dict[str, Any] = Field(
        default_factory=dict,
        description="What the node saved besides tensors: numbers, "
        "flags and lists of them (a convolution's stride, padding, dilation and groups; "
        "addmm's alpha and beta), by the name PyTorch gives them.",
    )


class Example(BaseModel):
    id: str
    title: str
    description: str
    source: str


class RunProgram(BaseModel):
    """``GET /api/v1/runs/{id}/program``: the program a kept run ran."""

    run_id: str
    source: str | None = Field(description="As it was sent; null for an imported Run.")


class Readiness(BaseModel):
    """GET /api/v1/ready, for a load balancer or Kubernetes' readiness probe: whether this
    replica can serve now (503 with the reason when its shared store does not answer).
    /api/v1/health says the process is alive."""

    status: Literal["ready", "not_ready"]
    reason: str | None = Field(default=None, description="Why not, when not ready.")


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    torch: str
    devices: list[str]
