"""The user's own code, observed as it runs in its own process (``chainlens.record``).

A program run by chainlens reaches torch only through the interpreter's call gate; code
recorded in the user's process calls torch directly, so the same recorder is fed from
a ``TorchFunctionMode`` (every torch function and tensor method called from Python) and
from global ``nn.Module`` forward hooks (module paths). Each node's line is the line of
the innermost frame that is the user's: the first one out from the call that is not
torch, chainlens or the standard library.

Library modules (``nn.Linear``, ``nn.LSTM``) are recorded as the gate records them, one
call each named for its class, with the children a library container calls; the ops
inside them are not labelled one by one but found by walking back from their outputs.
"""

from __future__ import annotations

import contextlib
import os
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from torch.nn.modules.module import (
    register_module_forward_hook,
    register_module_forward_pre_hook,
)
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)
from torch.overrides import TorchFunctionMode

from ..errors import error_context
from .calls import before_call, record_cuts
from .recorder import Recorder

#: Frames in these files are not the user's: a node's line is never inside torch.
_LIBRARY_DIRS = tuple(
    str(Path(p).resolve()) + os.sep
    for p in (
        Path(torch.__file__).parent,
        Path(__file__).parent.parent,  # chainlens
        sysconfig.get_paths()["stdlib"],
    )
)

#: Backward calls by the function torch hands the mode, as ``BackwardCalls`` names them.
_BACKWARD = {
    torch.Tensor.backward: "backward",
    torch.autograd.backward: "autograd.backward",
    torch.autograd.grad: "autograd.grad",
}

#: Called for each backward call: (op, the call, its arguments, the tensor it was called
#: on) -> its result (``backward.BackwardCalls``).
Backward = Callable[[str, Callable[..., Any], tuple, dict, Any], Any]


def is_library_code(code: Any) -> bool:
    """Whether code is torch's, chainlens's or the standard library's."""
    name = code.co_filename
    return name.startswith("<frozen") or os.path.realpath(name).startswith(_LIBRARY_DIRS)


def user_frame(
    frame: FrameType | None, is_library: Callable[[Any], bool] = is_library_code
) -> FrameType | None:
    """``frame`` or the first frame out from it that is the user's code."""
    while frame is not None and is_library(frame.f_code):
        frame = frame.f_back
    return frame


class CallObserver(TorchFunctionMode):
    """Feeds the recorder from torch's own dispatch, while installed (``with``)."""

    def __init__(
        self,
        recorder: Recorder,
        backward: Backward,
        on_nonleaf_grad: Callable[[torch.Tensor, int | None], None],
    ) -> None:
        super().__init__()
        self.recorder = recorder
        self.backward = backward
        self.on_nonleaf_grad = on_nonleaf_grad
        #: The tensor the code last changed in place (read by diagnostics).
        self.last_inplace: Any = None
        #: Inside a library module's forward, or a custom Function's, for this many
        #: levels: nothing is labelled there (see the module docstring).
        self.opaque = 0
        self._library: dict[Any, bool] = {}
        self._library_modules: list[bool] = []
        self._handles: list[Any] = []

    # ------------------------------------------------------------- where
    def is_library(self, code: Any) -> bool:
        """``is_library_code``, cached per code object."""
        lib = self._library.get(code)
        if lib is None:
            lib = self._library[code] = is_library_code(code)
        return lib

    def locate(self) -> FrameType | None:
        """Point the recorder's line and file at the innermost frame of the user's code
        now, and give it."""
        frame = user_frame(sys._getframe(1), self.is_library)
        rec = self.recorder
        if frame is None:
            rec.line = rec.file = None
        else:
            rec.line, rec.file = frame.f_lineno, frame.f_code.co_filename
        return frame

    # ------------------------------------------------------------- modules
    def install_module_hooks(self) -> None:
        """Every module's forward, entered and left, and every optimizer's step (removed
        by ``remove_module_hooks``)."""
        self._handles = [
            register_module_forward_pre_hook(self._module_enter),
            register_module_forward_hook(self._module_exit, always_call=True),
            register_optimizer_step_pre_hook(self._step_enter),
            register_optimizer_step_post_hook(self._step_exit),
        ]

    def _step_enter(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        """An optimizer steps the parameters in place: the values recorded that share
        their storage are kept first, and its own arithmetic is not the user's graph (a
        program's ``step()`` is one call too)."""
        if self.recorder.paused:
            return
        with self.aside():
            before_call(self.recorder, "step", optimizer, args, kwargs)
        self.opaque += 1

    def _step_exit(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        if not self.recorder.paused:
            self.opaque -= 1

    def remove_module_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @contextlib.contextmanager
    def aside(self) -> Iterator[None]:
        """The recorder's own torch calls (a leaf's value copied, compared), made from a
        hook, out of the mode's sight: inside ``__torch_function__`` torch turns the mode
        off itself, but a module hook or a wrapper runs with it on."""
        self.opaque += 1
        try:
            yield
        finally:
            self.opaque -= 1

    def _module_enter(self, module: torch.nn.Module, args: tuple) -> None:
        rec = self.recorder
        if rec.paused:
            return
        with self.aside():
            frame = self.locate()
            name = None
            if not rec.module_stack and frame is not None:
                name = self._name_of(module, frame)
            rec.module_enter(module, name)
        library = type(module).__module__.startswith("torch.")
        self._library_modules.append(library)
        self.opaque += library

    def _name_of(self, module: torch.nn.Module, frame: FrameType) -> str | None:
        """An outermost module named as the user's code names it: ``net`` for ``net(x)``,
        ``net.fc1`` for ``net.fc1(x)`` (a module inside one of the frame's modules)."""
        scope = frame.f_locals
        for key, value in scope.items():
            if value is module:
                return key
        for key, value in scope.items():
            if isinstance(value, torch.nn.Module) and value._modules:
                for path, inner in value.named_modules():
                    if inner is module:
                        return f"{key}.{path}"
        return None

    def _module_exit(self, module: torch.nn.Module, args: tuple, output: Any) -> None:
        if self.recorder.paused or not self._library_modules:
            return
        self.opaque -= self._library_modules.pop()
        with self.aside():
            self.recorder.module_exit(module, output)

    # ------------------------------------------------------------- calls
    def __torch_function__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        rec = self.recorder
        if rec.paused or self.opaque:
            return func(*args, **kwargs)
        backward = _BACKWARD.get(func)
        if backward is not None:
            frame = self.locate()
            if frame is not None:
                self.name_locals(frame)
            if backward == "backward":
                tensor = args[0]
                return self.backward(
                    backward, lambda *a, **k: func(tensor, *a, **k), tuple(args[1:]), kwargs, tensor
                )
            return self.backward(backward, func, tuple(args), kwargs, None)
        qualname = getattr(func, "__qualname__", "")
        if qualname == "getset_descriptor.__get__":  # an attribute read (x.grad, x.T, x.data)
            return self._attribute(func, args)
        if qualname.endswith("__set__"):
            return func(*args, **kwargs)
        op = func.__name__
        method = qualname.startswith(("TensorBase.", "Tensor."))
        target = args[0] if method and args and isinstance(args[0], torch.Tensor) else None
        self.locate()
        inplace, changed = before_call(rec, op, target, args, kwargs)
        if changed is not None:
            self.last_inplace = changed
        try:
            result = func(*args, **kwargs)
        except Exception as e:
            context = error_context(e)
            if context.op is None:
                context.op = op
                context.operand = next((a for a in args if isinstance(a, torch.Tensor)), None)
            raise
        if inplace and changed is not None:  # (``changed`` is ``target``, changed in place)
            rec.record_inplace(changed, op)
        else:
            rec.record_outputs(result, op)
            record_cuts(rec, result, op, target, args)
        if (op == "requires_grad_" or kwargs.get("requires_grad")) and isinstance(
            result, torch.Tensor
        ):
            self._new_leaf(result)
        return result

    def _new_leaf(self, t: torch.Tensor) -> None:
        """A leaf made to require grad (``torch.randn(..., requires_grad=True)``,
        ``w.requires_grad_()``): its node from where it was made, as a program's
        assignment makes it, not from its first use."""
        if t.requires_grad and t.grad_fn is None:
            with self.aside():
                self.recorder.leaf_id(t)

    def name_locals(self, frame: FrameType) -> None:
        """The user's names for the tensors in ``frame``, on their nodes (a program's
        names come from its assignments; the user's code is only seen at its calls)."""
        rec = self.recorder
        with self.aside():
            for name, value in frame.f_locals.items():
                if isinstance(value, torch.Tensor) and (value.requires_grad or value.grad_fn):
                    rec.bind_name(name, value)

    def _attribute(self, func: Any, args: tuple) -> Any:
        """An attribute read: ``.data`` leaves the graph (a cut), ``.grad`` of a non-leaf
        is a classic mistake; the rest (``.T``, ``.shape``) are labelled from their nodes."""
        result = func(*args)
        name = func.__self__.__name__
        tensor = args[0] if args else None
        if not isinstance(tensor, torch.Tensor):
            return result
        if name == "data":
            self.locate()
            record_cuts(self.recorder, result, "data", tensor, args)
        elif name == "grad" and tensor.grad_fn is not None and not tensor.retains_grad:
            self.locate()
            self.on_nonleaf_grad(tensor, self.recorder.line)
        return result
