"""What the engine hears from a running program, handed to the interpreter and its call
gate when they are made (never set on them afterwards): each is None when nobody listens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class ProgramHooks:
    #: A backward the program asks for (``loss.backward()``, ``autograd.grad``), with the
    #: op, the call, its arguments and its tensor: the engine runs it and records the pass.
    on_backward: Callable[[str, Callable[..., Any], tuple, dict, Any], Any]
    #: Before each statement (the stream sends events that waited too long; a re-run's
    #: probe stops where it was asked to).
    on_statement: Callable[[], None] | None = None
    #: A name that held a leaf now holds a computed tensor (the name, the leaf, the line).
    on_leaf_overwritten: Callable[[str, torch.Tensor, int | None], None] | None = None
    #: ``.grad`` read on a tensor that is not a leaf and keeps no gradient (it, the line).
    on_nonleaf_grad: Callable[[torch.Tensor, int | None], None] | None = None
    #: A hook replaced a gradient (how the program named the tensor, its node, the line
    #: that registered the hook).
    on_hook_changed: Callable[[str, str | None, int | None], None] | None = None
    #: After each call of a program-defined autograd.Function (to check its backward).
    on_custom_apply: Callable[[Callable[..., Any], list[Any], Any], None] | None = None
    #: Every library call that made a new tensor (a gradient check captures one).
    on_result: Callable[[Callable[..., Any], Sequence[Any], dict, Any], None] | None = None
