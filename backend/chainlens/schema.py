"""The wire schema: every structure chainlens sends or receives, as pydantic models.

This is the one module that knows the shape of the JSON in ``shared/API.md``;
the engine builds these models, the API serves them, the client parses them.
Field names are the contract: add fields, never rename or remove them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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


class Formula(BaseModel):
    model_config = ConfigDict(extra="allow")
    latex: str
    letters: dict[str, int | str] | None = Field(
        default=None,
        description="Which tensor each single letter of ``latex`` (and of "
        "``steps``) stands for: an input's position in the node's ``inputs``, or \"out\" for "
        "the node's own output. The page writes the program's names in their place.",
    )


class Step(BaseModel):
    """One node executed by the autograd engine during a pass, in the engine's order."""

    node: str
    grad_output: TensorView | None
    grad_inputs: list[TensorView | None]
    formula: Formula | None = None


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
    jacobian: dict[str, Any] | None = Field(
        default=None,
        description="For y.backward(v) on a small vector y: {'v', 'leaves': "
        "[{'node', 'jacobian' (one row per element of y), 'vjp' (Jᵀv), 'verified' (Jᵀv "
        "equals what the leaf received)}]}.",
    )
    leaf_values: dict[str, TensorView] = Field(
        default_factory=dict,
        description="By node id, each leaf of this pass whose value "
        "when the pass's forward ran differs from its Node's ``value`` (a parameter an "
        "optimizer stepped after an earlier pass): its value then. A leaf not listed had its "
        "Node's value.",
    )


class CutEdge(BaseModel):
    """A place where a value left the graph: no_grad, detach, .data, or a
    non-differentiable op. Drawn dashed; it never appears in next_functions."""

    source: str
    op: str
    line: int | None
    reason: Literal["no_grad", "detach", "non_differentiable"]


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


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    torch: str
    devices: list[str]
