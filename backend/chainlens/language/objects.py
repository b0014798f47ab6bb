"""Objects a program creates: functions, classes, and the bridges that let torch call them.

User functions are interpreter data, never Python functions: nothing reaches a
frame or a globals dict. A class subclassing ``torch.autograd.Function`` or
``nn.Module`` becomes a real subclass whose ``forward``/``backward``/``__init__``
call back into the interpreter, so the engine sees a real ``XBackward`` node and
nn.Module hooks, ``parameters()`` and optimizers work as in PyTorch.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

if TYPE_CHECKING:
    from .interpreter import Interpreter, Scope


class Link:
    """How what torch keeps of a run reaches its interpreter: hooks, and the classes whose
    instances autograd nodes hold (a custom Function's ctx). The garbage collector cannot
    see the edges from a tensor to its autograd graph, which live in C++: a cycle through
    them (interpreter, tensor, its grad_fn, a hook calling the interpreter) would never be
    freed. ``Interpreter.close`` cuts every such cycle here, once the run is over."""

    __slots__ = ("interp",)

    def __init__(self, interp: Interpreter | None) -> None:
        self.interp = interp

    def running(self) -> Interpreter:
        """The interpreter, while its run lasts."""
        if self.interp is None:
            raise RuntimeError("this program's run is over")
        return self.interp


class Callback:
    """A value of the program handed to a library or a builtin as a Python callable
    (``jacobian(f, x)``, ``filter(lambda p: ..., ps)``, a hook): each call runs the way the
    program would call it, interpreted and under its limits."""

    __slots__ = ("link", "func")

    def __init__(self, link: Link, func: Any) -> None:
        self.link = link
        self.func = func

    @property
    def interp(self) -> Interpreter:
        return self.link.running()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.interp.call_value(self.func, list(args), kwargs, None)


@dataclass(eq=False)
class UserFunction:
    name: str
    node: ast.FunctionDef
    scope: Scope
    defaults: list[Any]
    kw_defaults: list[Any]
    owner: UserClass | None = None
    is_static: bool = False
    #: ``torch.no_grad`` / ``enable_grad`` / ``inference_mode`` from its decorators,
    #: outermost first: each call runs inside them.
    grad_modes: tuple[type, ...] = ()
    #: ``@classmethod``: called with its class; ``@property``: read as an attribute.
    is_classmethod: bool = False
    is_property: bool = False
    #: ``@functools.lru_cache`` / ``@cache``: results by arguments (None: not cached), and
    #: how many it keeps (None: as many as the run's limit allows).
    memo: dict[Any, Any] | None = None
    memo_size: int | None = None
    #: ``yield`` in its body: calling it makes a generator (``generators.UserGenerator``).
    is_generator: bool = False

    def __repr__(self) -> str:
        return f"<function {self.name}>"


@dataclass(eq=False)
class BoundMethod:
    func: UserFunction
    obj: Any

    def __repr__(self) -> str:
        return f"<bound method {self.func.name}>"


@dataclass(eq=False)
class UserClass:
    """A class the program defined; ``pyclass`` is the real class instances belong to."""

    name: str
    kind: str  # "function" | "module"
    methods: dict[str, UserFunction]
    attrs: dict[str, Any]
    parent: UserClass | None
    pyclass: type = field(default=object)

    def lookup(self, name: str) -> UserFunction | None:
        cls: UserClass | None = self
        while cls is not None:
            if name in cls.methods:
                return cls.methods[name]
            cls = cls.parent
        return None

    def class_attr(self, name: str) -> tuple[bool, Any]:
        cls: UserClass | None = self
        while cls is not None:
            if name in cls.attrs:
                return True, cls.attrs[name]
            cls = cls.parent
        return False, None

    def __repr__(self) -> str:
        return f"<class '{self.name}'>"


@dataclass(eq=False)
class SuperProxy:
    """``super()`` inside a method: attribute lookups start at the parent class."""

    cls: UserClass
    obj: Any


@dataclass(eq=False)
class Namespace:
    """An importable module, reduced to its allow-list (``torch``, ``nn``, ``F``...)."""

    path: str
    obj: Any
    allowed: frozenset[str]

    def __repr__(self) -> str:
        return f"<module '{self.path}'>"


def user_class_of(obj: Any) -> UserClass | None:
    return getattr(type(obj), "chainlens_class", None)


#: The methods of a program's class that Python or a library calls implicitly (``len(x)``,
#: ``x[i]``, ``a + b``, a DataLoader indexing a Dataset, ``print(model)``'s
#: ``extra_repr``): each made a bridge on the real class, which runs the program's method,
#: interpreted. (With ``__init__``, the only ``__dunder__`` names the checker lets a
#: program define.)
PROTOCOL = frozenset(
    """
    __call__ __getitem__ __setitem__ __delitem__ __len__ __iter__ __next__ __contains__
    __repr__ __str__ __eq__ __ne__ __lt__ __le__ __gt__ __ge__ __hash__ __bool__
    __add__ __radd__ __iadd__ __sub__ __rsub__ __isub__ __mul__ __rmul__ __imul__
    __truediv__ __rtruediv__ __itruediv__ __floordiv__ __rfloordiv__ __mod__ __rmod__
    __pow__ __rpow__ __matmul__ __rmatmul__ __neg__ __pos__ __abs__ __float__ __int__
    __enter__ __exit__ extra_repr
""".split()
)


def _bridge(link: Link, name: str) -> Any:
    """The real method ``name``: the program's own, found from the instance's class (a
    subclass may override it), run by the interpreter. ``__exit__`` is not handed the
    traceback: a program has no use for frames."""

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        cls = user_class_of(self)
        fn = cls.lookup(name) if cls is not None else None
        if fn is None:  # (bridged only for classes of the program's that define it)
            raise AttributeError(name)
        interp = link.running()
        if name == "__next__":  # an iterator's items count as a loop's turns
            interp.tick(interp.line)
        elif name == "__exit__" and len(args) == 3:
            args = (*args[:2], None)
        return interp.call_function(fn, [self, *args], kwargs)

    method.__name__ = method.__qualname__ = name
    return method


def _bridges(link: Link, ucls: UserClass) -> dict[str, Any]:
    defined: set[str] = set()
    cls: UserClass | None = ucls
    while cls is not None:
        defined |= set(cls.methods) & PROTOCOL
        cls = cls.parent
    return {name: _bridge(link, name) for name in defined}


def make_plain_class(link: Link, ucls: UserClass, base: type) -> type:
    """A class of the program's own that is not a Module or a Function (a micrograd
    ``Value``, a d2l ``Timer``, a ``Dataset``): instances hold their attributes, Python's
    protocols reach the program's methods through bridges."""
    body = _bridges(link, ucls)
    if ucls.lookup("__init__") is not None:  # else Python's own: "A() takes no arguments"
        body["__init__"] = _bridge(link, "__init__")
    return type(
        ucls.name,
        (base,),
        {
            **body,
            "chainlens_class": ucls,
            "chainlens_user": True,
            "__module__": "chainlens.user",
            "__qualname__": ucls.name,
        },
    )


def make_module_class(link: Link, ucls: UserClass) -> type:
    base = ucls.parent.pyclass if ucls.parent is not None else nn.Module

    def __init__(self: nn.Module, *args: Any, **kwargs: Any) -> None:  # noqa: N807 - the class's own
        init = ucls.lookup("__init__")
        if init is None:
            nn.Module.__init__(self)
        else:
            link.running().call_function(init, [self, *args], kwargs)

    def forward(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
        method = ucls.lookup("forward")
        if method is None:
            raise NotImplementedError(
                f'Module [{ucls.name}] is missing the required "forward" function'
            )
        return link.running().call_function(method, [self, *args], kwargs)

    return type(
        ucls.name,
        (base,),
        {
            **_bridges(link, ucls),
            "__init__": __init__,
            "forward": forward,
            "chainlens_class": ucls,
            "chainlens_user": True,
            "__module__": "chainlens.user",
            "__qualname__": ucls.name,
        },
    )


def make_function_class(link: Link, ucls: UserClass) -> type:
    def method(name: str) -> UserFunction:
        m = ucls.lookup(name)
        if m is None:
            raise NotImplementedError(f"{ucls.name} must define {name}(ctx, ...)")
        return m

    def forward(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        return link.running().call_function(method("forward"), [ctx, *args], kwargs)

    def backward(ctx: Any, *grads: Any) -> Any:
        return link.running().call_function(method("backward"), [ctx, *grads], {})

    return type(
        ucls.name,
        (torch.autograd.Function,),
        {
            "forward": staticmethod(forward),
            "backward": staticmethod(backward),
            "chainlens_class": ucls,
            "chainlens_user": True,
            "__module__": "chainlens.user",
            "__qualname__": ucls.name,
        },
    )
