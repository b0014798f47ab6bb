"""The call gate: every call from a program into torch, numpy or nn passes here.

One place to count operations, hold what a call would allocate or compute against the
limits before it runs (the price comes from ``estimates``: ``torch.ones(10**6, 10**6)``
is refused, not attempted), take value snapshots before in-place ops, and hand outputs
to the recorder.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..errors import LimitExceeded, error_context
from ..settings import Settings
from ..tracing.calls import before_call, record_cuts
from ..tracing.recorder import Recorder
from .estimates import (
    JACOBIANS,
    estimate,
    first_operand_elements,
    layer_parameters,
    module_elements,
    module_flops,
    str_result_length,
)
from .hooks import ProgramHooks
from .stdlib import STDLIB_NAMES

BACKWARD_OPS = frozenset({"backward", "autograd.backward", "autograd.grad"})


def _custom_function(fn: Any) -> bool:
    """Whether ``fn`` (not a module: a missing attribute goes through
    ``Module.__getattr__``) is the ``apply`` of an autograd.Function the program defined."""
    owner = getattr(fn, "__self__", None)
    return (
        isinstance(owner, type)
        and issubclass(owner, torch.autograd.Function)
        and getattr(owner, "chainlens_user", False)
    )


class Gate:
    """Checks limits around library calls and feeds the recorder."""

    def __init__(
        self,
        settings: Settings,
        recorder: Recorder,
        hooks: ProgramHooks,
    ) -> None:
        self.settings = settings
        self.recorder = recorder
        self.hooks = hooks
        self.ops = 0
        self.flops = 0.0
        self.line: int | None = None
        self.last_inplace: Any = None
        self.parameters = 0
        self.live = 0
        self._live_refs: dict[int, weakref.ref] = {}

    def _limit(self, name: str, what: str) -> LimitExceeded:
        return LimitExceeded(name, getattr(self.settings, name), what, self.line)

    def price(
        self, op: str, target: Any, args: Sequence[Any], kwargs: dict, fn: Any = None
    ) -> tuple[int, float]:
        """What ``check`` holds against the limits: the estimate, a library layer's call
        priced by its parameters' use as well (its input's size alone does not tell)."""
        module, dot, _ = op.partition(".")
        if dot and module in STDLIB_NAMES:
            # the standard library prices its own sizes (stdlib.py): read as a tensor op,
            # itertools.repeat(1, 10**8) was "a tensor of 100,000,000 elements"
            return 0, 0.0
        if isinstance(fn, torch.nn.Sequential):  # each of its layers is priced as it is
            return first_operand_elements(args, kwargs), 0.0  # called (check_library_layer)
        n, flops = estimate(op, target, args, kwargs, fn)
        if isinstance(fn, torch.nn.Module):
            n = max(n, module_elements(fn, args))
            flops = max(flops, module_flops(fn, args))
        return n, flops

    def check_library_layer(self, module: torch.nn.Module, args: tuple) -> None:
        """A layer an ``nn.Sequential`` calls itself, out of the interpreter's sight: priced
        on its real input before it runs, as a call the program made would be (the
        recorder's forward pre-hook on the container's children calls this, handed to it
        with the module called)."""
        self.check(type(module).__name__, None, list(args), {}, module)

    def check(
        self, op: str, target: Any, args: Sequence[Any], kwargs: dict, fn: Any = None
    ) -> None:
        self.ops += 1
        if self.ops > self.settings.max_ops:
            raise self._limit("max_ops", "the program made too many library calls")
        for a in args:  # a library walking range(10**9) item by item: refused, not waited on
            if type(a) is range:
                self.seq_len(len(a), f"{op}()'s range")
        if isinstance(fn, type) and issubclass(fn, torch.nn.Module):
            n = layer_parameters(fn, args, kwargs)
            if n > self.settings.max_layer_parameters:
                raise self._limit(
                    "max_layer_parameters", f"nn.{fn.__name__} would have {n:,} parameters"
                )
            self.add_parameters(n, "the program's layers")
        if isinstance(target, str):
            self.seq_len(str_result_length(op, target, args, kwargs), f"str.{op}()")
        n, flops = self.price(op, target, args, kwargs, fn)
        if op.rsplit(".", 1)[-1] in JACOBIANS:
            if n > self.settings.max_jacobian_elements:
                raise self._limit(
                    "max_jacobian_elements", f"{op} would build a Jacobian of about {n:,} entries"
                )
        elif n > self.settings.max_tensor_elements:
            raise self._limit("max_tensor_elements", f"{op} would make a tensor of {n:,} elements")
        if flops > self.settings.max_flops_per_op:
            raise self._limit("max_flops_per_op", f"{op} would take about {flops:.3g} operations")
        self.flops += flops
        if self.flops > self.settings.max_flops:
            raise self._limit("max_flops", "the program's operations add up to too much work")

    def call(
        self,
        fn: Callable,
        args: Sequence[Any],
        kwargs: dict,
        op: str,
        target: Any = None,
        callee: str | None = None,
    ) -> Any:
        """Run one library call: check, call, record. ``callee`` is how the program named
        a module it called (``net``), which names that module's nodes."""
        self.check(op, target, args, kwargs, fn)
        rec = self.recorder
        if rec.paused:  # the engine's own checks: count against the limits, record nothing
            return fn(*args, **kwargs)
        if op in BACKWARD_OPS:
            return self.hooks.on_backward(op, fn, tuple(args), kwargs, target)
        inplace, changed = before_call(rec, op, target, args, kwargs)
        if changed is not None:
            self.last_inplace = changed
        module = isinstance(fn, torch.nn.Module)
        custom = not module and _custom_function(fn)
        try:
            if isinstance(fn, torch.nn.Module):  # (``module``, narrowed for the checker)
                depth = len(rec.module_stack)
                rec.module_enter(fn, callee, self.check_library_layer)
                try:
                    result = fn(*args, **kwargs)
                    rec.record_outputs(result, op)  # (labelled inside the module: its path)
                finally:
                    del rec.module_stack[depth:]
            elif custom:
                with rec.pause():  # its forward runs with grad off: no nodes, and no cuts
                    result = fn(*args, **kwargs)
            else:
                result = fn(*args, **kwargs)
        except Exception as e:
            context = error_context(e)
            if context.op is None:  # the innermost call: what a diagnostic names,
                context.op = op  # and the tensor it was given
                context.operand = next(
                    (a for a in (target, *args) if isinstance(a, torch.Tensor)), None
                )
            raise
        self._check_result(result, op)
        if custom and self.hooks.on_custom_apply is not None:
            self.hooks.on_custom_apply(fn, list(args), result)
        if inplace:
            rec.record_inplace(target, op)
        else:
            if not module:
                rec.record_outputs(result, op)
            if self.hooks.on_result is not None:
                self.hooks.on_result(fn, args, kwargs, result)
            record_cuts(rec, result, op, target, args)
        return result

    def _check_result(self, result: Any, op: str) -> None:
        if isinstance(result, (torch.Tensor, np.ndarray)):
            n = result.numel() if isinstance(result, torch.Tensor) else result.size
            if n > self.settings.max_tensor_elements:
                raise self._limit("max_tensor_elements", f"{op} made a tensor of {n:,} elements")
            if n >= 4096 and isinstance(result, torch.Tensor):
                self._track_live(result, n)

    def _track_live(self, t: torch.Tensor, n: int) -> None:
        """Elements of large tensors still referenced: many tensors each under the
        per-tensor cap must not add up past ``max_live_elements``."""
        key = id(t)
        if key in self._live_refs:
            return
        self.live += n

        def gone(_: weakref.ref, key: int = key, n: int = n) -> None:
            self.live -= n
            self._live_refs.pop(key, None)

        self._live_refs[key] = weakref.ref(t, gone)
        if self.live > self.settings.max_live_elements:
            raise self._limit(
                "max_live_elements", f"the program holds {self.live:,} tensor elements at once"
            )

    # -------------------------------------------------------- Python numbers
    def int_pow(self, base: int, exp: int) -> None:
        if exp > 0 and abs(base) > 1:
            bits = exp * math.log2(abs(base))
            if bits > self.settings.max_int_bits:
                raise self._limit(
                    "max_int_bits", f"{base} ** {exp} would have about {bits:,.0f} bits"
                )

    def int_bits(self, bits: int, what: str) -> None:
        if bits > self.settings.max_int_bits:
            raise self._limit("max_int_bits", f"{what} would have about {bits:,} bits")

    def add_parameters(self, n: int, what: str) -> None:
        """``n`` more parameters (a layer made, a module copied)."""
        self.parameters += n
        if self.parameters > self.settings.max_parameters:
            raise self._limit(
                "max_parameters",
                f"{what} would bring the program's layers to {self.parameters:,} parameters",
            )

    def copied_elements(self, n: int, what: str) -> None:
        """``n`` tensor elements about to be copied at once (``copy.deepcopy``)."""
        if self.live + n > self.settings.max_live_elements:
            raise self._limit(
                "max_live_elements",
                f"{what} would copy {n:,} tensor elements to the {self.live:,} the program holds",
            )

    def seq_len(self, n: int, what: str) -> None:
        if n > self.settings.max_sequence_length:
            raise self._limit("max_sequence_length", f"{what} would hold {n:,} items")
