"""The Python builtins a program may call, each wrapped so sizes are checked first.

``print`` writes to the run's captured stdout; ``str.format`` refuses attribute
and index lookups in its fields (``'{0.__class__}'.format(x)``); consumers of
iterables refuse ranges longer than ``max_sequence_length``.
"""

from __future__ import annotations

import builtins as py
import math
import operator
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import ProgramRejected
from .allowlist import EXCEPTIONS
from .estimates import format_length, text_length
from .objects import Callback, Link, UserClass, user_class_of

if TYPE_CHECKING:
    from .gate import Gate


#: Values whose class ``type()`` may hand back: torch's and numpy's.
_LIBRARY_VALUES = (
    torch.Tensor,
    torch.nn.Module,
    torch.optim.Optimizer,
    torch.dtype,
    torch.device,
    torch.Size,
    np.ndarray,
    np.generic,
)


@dataclass(eq=False)
class Builtin:
    name: str
    fn: Callable[..., Any]
    pytype: Any = None

    def bind(self, obj: Any) -> Builtin:
        return Builtin(self.name, lambda *a, **k: self.fn(obj, *a, **k))

    def __repr__(self) -> str:
        return f"<built-in function {self.name}>"


class _SafeFormatter(string.Formatter):
    """``str.format`` for one call: no attribute or index lookups in its fields, and each
    field priced (its width, its precision) before it is formatted, added to the text
    made so far (``'{:>1500000000}'.format(1)`` is refused, not built)."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.length = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        self.length += format_length(value, format_spec)
        self.gate.seq_len(self.length, "this format")
        return super().format_field(value, format_spec)

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        if "." in field_name or "[" in field_name:
            raise ProgramRejected(
                "attribute or index lookups inside format fields are not available in chainlens"
            )
        return super().get_field(field_name, args, kwargs)


#: Python's own numbers, which its sum adds in C.
_NUMBERS = (int, float, complex, bool)


def make_builtins(link: Link) -> dict[str, Builtin]:
    """The builtins of one run. They reach its interpreter through ``link``: a program may
    hand one to torch (``x.register_hook(print)``), which keeps it past the run."""

    def gate() -> Gate:
        return link.running().gate

    def sized(x: Any, what: str) -> Any:
        if isinstance(x, range):
            gate().seq_len(len(x), what)
        return x

    def consume(fn: Callable, name: str) -> Callable:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            for a in args:
                sized(a, f"{name}()")
            return fn(*args, **kwargs)

        return wrapped

    def print_(
        *args: Any, sep: str | None = " ", end: str | None = "\n", flush: bool = False
    ) -> None:
        sep = " " if sep is None else sep
        end = "\n" if end is None else end
        for a in args:
            text_of(a, "print()")
        text = sep.join(str(a) for a in args) + end
        link.running().write(text)

    def text_of(value: Any, what: str) -> None:
        """A value about to become text: a tensor's may be long (print options)."""
        if not isinstance(value, str):
            gate().seq_len(text_length(value), what)

    def str_(*args: Any, **kwargs: Any) -> str:
        if args:
            sized(args[0], "str()")
            text_of(args[0], "str()")
        return str(*args, **kwargs)

    def sum_(iterable: Any, /, start: Any = 0) -> Any:
        """Python's sum, each addition made as the program's own ``+`` would make it: adding
        tensors is priced and recorded like ``a + b`` (100 sums of three 3000 x 3000
        tensors were 1e11 operations outside the counters)."""
        sized(iterable, "sum()")
        if isinstance(start, str):  # (Python's own refusals, word for word)
            raise TypeError("sum() can't sum strings [use ''.join(seq) instead]")
        if isinstance(start, (bytes, bytearray)):
            raise TypeError(f"sum() can't sum {type(start).__name__} [use b''.join(seq) instead]")
        items = py.list(iterable)
        total, k = start, 0
        if type(start) in _NUMBERS:  # Python's own sum for the leading numbers: it adds
            # floats with compensation, and the program's printed numbers must be Python's
            k = next((i for i, x in enumerate(items) if type(x) not in _NUMBERS), len(items))
            total = py.sum(items[:k], start)
        interp = link.running()
        for item in items[k:]:
            total = interp.binop(operator.add, "add", total, item)
        return total

    def isinstance_(obj: Any, kinds: Any) -> bool:
        def unwrap(k: Any) -> Any:
            if isinstance(k, Builtin) and k.pytype is not None:
                return k.pytype
            if isinstance(k, UserClass):
                return k.pyclass
            if isinstance(k, tuple):
                return tuple(unwrap(x) for x in k)
            if isinstance(k, type):
                return k
            raise TypeError("isinstance() arg 2 must be a type, a tuple of types, or a union")

        return py.isinstance(obj, unwrap(kinds))

    def pow_(base: Any, exp: Any, mod: Any = None) -> Any:
        if isinstance(base, int) and isinstance(exp, int) and mod is None:
            gate().int_pow(base, exp)
        return py.pow(base, exp, mod)

    def round_(number: Any, ndigits: Any = None) -> Any:
        """An integer rounded to -n digits computes 10**n first (``round(5, -10**8)`` ran
        six minutes): priced as that power."""
        if isinstance(number, int) and isinstance(ndigits, int) and ndigits < 0:
            gate().int_bits(math.ceil(-ndigits * math.log2(10)), f"round(..., {ndigits})")
        return py.round(number) if ndigits is None else py.round(number, ndigits)

    def range_(*args: Any) -> range:
        return py.range(*args)

    def format_method(s: str, *args: Any, **kwargs: Any) -> str:
        text = _SafeFormatter(gate()).format(s, *args, **kwargs)
        gate().seq_len(len(text), "this string")
        return text

    def keyed(fn: Callable, name: str) -> Callable:
        """``sorted``/``min``/``max`` whose ``key`` may be the program's own function."""
        consumed = consume(fn, name)

        def wrapped(*args: Any, key: Any = None, **kwargs: Any) -> Any:
            if key is not None:
                kwargs["key"] = Callback(link, key)
            return consumed(*args, **kwargs)

        return wrapped

    def map_(fn: Any, *iterables: Any) -> Any:
        for it in iterables:
            sized(it, "map()")
        return py.map(Callback(link, fn), *iterables)

    def filter_(fn: Any, iterable: Any) -> Any:
        """``filter(lambda p: p.requires_grad, model.parameters())``, as fine-tuning
        code hands an optimizer only the layers it trains. Lazy, as Python's."""
        sized(iterable, "filter()")
        return py.filter(None if fn is None else Callback(link, fn), iterable)

    def type_(obj: Any) -> Any:
        """``type(m) == nn.Linear`` (d2l's init functions), ``type(self)(...)``: the class
        of a value, a library's object or one of the program's; never the class of one of
        chainlens's own objects (a builtin, a function of the program's), which calling
        could make behave as something else."""
        ucls = user_class_of(obj)
        if ucls is not None:
            return ucls
        for name in ("int", "float", "bool", "str", "list", "tuple", "dict", "set"):
            if py.type(obj) is table[name].pytype:
                return table[name]
        if py.isinstance(obj, _LIBRARY_VALUES):
            return py.type(obj)
        raise ProgramRejected(
            f"type() of a {py.type(obj).__name__} object is not available "
            "in chainlens (isinstance(x, cls) is)"
        )

    table: dict[str, Builtin] = {
        "print": Builtin("print", print_),
        "isinstance": Builtin("isinstance", isinstance_),
        "pow": Builtin("pow", pow_),
        "range": Builtin("range", range_, range),
        "sorted": Builtin("sorted", keyed(py.sorted, "sorted")),
        "format_method": Builtin("format", format_method),
        "len": Builtin("len", py.len),
        "abs": Builtin("abs", py.abs),
        "round": Builtin("round", round_),
        "divmod": Builtin("divmod", py.divmod),
        "enumerate": Builtin("enumerate", consume(py.enumerate, "enumerate")),
        "zip": Builtin("zip", consume(py.zip, "zip")),
        "reversed": Builtin("reversed", py.reversed),
        "min": Builtin("min", keyed(py.min, "min")),
        "max": Builtin("max", keyed(py.max, "max")),
        "sum": Builtin("sum", sum_),
        "any": Builtin("any", consume(py.any, "any")),
        "all": Builtin("all", consume(py.all, "all")),
        "map": Builtin("map", map_),
        "iter": Builtin("iter", lambda x: py.iter(link.running().iterate(x, None))),
        "next": Builtin("next", py.next),
        "hash": Builtin("hash", py.hash),
        "type": Builtin("type", type_),
        "filter": Builtin("filter", filter_),
    }
    for name, t in (
        ("float", float),
        ("int", int),
        ("bool", bool),
        ("list", list),
        ("tuple", tuple),
        ("dict", dict),
        ("set", set),
    ):
        table[name] = Builtin(name, consume(t, name), t)
    table["str"] = Builtin("str", str_, str)
    for name, exc in EXCEPTIONS.items():
        table[name] = Builtin(name, exc, exc)
    return table
