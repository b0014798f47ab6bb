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


def seed_everything(seed: int, device: str) -> None:
    """The run's seed in every generator a program may draw from. (torch.manual_seed also
    queues lazy seeding for CUDA, MTIA and XPU, formatting a stack trace for each, 1.5 ms
    a run: this seeds what the run can use, the same way.)"""
    torch.default_generator.manual_seed(seed)
    if device.startswith("cuda"):
        torch.cuda.manual_seed_all(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


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
