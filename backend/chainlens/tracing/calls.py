"""One library call, as the recorder sees it: what it will change in place (snapshotted
before), and where a value that required grad came out without a gradient (a cut).

Shared by the two ways a call is observed: the interpreter's call gate (a program run
by chainlens) and the torch-function mode of ``chainlens.record`` (the user's own code).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .recorder import Recorder

#: The operators that change the tensor they are applied to (``x[i] = v``, ``x += 1``).
INPLACE_OPERATORS = frozenset({"setitem", "iadd", "isub", "imul", "itruediv", "ipow"})


def changed_by(op: str, target: Any, args: Sequence[Any], kwargs: dict) -> list[torch.Tensor]:
    """The tensors a call that is not a tensor's own method changes in place: a function's
    first argument (``nn.init.zeros_(w)``, ``torch.sigmoid_(x)``), an ``out=`` tensor, an
    optimizer's parameters (``step``), a module's parameters and buffers
    (``load_state_dict``). A recorded value may be a view of one (``w.t()``)."""
    if isinstance(target, torch.optim.Optimizer):
        return [p for group in target.param_groups for p in group["params"]] if op == "step" else []
    if target is not None:  # a module
        return [*target.parameters(), *target.buffers()] if op == "load_state_dict" else []
    changed = []
    if op.endswith("_") and not op.endswith("__") and args and isinstance(args[0], torch.Tensor):
        changed.append(args[0])
    out = kwargs.get("out") if kwargs else None
    changed += [
        t
        for t in (out if isinstance(out, (tuple, list)) else (out,))
        if isinstance(t, torch.Tensor)
    ]
    return changed


def before_call(
    rec: Recorder, op: str, target: Any, args: Sequence[Any], kwargs: dict
) -> tuple[bool, torch.Tensor | None]:
    """Before the call runs: whether it changes its tensor ``target`` in place, and the
    tensor it changes (if any), whose recorded values are snapshotted now."""
    inplace = isinstance(target, torch.Tensor) and (
        (op.endswith("_") and not op.endswith("__")) or op in INPLACE_OPERATORS
    )
    if inplace:
        rec.before_inplace(target)
        return True, target
    changed = None
    if target is None or isinstance(target, (torch.optim.Optimizer, torch.nn.Module)):
        for changed in changed_by(op, target, args, kwargs):
            rec.before_inplace(changed)
    return False, changed


def record_cuts(rec: Recorder, result: Any, op: str, target: Any, args: Sequence[Any]) -> None:
    """After a call that is not in place: where its result left the graph."""
    if isinstance(result, torch.Tensor) and result.requires_grad:
        return  # (the common case: no value left the graph here)
    if torch.is_tensor(target) and target.requires_grad:
        rec.record_cut([target], result, op, "detach" if op in ("detach", "data") else None)
    elif args:
        ins = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
        if ins:
            rec.record_cut(ins, result, op)
