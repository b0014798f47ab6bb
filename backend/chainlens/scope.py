"""What a run sets for the whole process, and puts back when it ends.

A worker serves other runs after this one, and ``chainlens.run`` returns to its caller:
each piece of process-wide state a run changes is set in one ``with`` and undone on the
way out, as torchview's Recorder does in ``__enter__``/``__exit__``, never by a
matching call somewhere further down.
"""

from __future__ import annotations

import contextlib
import gc
import random
import sys
import warnings
from collections.abc import Iterator

import numpy as np
import torch


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off, then back as it was. Collections while thousands
    of autograd nodes are made cost 4x the hooks themselves (each walks torch's whole
    object graph), and validating a Run's ~10^5 small objects tripled: a run is short."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def torch_globals() -> Iterator[None]:
    """What a program may change in torch for the whole process (grad mode, anomaly
    detection, print options, the default dtype and device), put back as it was."""
    grad = torch.is_grad_enabled()
    anomaly = torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()
    printing = torch._tensor_str.get_printoptions()
    dtype = torch.get_default_dtype()
    device = torch.get_default_device()
    try:
        yield
    finally:
        torch.set_grad_enabled(grad)
        torch.set_anomaly_enabled(*anomaly)
        torch.set_printoptions(**printing)
        torch.set_default_dtype(dtype)
        if torch.get_default_device() != device:
            torch.set_default_device(None)


@contextlib.contextmanager
def seeded(seed: int, device: str) -> Iterator[None]:
    """The run's seed in every generator a program may draw from, and each generator's
    state put back after: a caller of ``chainlens.run`` draws on as if no run had
    happened. (torch.manual_seed also queues lazy seeding for CUDA, MTIA and XPU,
    formatting a stack trace for each, 1.5 ms a run: this seeds what the run can use,
    the same way.)"""
    cuda = device.startswith("cuda")
    states = (
        torch.default_generator.get_state(),
        torch.cuda.get_rng_state_all() if cuda else None,
        np.random.get_state(),
        random.getstate(),
    )
    torch.default_generator.manual_seed(seed)
    if cuda:
        torch.cuda.manual_seed_all(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    try:
        yield
    finally:
        torch.default_generator.set_state(states[0])
        if states[1] is not None:
            torch.cuda.set_rng_state_all(states[1])
        np.random.set_state(states[2])
        random.setstate(states[3])


@contextlib.contextmanager
def deep_recursion(limit: int = 6000) -> Iterator[None]:
    """Python's recursion limit raised for the interpreter's own frames (a program's 50
    levels, ``max_recursion_depth``, take several each), then put back."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


class RunScope:
    """Everything one run sets for the process, in one place: entered for the whole run
    (the collector off, the generators seeded), and ``program()`` inside it while the
    program itself runs (the recursion limit, the default device, what the program may
    change in torch, warnings). The Run is assembled after ``program()`` has put torch
    back (summaries read tensors under the process's own print options and dtype) and
    before the collector returns (~10^5 small objects)."""

    def __init__(self, device: str, seed: int) -> None:
        self.device = device
        self.seed = seed
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> RunScope:
        self._stack.enter_context(gc_paused())
        self._stack.enter_context(seeded(self.seed, self.device))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @contextlib.contextmanager
    def program(self) -> Iterator[None]:
        """While the program runs: gradients on, every warning silenced (the diagnostics
        turn the ones they explain back on inside), and on a GPU its factory functions'
        default device. (``torch.device(...)`` installs a TorchFunctionMode that taxes
        every op: the CPU needs none.)"""
        device = torch.device(self.device) if self.device != "cpu" else contextlib.nullcontext()
        with deep_recursion(), device, torch_globals(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.set_grad_enabled(True)
            yield
