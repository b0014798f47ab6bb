"""What each autograd node was computed from: the ATen call behind every grad_fn.

A grad_fn tells what its backward needs, not what its forward took: ``x + 2`` makes an
``AddBackward0`` that keeps neither the 2 nor ``x``. Recomputing the forward in numpy
needs the call itself, so while the program runs again a dispatch mode sees every ATen
op below autograd (``F.linear`` arrives as ``t`` and ``addmm``, one op per node) and
files the call, with its tensor arguments as operands, in the metadata of the grad_fn
autograd then gives the result. The record lives and dies with its node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from ...tracing.recorder import metadata

#: The key under which a grad_fn's metadata holds its OpRecord.
KEY = "chainlens_op"


@dataclass(eq=False)
class Operand:
    """A tensor argument of a recorded call, as the numpy code will refer to it."""

    kind: Literal["node", "leaf", "const"]
    #: node: the argument's grad_fn; leaf: the leaf tensor; const: a copy of its value
    ref: Any
    shape: tuple[int, ...]
    dtype: torch.dtype
    #: which output of a multi-output node (``chunk``'s pieces)
    output_nr: int = 0
    #: const: the program's own tensor, to find the name it goes by
    origin: torch.Tensor | None = None


@dataclass
class OpRecord:
    """One ATen call that made a node: ``op`` as ``name.overload`` (``add.Tensor``), the
    arguments with Operands in place of tensors, and each output's shape."""

    op: str
    args: list[Any]
    kwargs: dict[str, Any]
    shapes: list[tuple[int, ...]]
    dtype: torch.dtype


def _operand(t: torch.Tensor) -> Operand:
    shape, dtype = tuple(t.shape), t.dtype
    if t.grad_fn is not None:
        return Operand("node", t.grad_fn, shape, dtype, t.output_nr)
    if t.requires_grad:
        return Operand("leaf", t, shape, dtype)
    return Operand("const", t.detach().clone(), shape, dtype, origin=t)


class OpTape(TorchDispatchMode):
    """Files each differentiable call's record with the node it produced.

    Autograd sets a result's grad_fn only after the call returns from dispatch, so a
    call waits in ``_pending`` until the next one (or ``flush``)."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[tuple[OpRecord, Any]] = []

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        self.flush()
        tensors = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)]
        if not torch.is_grad_enabled() or not any(t.requires_grad for t in tensors):
            return func(*args, **kwargs)
        # operands are taken before the call: an in-place op gives its input a new grad_fn
        rec_args, rec_kwargs = tree_map(
            lambda a: _operand(a) if isinstance(a, torch.Tensor) else a, (list(args), kwargs)
        )
        out = func(*args, **kwargs)
        outs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        rec = OpRecord(
            func.__name__,
            rec_args,
            rec_kwargs,
            [tuple(t.shape) for t in outs],
            outs[0].dtype if outs else torch.float32,
        )
        self._pending.append((rec, out))
        return out

    def flush(self) -> None:
        """File the calls whose results now have their grad_fn."""
        pending, self._pending = self._pending, []
        for rec, out in pending:
            for t in tree_flatten(out)[0]:
                fn = t.grad_fn if isinstance(t, torch.Tensor) else None
                if fn is not None and KEY not in metadata(fn):
                    metadata(fn)[KEY] = rec
                    break
