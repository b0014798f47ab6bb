"""A tree-walking interpreter for the chainlens language (tutorial PyTorch).

Programs never reach Python's ``eval``/``exec``: each AST node is evaluated here.
Names and attributes pass only through the allow-lists in ``allowlist``; every
call into a library goes through the ``Gate``; user functions and classes are
interpreter objects (``objects``).
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import operator
import weakref
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import torch
import torch.nn as nn
from torch.autograd.function import once_differentiable
from torch.utils.data import DataLoader, Dataset
from torch.utils.hooks import RemovableHandle

from ..errors import ChainlensError, LimitExceeded, ProgramRejected, error_context
from ..settings import Settings
from ..tracing.recorder import Recorder
from . import allowlist
from .builtins import Builtin, make_builtins
from .checker import WITH_ONLY_REFUSAL
from .datasets import dataset_item
from .estimates import format_length, percent_length
from .gate import Gate
from .generators import UserGenerator, is_generator_function, running_generator
from .hooks import ProgramHooks
from .objects import (
    BoundMethod,
    Callback,
    Link,
    Namespace,
    SuperProxy,
    UserClass,
    UserFunction,
    make_function_class,
    make_module_class,
    make_plain_class,
    user_class_of,
)
from .stdlib import (
    RANDOM_NAMES,
    STDLIB_NAMES,
    SafeRandom,
    WrapsMarker,
    cache,
    lru_cache,
    make_stdlib,
)

#: Errors that end the run: a limit, the engine's own, memory or Python's recursion running
#: out. No handler, ``finally`` or ``__exit__`` of the program's sees them.
FATAL = (ChainlensError, MemoryError, RecursionError)


class _Break(BaseException):
    pass


class _Continue(BaseException):
    pass


class _Return(BaseException):
    def __init__(self, value: Any) -> None:
        self.value = value


class Scope:
    __slots__ = ("vars", "parent", "method_class", "method_self", "declared")

    def __init__(self, parent: Scope | None = None) -> None:
        self.vars: dict[str, Any] = {}
        self.parent = parent
        self.method_class: UserClass | None = None
        self.method_self: Any = None
        #: Names a ``global`` or ``nonlocal`` statement sent elsewhere: the scope they bind in.
        self.declared: dict[str, Scope] | None = None

    def declare(self, name: str, home: Scope) -> None:
        if self.declared is None:
            self.declared = {}
        self.declared[name] = home


BINOPS: dict[type, tuple[Callable, str]] = {
    ast.Add: (operator.add, "add"),
    ast.Sub: (operator.sub, "sub"),
    ast.Mult: (operator.mul, "mul"),
    ast.MatMult: (operator.matmul, "matmul"),
    ast.Div: (operator.truediv, "div"),
    ast.FloorDiv: (operator.floordiv, "floordiv"),
    ast.Mod: (operator.mod, "remainder"),
    ast.Pow: (operator.pow, "pow"),
    ast.LShift: (operator.lshift, "lshift"),
    ast.RShift: (operator.rshift, "rshift"),
    ast.BitAnd: (operator.and_, "bitwise_and"),
    ast.BitOr: (operator.or_, "bitwise_or"),
    ast.BitXor: (operator.xor, "bitwise_xor"),
}
INPLACE: dict[type, tuple[Callable, str]] = {
    ast.Add: (operator.iadd, "iadd"),
    ast.Sub: (operator.isub, "isub"),
    ast.Mult: (operator.imul, "imul"),
    ast.Div: (operator.itruediv, "itruediv"),
    ast.Pow: (operator.ipow, "ipow"),
    ast.MatMult: (operator.imatmul, "imatmul"),
    ast.FloorDiv: (operator.ifloordiv, "ifloordiv"),
    ast.Mod: (operator.imod, "imod"),
    ast.BitAnd: (operator.iand, "iand"),
    ast.BitOr: (operator.ior, "ior"),
    ast.BitXor: (operator.ixor, "ixor"),
    ast.LShift: (operator.ilshift, "ilshift"),
    ast.RShift: (operator.irshift, "irshift"),
}
CMPOPS: dict[type, tuple[Callable, str]] = {
    ast.Eq: (operator.eq, "eq"),
    ast.NotEq: (operator.ne, "ne"),
    ast.Lt: (operator.lt, "lt"),
    ast.LtE: (operator.le, "le"),
    ast.Gt: (operator.gt, "gt"),
    ast.GtE: (operator.ge, "ge"),
    ast.Is: (operator.is_, "is"),
    ast.IsNot: (operator.is_not, "is_not"),
    ast.In: (lambda a, b: a in b, "in"),
    ast.NotIn: (lambda a, b: a not in b, "not_in"),
}
UNARY: dict[type, tuple[Callable, str]] = {
    ast.USub: (operator.neg, "neg"),
    ast.UAdd: (operator.pos, "positive"),
    ast.Invert: (operator.invert, "bitwise_not"),
    ast.Not: (operator.not_, "not"),
}
#: What ``with`` may enter: grad modes, and anomaly detection (a NaN hunt).
WITH_CONTEXTS = (
    torch.no_grad,
    torch.enable_grad,
    torch.inference_mode,
    torch.autograd.grad_mode.set_grad_enabled,
    torch.autograd.detect_anomaly,
    torch.autograd.set_detect_anomaly,
)
#: Grad modes a function may be decorated with (each entered anew at every call).
GRAD_DECORATORS = (torch.no_grad, torch.enable_grad, torch.inference_mode)
#: ``@staticmethod``, ``@classmethod``, ``@property``: the UserFunction flag each sets.
_METHOD_KINDS = {
    "staticmethod": "is_static",
    "classmethod": "is_classmethod",
    "property": "is_property",
}

#: What a program may hand to a library as a function (``register_hook(print)`` too).
CALLABLE = (UserFunction, BoundMethod, Builtin)
TENSOR_SETTABLE = frozenset({"requires_grad", "grad", "data"})
#: What a ``for`` walks whose length is known before it starts.
SIZED = frozenset({range, list, tuple, dict, str, set, frozenset})


class _Loop:
    """A ``for`` running now: how many items it has yet to take (None: not known, or it
    may stop before it has taken them all)."""

    __slots__ = ("left",)

    def __init__(self, iterable: Any, may_stop: bool) -> None:
        self.left: int | None = (
            None
            if may_stop
            else iterable.shape[0]
            if isinstance(iterable, torch.Tensor) and iterable.dim() > 0
            else len(iterable)
            if type(iterable) in SIZED
            else None
        )


def _may_stop(loop: ast.For) -> bool:
    """Whether a ``for``'s body has a ``break`` of its own or a ``return``: an early stop
    (``if loss < tol: break``) would leave its last backward unrecorded and the run made
    again (``Recorder.begin_pass``), so such a loop promises nothing. (A nested loop's
    ``break`` is its own, a nested function's ``return`` too.)"""
    stack: list[tuple[ast.AST, bool]] = [(node, False) for node in loop.body]
    while stack:
        node, nested = stack.pop()
        if isinstance(node, ast.Return) or (isinstance(node, ast.Break) and not nested):
            return True
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inner = nested or isinstance(node, (ast.For, ast.While, ast.AsyncFor))
            stack.extend((child, inner) for child in ast.iter_child_nodes(node))
    return False


ARRAYS = (torch.Tensor, np.ndarray)
#: numpy's grids of coordinates, made by indexing: ``np.mgrid[0:5, 0:5]``.
GRIDS = (type(np.mgrid), type(np.ogrid))
_NUMBERS = frozenset({int, float, bool})


#: What every nn.Module holds itself (``_parameters``, ``_forward_hooks``...): never the
#: program's, even on a module class of its own.
_MODULE_INTERNALS = frozenset(vars(nn.Module())) | frozenset(dir(nn.Module))


def _own_attribute(obj: Any, name: str) -> bool:
    """Whether ``obj.name`` (a name starting with ``_``) is the program's own: on its own
    classes and their instances, but not on what a library made or keeps."""
    if isinstance(obj, (UserClass, SuperProxy)):
        return True
    if user_class_of(obj) is None:
        return False
    return not isinstance(obj, nn.Module) or name not in _MODULE_INTERNALS


def _refused(message: str, node: ast.AST | None) -> ProgramRejected:
    return ProgramRejected(
        message,
        getattr(node, "lineno", None),
        (col + 1) if (col := getattr(node, "col_offset", None)) is not None else None,
    )


def _forbidden(what: str, node: ast.AST | None) -> ProgramRejected:
    return _refused(f"{what} is not available in chainlens", node)


class TensorHook(Callback):
    """A function registered with ``t.register_hook``: the engine calls it with the gradient
    flowing into ``t``; a gradient it returns replaces that one. It sleeps while chainlens
    runs autograd for its own checks (a vector pass's Jacobian), which the program never
    asked for."""

    __slots__ = ("node", "owner", "line")

    def __init__(
        self, link: Link, func: Any, node: str | None, owner: str, line: int | None
    ) -> None:
        super().__init__(link, func)
        self.node, self.owner, self.line = node, owner, line

    def __call__(self, grad: torch.Tensor) -> Any:
        interp = self.interp
        if interp.recorder.paused:
            return None
        out = interp.call_value(self.func, [grad], {}, None)
        if out is not None and interp.hooks.on_hook_changed is not None:
            interp.hooks.on_hook_changed(self.owner, self.node, self.line)
        return out


class Interpreter:
    """Runs one program's tree. ``write`` receives what ``print`` prints."""

    def __init__(
        self,
        settings: Settings,
        recorder: Recorder,
        write: Callable[[str], None],
        hooks: ProgramHooks,
        seed: int = 0,
    ) -> None:
        self.settings = settings
        self.recorder = recorder
        self.hooks = hooks
        self.gate = Gate(settings, recorder, hooks)
        self.globals = Scope()
        self.globals.vars["__name__"] = "__main__"
        #: Generators started and not finished (``generators.UserGenerator``): closed when
        #: the run ends, if the program has not finished them.
        self.generators: set[UserGenerator] = set()
        self.link = Link(self)
        self.builtins = make_builtins(self.link)
        #: math, random (seeded with the run's seed), itertools...: made for this run.
        self.stdlib = make_stdlib(self.link, seed)
        #: The standard library's callables by id, named by module (``itertools.repeat``):
        #: the gate prices them at nothing, as they price their own sizes.
        self._stdlib_ops = {
            id(fn): f"{module}.{name}"
            for module, ns in self.stdlib.items()
            if isinstance(ns, SimpleNamespace)
            for name, fn in vars(ns).items()
            if callable(fn)
        }
        self.write = write
        self.statements = 0
        self.iterations = 0
        self.depth = 0
        self.line: int | None = None
        self.col: int | None = None
        self.last_value: Any = None
        #: Each ``for`` running now, outermost first (a suspended generator's too).
        self._loops: list[_Loop] = []
        self._may_stop: dict[ast.For, bool] = {}
        #: The call written as a 'with' item being entered: only there may it be
        #: ``torch.set_grad_enabled(mode)``, whose call alone switches the grad mode.
        self._with_call: ast.expr | None = None
        self.leaf_bindings: dict[str, torch.Tensor] = {}
        self._namespaces: dict[str, Namespace] = {}
        self._stmt: dict[type, Callable[[Any, Scope], Any]] = {
            ast.Expr: self._s_expr,
            ast.Assign: self._s_assign,
            ast.AugAssign: self._s_augassign,
            ast.AnnAssign: self._s_annassign,
            ast.If: self._s_if,
            ast.For: self._s_for,
            ast.While: self._s_while,
            ast.Break: self._s_break,
            ast.Continue: self._s_continue,
            ast.Pass: lambda n, s: None,
            ast.Return: self._s_return,
            ast.FunctionDef: self._s_def,
            ast.ClassDef: self._s_class,
            ast.With: self._s_with,
            ast.Import: self._s_import,
            ast.ImportFrom: self._s_importfrom,
            ast.Try: self._s_try,
            ast.Raise: self._s_raise,
            ast.Assert: self._s_assert,
            ast.Delete: self._s_delete,
            ast.Global: self._s_global,
            ast.Nonlocal: self._s_nonlocal,
        }
        self._expr: dict[type, Callable[[Any, Scope], Any]] = {
            ast.Constant: lambda n, s: n.value,
            ast.Name: self._e_name,
            ast.Attribute: self._e_attribute,
            ast.Subscript: self._e_subscript,
            ast.Slice: self._e_slice,
            ast.Call: self._e_call,
            ast.BinOp: self._e_binop,
            ast.UnaryOp: self._e_unary,
            ast.BoolOp: self._e_boolop,
            ast.Compare: self._e_compare,
            ast.IfExp: self._e_ifexp,
            ast.List: self._e_list,
            ast.Tuple: self._e_tuple,
            ast.Set: self._e_set,
            ast.Dict: self._e_dict,
            ast.JoinedStr: self._e_joinedstr,
            ast.FormattedValue: self._e_formatted,
            ast.ListComp: self._e_listcomp,
            ast.GeneratorExp: self._e_listcomp,
            ast.SetComp: self._e_setcomp,
            ast.DictComp: self._e_dictcomp,
            ast.Lambda: self._e_lambda,
            ast.Yield: self._e_yield,
            ast.YieldFrom: self._e_yieldfrom,
            ast.NamedExpr: self._e_namedexpr,
        }
        #: Attributes the program set on tensors, by the tensor's id (see _tensor_attrs).
        self._own_tensor_attrs: dict[int, tuple[weakref.ref, dict[str, Any]]] = {}
        #: Each lambda as the one-statement function it stands for, made once per lambda.
        self._lambdas: dict[int, ast.FunctionDef] = {}

    # ------------------------------------------------------------ running
    def run(self, tree: ast.Module) -> None:
        self.exec_block(tree.body, self.globals)

    def close(self) -> None:
        """The run is over: let go of what torch still holds (see ``Link``), so that the
        program's tensors and graph are freed now rather than never."""
        for gen in list(self.generators):
            try:
                gen.close()
            except Exception:  # noqa: BLE001 - the run is over: its errors are not news
                pass
        self.generators.clear()
        self.link.interp = None
        self.globals.vars.clear()

    def exec_block(self, body: list[ast.stmt], scope: Scope) -> None:
        for stmt in body:
            self.statements += 1
            if self.statements > self.settings.max_statements:
                raise LimitExceeded(
                    "max_statements",
                    self.settings.max_statements,
                    "the program ran too many statements",
                    stmt.lineno,
                )
            self.line = self.recorder.line = self.gate.line = stmt.lineno
            self.col = stmt.col_offset + 1
            if self.hooks.on_statement is not None:
                self.hooks.on_statement()
            try:
                self._stmt[type(stmt)](stmt, scope)
            except (_Break, _Continue, _Return):
                raise
            except BaseException as e:
                context = error_context(e)
                if context.where is None:
                    context.where = (self.line, self.col)
                raise

    def evaluate(self, node: ast.expr, scope: Scope) -> Any:
        return self._expr[type(node)](node, scope)

    def _tick(self, node: ast.stmt | ast.expr) -> None:
        self.tick(node.lineno)

    def tick(self, line: int | None) -> None:
        """One more turn of a loop (or item of an iterator), against max_loop_iterations."""
        self.iterations += 1
        if self.iterations > self.settings.max_loop_iterations:
            raise LimitExceeded(
                "max_loop_iterations",
                self.settings.max_loop_iterations,
                "the program's loops ran too many times",
                line,
            )

    # ---------------------------------------------------------- statements
    def _s_expr(self, node: ast.Expr, scope: Scope) -> None:
        self.last_value = self.evaluate(node.value, scope)

    def _s_assign(self, node: ast.Assign, scope: Scope) -> None:
        value = self.evaluate(node.value, scope)
        for target in node.targets:
            self.assign(target, value, scope)
        self.last_value = value

    def _s_annassign(self, node: ast.AnnAssign, scope: Scope) -> None:
        if node.value is not None:
            value = self.evaluate(node.value, scope)
            self.assign(node.target, value, scope)
            self.last_value = value

    def _s_augassign(self, node: ast.AugAssign, scope: Scope) -> None:
        target = node.target
        fn, name = INPLACE[type(node.op)]
        if isinstance(target, ast.Name):
            current = self.lookup(target.id, scope)
            self.bind(
                target.id,
                self._binop(
                    fn, name, current, self.evaluate(node.value, scope), node, inplace=True
                ),
                scope,
            )
        elif isinstance(target, ast.Subscript):
            obj = self.evaluate(target.value, scope)
            key = self.evaluate(target.slice, scope)
            current = self.getitem(obj, key)
            new = self._binop(
                fn, name, current, self.evaluate(node.value, scope), node, inplace=True
            )
            self._setitem(obj, key, new)
        elif isinstance(target, ast.Attribute):
            obj = self.evaluate(target.value, scope)
            current = self.get_attr(obj, target.attr, target)
            new = self._binop(
                fn, name, current, self.evaluate(node.value, scope), node, inplace=True
            )
            self.set_attr(obj, target.attr, new, target)

    def _s_if(self, node: ast.If, scope: Scope) -> None:
        if self.truth(self.evaluate(node.test, scope)):
            self.exec_block(node.body, scope)
        elif node.orelse:
            self.exec_block(node.orelse, scope)

    def iterate(self, iterable: Any, node: ast.AST | None) -> Iterable[Any]:
        """What ``for`` walks: a tensor row by row, through the gate."""
        if isinstance(iterable, (Namespace, UserFunction, UserClass)):
            raise TypeError(f"'{type(iterable).__name__}' object is not iterable")
        if isinstance(iterable, torch.Tensor) and iterable.dim() > 0:
            n = iterable.shape[0]
            return (
                self.gate.call(operator.getitem, [iterable, i], {}, "getitem", target=iterable)
                for i in range(n)
            )
        return iter(iterable)

    def more_iterations(self) -> bool:
        """Whether a ``for`` running now has items left to take: the training loop's
        backward will most likely come again (``Recorder``'s ``more_passes``)."""
        return any(loop.left for loop in self._loops)

    def _s_for(self, node: ast.For, scope: Scope) -> None:
        broke = False
        iterable = self.evaluate(node.iter, scope)
        may_stop = self._may_stop.get(node)
        if may_stop is None:
            may_stop = self._may_stop[node] = _may_stop(node)
        loop = _Loop(iterable, may_stop)
        self._loops.append(loop)
        try:
            for item in self.iterate(iterable, node):
                self._tick(node)
                if loop.left is not None:
                    loop.left -= 1
                self.assign(node.target, item, scope)
                if self._turn_breaks(node.body, scope):
                    broke = True
                    break
        finally:
            self._loops.remove(loop)
        if not broke and node.orelse:
            self.exec_block(node.orelse, scope)

    def _s_while(self, node: ast.While, scope: Scope) -> None:
        broke = False
        while self.truth(self.evaluate(node.test, scope)):
            self._tick(node)
            if self._turn_breaks(node.body, scope):
                broke = True
                break
        if not broke and node.orelse:
            self.exec_block(node.orelse, scope)

    def _turn_breaks(self, body: list[ast.stmt], scope: Scope) -> bool:
        """One turn of a loop's body: whether it ended in ``break``."""
        try:
            self.exec_block(body, scope)
        except _Break:
            return True
        except _Continue:
            pass
        return False

    def _s_break(self, node: ast.Break, scope: Scope) -> None:
        raise _Break()

    def _s_continue(self, node: ast.Continue, scope: Scope) -> None:
        raise _Continue()

    def _s_return(self, node: ast.Return, scope: Scope) -> None:
        raise _Return(None if node.value is None else self.evaluate(node.value, scope))

    def _make_function(self, node: ast.FunctionDef, scope: Scope) -> Any:
        """The function a ``def`` makes, its decorators applied from the innermost out:
        the language's own (``@staticmethod``, grad modes, ``@functools.lru_cache``...)
        mark the function; a function or class of the program's own is called with it
        (``@timer``), as Python would."""
        defaults = [self.evaluate(d, scope) for d in node.args.defaults]
        kw_defaults = [
            None if d is None else self.evaluate(d, scope) for d in node.args.kw_defaults
        ]
        fn = UserFunction(
            node.name, node, scope, defaults, kw_defaults, is_generator=is_generator_function(node)
        )
        made: Any = fn
        grad_modes: list[type] = []
        for d in reversed(node.decorator_list):
            if isinstance(d, ast.Name) and d.id in _METHOD_KINDS:
                setattr(fn, _METHOD_KINDS[d.id], True)
                continue
            call = d if isinstance(d, ast.Call) else None
            what = self.evaluate(call.func if call is not None else d, scope)
            if what in GRAD_DECORATORS:
                if call is not None and (call.args or call.keywords):  # PyTorch's own error
                    self.evaluate(d, scope)
                grad_modes.insert(0, what)
            elif what is once_differentiable:  # its backward runs without building a graph
                grad_modes.insert(0, torch.no_grad)
            elif what is lru_cache or what is cache:
                fn.memo = {}
                size = (
                    {k.arg: self.evaluate(k.value, scope) for k in call.keywords}.get(
                        "maxsize", 128
                    )
                    if call is not None
                    else 128
                )
                fn.memo_size = None if what is cache or not isinstance(size, int) else size
            else:
                decorator = self.evaluate(d, scope) if call is not None else what
                if not isinstance(decorator, (UserFunction, BoundMethod, UserClass, WrapsMarker)):
                    raise _forbidden(
                        "this decorator (a decorator is one of the language's "
                        "own or a function or class of the program's)",
                        d,
                    )
                made = self.call_value(decorator, [made], {}, None, node=d)
        fn.grad_modes = tuple(grad_modes)
        return made

    def _e_lambda(self, node: ast.Lambda, scope: Scope) -> UserFunction:
        """``lambda g: g * 2``: a function of the program like any ``def`` (an interpreter
        object), named ``<lambda>`` as Python names it in its errors."""
        fdef = self._lambdas.get(id(node))
        if fdef is None:
            body = ast.copy_location(ast.Return(value=node.body), node.body)
            fdef = self._lambdas[id(node)] = ast.copy_location(
                ast.FunctionDef(name="<lambda>", args=node.args, body=[body], decorator_list=[]),
                node,
            )
        return self._make_function(fdef, scope)

    def _s_def(self, node: ast.FunctionDef, scope: Scope) -> None:
        self.bind(node.name, self._make_function(node, scope), scope)

    def _class_base(self, node: ast.ClassDef, scope: Scope) -> tuple[str, UserClass | None, type]:
        """(kind, the program's parent class, the real base) of a class statement."""
        written = node.bases[0] if node.bases else None
        if written is None or (
            isinstance(written, ast.Name)
            and written.id == "object"
            and not self._bound(written.id, scope)
        ):
            return "plain", None, object
        base = self.evaluate(written, scope)
        if base is torch.autograd.Function:
            return "function", None, base
        if base is nn.Module:
            return "module", None, base
        if isinstance(base, UserClass):
            return base.kind, base, base.pyclass
        if base is Dataset:
            return "plain", None, Dataset
        if isinstance(base, Builtin) and base.pytype in allowlist.EXCEPTIONS.values():
            return "plain", None, base.pytype  # class TrainingDiverged(RuntimeError)
        raise ProgramRejected(
            "a class may subclass torch.autograd.Function, nn.Module, "
            "Dataset, an exception or a class of the program's own",
            node.lineno,
            node.col_offset + 1,
        )

    def _bound(self, name: str, scope: Scope) -> bool:
        s: Scope | None = scope
        while s is not None:
            if name in s.vars:
                return True
            s = s.parent
        return False

    def _s_class(self, node: ast.ClassDef, scope: Scope) -> None:
        kind, parent, pybase = self._class_base(node, scope)
        ucls = UserClass(node.name, kind, {}, {}, parent)
        body_scope = Scope(scope)
        for stmt in node.body:
            if isinstance(stmt, ast.FunctionDef):
                fn = self._make_function(stmt, scope)
                if isinstance(fn, UserFunction):
                    fn.owner = ucls
                    ucls.methods[stmt.name] = fn
                else:  # what a decorator of the program's made of it
                    ucls.attrs[stmt.name] = body_scope.vars[stmt.name] = fn
            elif isinstance(stmt, ast.Assign):
                value = self.evaluate(stmt.value, body_scope)
                for t in stmt.targets:
                    if not isinstance(t, ast.Name):
                        raise _forbidden("this class attribute assignment", t)
                    if isinstance(value, UserFunction):  # act = lambda self, x: ...: a method
                        ucls.methods[t.id] = dataclasses.replace(value, owner=ucls)
                    else:
                        ucls.attrs[t.id] = value
                    body_scope.vars[t.id] = value
            elif (
                isinstance(stmt, ast.AnnAssign)
                and stmt.value is not None
                and isinstance(stmt.target, ast.Name)
            ):
                ucls.attrs[stmt.target.id] = body_scope.vars[stmt.target.id] = self.evaluate(
                    stmt.value, body_scope
                )
        if kind == "function":
            ucls.pyclass = make_function_class(self.link, ucls)
        elif kind == "module":
            ucls.pyclass = make_module_class(self.link, ucls)
        else:
            ucls.pyclass = make_plain_class(self.link, ucls, pybase)
        self.bind(node.name, ucls, scope)

    def _s_with(self, node: ast.With, scope: Scope) -> None:
        managers = []
        for item in node.items:
            self._with_call = item.context_expr
            cm = self.evaluate(item.context_expr, scope)
            ucls = user_class_of(cm)
            if not isinstance(cm, WITH_CONTEXTS) and not (
                ucls is not None and ucls.lookup("__enter__") and ucls.lookup("__exit__")
            ):
                raise _forbidden(
                    "'with' other than torch.no_grad(), torch.enable_grad(), "
                    "torch.inference_mode(), torch.set_grad_enabled(mode), "
                    "torch.autograd.detect_anomaly() and a class of the "
                    "program's own with __enter__ and __exit__",
                    item,
                )
            managers.append((cm, item.optional_vars))
        self._with(managers, node.body, scope)

    def _with(self, managers: list, body: list[ast.stmt], scope: Scope) -> None:
        if not managers:
            self.exec_block(body, scope)
            return
        (cm, target), rest = managers[0], managers[1:]
        ucls = user_class_of(cm)
        if ucls is not None:
            self._with_own(cm, ucls, target, rest, body, scope)
            return
        with cm as entered:
            if target is not None:
                self.assign(target, entered, scope)
            self._with(rest, body, scope)

    def _with_own(
        self,
        cm: Any,
        ucls: UserClass,
        target: ast.expr | None,
        rest: list,
        body: list[ast.stmt],
        scope: Scope,
    ) -> None:
        """A context manager of the program's own, as Python runs one, except that
        ``__exit__`` never sees (nor suppresses) chainlens's own errors, which end the run,
        nor the interpreter's way of leaving a block (``return``, ``break``)."""
        enter, leave = ucls.lookup("__enter__"), ucls.lookup("__exit__")
        assert enter is not None and leave is not None
        entered = self.call_function(enter, [cm], {})
        if target is not None:
            self.assign(target, entered, scope)
        try:
            self._with(rest, body, scope)
        except FATAL:
            raise
        except Exception as e:  # the program's own error: __exit__ may handle it
            if not self.truth(self.call_function(leave, [cm, type(e), e, None], {})):
                raise
            return
        except BaseException:  # return, break, continue out of the block
            self.call_function(leave, [cm, None, None, None], {})
            raise
        self.call_function(leave, [cm, None, None, None], {})

    def namespace(self, path: str) -> Namespace:
        ns = self._namespaces.get(path)
        if ns is None:
            obj, allowed = allowlist.NAMESPACES[path]
            ns = self._namespaces[path] = Namespace(path, self.stdlib.get(path, obj), allowed)
        return ns

    def _s_import(self, node: ast.Import, scope: Scope) -> None:
        for alias in node.names:
            if alias.asname:
                self.bind(alias.asname, self.namespace(alias.name), scope)
            else:
                top = alias.name.split(".")[0]
                self.bind(top, self.namespace(top), scope)

    def _s_importfrom(self, node: ast.ImportFrom, scope: Scope) -> None:
        ns = self.namespace(node.module or "")
        for alias in node.names:
            self.bind(alias.asname or alias.name, self.get_attr(ns, alias.name, node), scope)

    def _s_try(self, node: ast.Try, scope: Scope) -> None:
        """try/except/else/finally as Python runs it, except that an error that ends the
        run (a limit, the engine's own) reaches neither a handler nor a ``finally`` of the
        program's: a ``raise`` there could otherwise swallow it and run on."""
        try:
            self._try_handled(node, scope)
        except FATAL:
            raise
        except BaseException:  # the program's own error, or return/break/continue
            if node.finalbody:
                self.exec_block(node.finalbody, scope)
            raise
        if node.finalbody:
            self.exec_block(node.finalbody, scope)

    def _try_handled(self, node: ast.Try, scope: Scope) -> None:
        """The body, its handlers and its ``else``."""
        try:
            self.exec_block(node.body, scope)
        except (*FATAL, _Break, _Continue, _Return):
            raise
        except Exception as e:
            for handler in node.handlers:
                if handler.type is None or isinstance(e, self._exc_types(handler.type, scope)):
                    if handler.name:
                        self.bind(handler.name, e, scope)
                    self.exec_block(handler.body, scope)
                    return
            raise
        if node.orelse:
            self.exec_block(node.orelse, scope)

    def _exc_types(self, node: ast.expr, scope: Scope) -> tuple[type, ...]:
        value = self.evaluate(node, scope)
        items = value if isinstance(value, tuple) else (value,)
        out = []
        for item in items:
            t = item.pytype if isinstance(item, Builtin) else None
            if not (isinstance(t, type) and issubclass(t, BaseException)):
                raise _forbidden("this exception type", node)
            out.append(t)
        return tuple(out)

    def _s_raise(self, node: ast.Raise, scope: Scope) -> None:
        if node.exc is None:
            raise RuntimeError("No active exception to reraise")
        exc = self.evaluate(node.exc, scope)
        if (
            isinstance(exc, Builtin)
            and isinstance(exc.pytype, type)
            and issubclass(exc.pytype, BaseException)
        ):
            exc = exc.pytype()
        if not isinstance(exc, Exception) or isinstance(exc, ChainlensError):
            raise TypeError("exceptions must derive from BaseException")
        raise exc

    def _s_assert(self, node: ast.Assert, scope: Scope) -> None:
        if not self.truth(self.evaluate(node.test, scope)):
            raise AssertionError(*([] if node.msg is None else [self.evaluate(node.msg, scope)]))

    def _s_delete(self, node: ast.Delete, scope: Scope) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name):
                s: Scope | None = scope
                while s is not None and target.id not in s.vars:
                    s = s.parent
                if s is None:
                    raise NameError(f"name '{target.id}' is not defined")
                del s.vars[target.id]
            elif isinstance(target, ast.Subscript):
                obj = self.evaluate(target.value, scope)
                if not isinstance(obj, (list, dict)):
                    raise _forbidden("del on this object", target)
                del obj[self.evaluate(target.slice, scope)]
            else:
                raise _forbidden("del of an attribute", target)

    # ---------------------------------------------------------- bindings
    def lookup(self, name: str, scope: Scope) -> Any:
        s: Scope | None = scope
        while s is not None:
            v = s.vars
            if name in v:
                return v[name]
            s = s.parent
        b = self.builtins.get(name)
        if b is not None:
            return b
        raise NameError(f"name '{name}' is not defined")

    def bind(self, name: str, value: Any, scope: Scope) -> None:
        if scope.declared is not None:
            scope = scope.declared.get(name, scope)
        if isinstance(value, torch.Tensor):
            self.recorder.bind_name(name, value)
            if scope is self.globals:
                old = self.leaf_bindings.get(name)
                if (
                    old is not None
                    and old is not value
                    and not value.is_leaf
                    and self.hooks.on_leaf_overwritten is not None
                ):
                    self.hooks.on_leaf_overwritten(name, old, self.line)
                if value.is_leaf and value.requires_grad:
                    self.leaf_bindings[name] = value
                elif old is not None and old is not value:
                    del self.leaf_bindings[name]
        elif scope is self.globals:
            self.leaf_bindings.pop(name, None)
        scope.vars[name] = value

    def _s_global(self, node: ast.Global, scope: Scope) -> None:
        for name in node.names:
            scope.declare(name, self.globals)

    def _s_nonlocal(self, node: ast.Nonlocal, scope: Scope) -> None:
        for name in node.names:
            s = scope.parent
            while s is not None and s is not self.globals and name not in s.vars:
                s = s.parent
            if s is None or s is self.globals:
                raise _refused(f"no binding for nonlocal '{name}' found", node)
            scope.declare(name, s)

    def assign(self, target: ast.expr, value: Any, scope: Scope) -> None:
        if isinstance(target, ast.Name):
            self.bind(target.id, value, scope)
        elif isinstance(target, (ast.Tuple, ast.List)):
            self._unpack(target.elts, value, scope)
        elif isinstance(target, ast.Subscript):
            self._setitem(
                self.evaluate(target.value, scope), self.evaluate(target.slice, scope), value
            )
        elif isinstance(target, ast.Attribute):
            self.set_attr(self.evaluate(target.value, scope), target.attr, value, target)
        elif isinstance(target, ast.Starred):
            raise SyntaxError("starred assignment target must be in a list or tuple")

    def _unpack(self, targets: list[ast.expr], value: Any, scope: Scope) -> None:
        items = list(self.iterate(value, targets[0] if targets else None))
        star = [i for i, t in enumerate(targets) if isinstance(t, ast.Starred)]
        if star:
            i = star[0]
            after = len(targets) - i - 1
            if len(items) < len(targets) - 1:
                raise ValueError(
                    f"not enough values to unpack (expected at least "
                    f"{len(targets) - 1}, got {len(items)})"
                )
            for t, v in zip(targets[:i], items[:i], strict=False):
                self.assign(t, v, scope)
            starred = targets[i]
            assert isinstance(starred, ast.Starred)  # (i is where the star is)
            self.assign(starred.value, items[i : len(items) - after], scope)
            for t, v in zip(targets[i + 1 :], items[len(items) - after :], strict=False):
                self.assign(t, v, scope)
            return
        if len(items) != len(targets):
            if len(items) > len(targets):
                raise ValueError(f"too many values to unpack (expected {len(targets)})")
            raise ValueError(
                f"not enough values to unpack (expected {len(targets)}, got {len(items)})"
            )
        for t, v in zip(targets, items, strict=False):
            self.assign(t, v, scope)

    # ---------------------------------------------------------- attributes
    def get_attr(self, obj: Any, name: str, node: ast.AST | None) -> Any:
        if name[0] == "_" and not _own_attribute(obj, name):
            raise _forbidden(
                f"attribute {name!r} of a {type(obj).__name__} object (names "
                "starting with '_' belong to the program's own objects)",
                node,
            )
        if isinstance(obj, torch.Tensor):
            if name not in allowlist.TENSOR_ATTRS:
                own = self._tensor_attrs(obj, create=False)
                if own is not None and name in own:
                    return own[name]
                raise self._no_attr(obj, name, node, "Tensor")
            if (
                name == "grad"
                and not obj.is_leaf
                and not obj.retains_grad
                and self.hooks.on_nonleaf_grad is not None
            ):
                self.hooks.on_nonleaf_grad(obj, self.line)
                return None
            value = getattr(obj, name)
            if name == "data" and obj.requires_grad:
                self.recorder.record_cut([obj], value, "data", "detach")
            return value
        if isinstance(obj, Namespace):
            if name not in obj.allowed:
                if not hasattr(obj.obj, name):
                    raise AttributeError(f"module '{obj.path}' has no attribute '{name}'")
                raise _forbidden(f"'{obj.path}.{name}'", node)
            full = f"{obj.path}.{name}"
            if full in allowlist.NAMESPACES:
                return self.namespace(full)
            return getattr(obj.obj, name)
        if isinstance(obj, nn.Module):
            return self._module_attr(obj, name, node)
        if isinstance(obj, SuperProxy):
            return self._super_attr(obj, name, node)
        if isinstance(obj, UserClass):
            found, value = obj.class_attr(name)
            if found:
                return value
            if obj.kind == "function" and name == "apply":
                return cast(type[torch.autograd.Function], obj.pyclass).apply
            method = obj.lookup(name)
            if method is not None:
                return BoundMethod(method, obj) if method.is_classmethod else method
            raise AttributeError(f"type object '{obj.name}' has no attribute '{name}'")
        ucls = user_class_of(obj)
        if ucls is not None and ucls.kind == "plain":
            if name in obj.__dict__:
                return obj.__dict__[name]
            found, value = self._member(ucls, obj, name)
            if found:
                return value
            if isinstance(obj, BaseException) and name == "args":
                return obj.args
            raise AttributeError(f"'{ucls.name}' object has no attribute '{name}'")
        if obj is None:  # e.g. x.grad.zero_() before any backward: Python's own error
            error = AttributeError(f"'NoneType' object has no attribute '{name}'")
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "grad"
            ):
                error_context(error).grad_of = ast.unparse(node.value.value)
            raise error
        allowed = self._allowed_attrs(obj)
        if allowed is None:
            raise _forbidden(f"attribute '{name}' of a {type(obj).__name__} object", node)
        if name in allowed or (
            isinstance(obj, torch.autograd.function.FunctionCtx) and name in vars(obj)
        ):
            if name == "format" and isinstance(obj, str):
                return self.builtins["format_method"].bind(obj)
            return getattr(obj, name)
        raise self._no_attr(obj, name, node, type(obj).__name__)

    def _no_attr(self, obj: Any, name: str, node: ast.AST | None, tname: str) -> Exception:
        if hasattr(type(obj), name) or (isinstance(obj, type) and hasattr(obj, name)):
            return _forbidden(f"'{tname}.{name}'", node)
        return AttributeError(f"'{type(obj).__name__}' object has no attribute '{name}'")

    @staticmethod
    def _allowed_attrs(obj: Any) -> frozenset[str] | None:
        if isinstance(obj, torch.optim.Optimizer):
            return allowlist.OPTIMIZER_ATTRS
        if isinstance(obj, torch.optim.lr_scheduler.LRScheduler):
            return allowlist.SCHEDULER_ATTRS
        if isinstance(obj, torch.autograd.function.FunctionCtx):
            return allowlist.CTX_ATTRS
        if isinstance(obj, np.ndarray):
            return allowlist.NDARRAY_ATTRS
        if isinstance(obj, torch.Size):
            return allowlist.SIZE_ATTRS | allowlist.TUPLE_ATTRS
        if type(obj).__module__ == "torch.return_types":
            return allowlist.RETURN_TYPE_ATTRS | allowlist.TUPLE_ATTRS
        if obj is torch.Tensor:  # torch.Tensor.tanh handed round as a function
            return allowlist.UNBOUND_TENSOR_METHODS
        if isinstance(obj, type):
            return None  # other class objects: Function.apply... are refused
        if isinstance(obj, torch.autograd.graph.Node):
            return allowlist.GRAD_FN_ATTRS
        if isinstance(obj, torch.dtype):
            return allowlist.DTYPE_ATTRS
        if isinstance(obj, RemovableHandle):
            return allowlist.HANDLE_ATTRS
        if isinstance(obj, torch.device):
            return allowlist.DEVICE_ATTRS
        if isinstance(obj, np.random.Generator):
            return allowlist.RNG_ATTRS
        if isinstance(obj, SafeRandom):
            return RANDOM_NAMES
        if isinstance(obj, torch.Generator):
            return allowlist.GENERATOR_ATTRS
        if isinstance(obj, collections.Counter):
            return allowlist.DICT_ATTRS | allowlist.COUNTER_ATTRS
        if isinstance(obj, collections.OrderedDict):
            return allowlist.DICT_ATTRS | allowlist.ORDERED_DICT_ATTRS
        if isinstance(obj, collections.deque):
            return allowlist.DEQUE_ATTRS
        fields = getattr(type(obj), "_fields", None)
        if isinstance(obj, tuple) and isinstance(fields, tuple):
            return frozenset(fields) | allowlist.TUPLE_ATTRS  # a namedtuple's
        if isinstance(obj, DataLoader):
            return allowlist.LOADER_ATTRS
        if isinstance(obj, Dataset):
            return allowlist.DATASET_ATTRS
        if isinstance(obj, BaseException):
            return frozenset({"args"})
        for t, attrs in (
            (bool, frozenset()),
            (int, allowlist.INT_ATTRS),
            (float, allowlist.FLOAT_ATTRS),
            (str, allowlist.STR_ATTRS),
            (list, allowlist.LIST_ATTRS),
            (dict, allowlist.DICT_ATTRS),
            (tuple, allowlist.TUPLE_ATTRS),
            (set, allowlist.SET_ATTRS),
        ):
            if type(obj) is t or (t in (dict, list) and isinstance(obj, t)):
                return attrs
        if isinstance(obj, (np.floating, np.integer)):
            return frozenset({"item", "dtype"})
        return None

    def _module_attr(self, obj: nn.Module, name: str, node: ast.AST | None) -> Any:
        d = obj.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if name in d[store]:
                return d[store][name]
        ucls = user_class_of(obj)
        if name in d:
            return d[name]
        if ucls is not None:
            found, value = self._member(ucls, obj, name)
            if found:
                return value
        if name in allowlist.MODULE_METHODS and hasattr(obj, name):
            return getattr(obj, name)
        if hasattr(obj, name):
            raise _forbidden(f"'{type(obj).__name__}.{name}'", node)
        raise AttributeError(f"'{type(obj).__name__}' object has no attribute '{name}'")

    def _tensor_attrs(self, t: torch.Tensor, create: bool) -> dict[str, Any] | None:
        """The attributes the program gave tensor ``t`` (``out.g = grad``), for as long as
        ``t`` lives."""
        key = id(t)
        entry = self._own_tensor_attrs.get(key)
        if entry is not None and entry[0]() is t:
            return entry[1]
        if not create:
            return None
        attrs: dict[str, Any] = {}
        table = self._own_tensor_attrs
        table[key] = (weakref.ref(t, lambda _: table.pop(key, None)), attrs)
        return attrs

    def _member(self, ucls: UserClass, obj: Any, name: str) -> tuple[bool, Any]:
        """``obj.name`` from its class: a method bound to it (a classmethod to the class,
        a staticmethod as it is), a property's value, or a class attribute."""
        method = ucls.lookup(name)
        if method is not None:
            if method.is_property:
                return True, self.call_function(method, [obj], {})
            if method.is_static:
                return True, method
            return True, BoundMethod(method, ucls if method.is_classmethod else obj)
        return ucls.class_attr(name)

    def _super_attr(self, proxy: SuperProxy, name: str, node: ast.AST | None) -> Any:
        parent = proxy.cls.parent
        if parent is not None:
            method = parent.lookup(name)
            if method is not None:
                return BoundMethod(method, proxy.obj)
        if name == "__init__":
            base = nn.Module if proxy.cls.kind == "module" else object
            return Builtin("__init__", lambda *a, **k: base.__init__(proxy.obj, *a, **k))
        raise AttributeError(f"'super' object has no attribute '{name}'")

    def set_attr(self, obj: Any, name: str, value: Any, node: ast.AST) -> None:
        if name[0] == "_" and not _own_attribute(obj, name):
            raise _forbidden(
                f"setting {name!r} on a {type(obj).__name__} object (names "
                "starting with '_' belong to the program's own objects)",
                node,
            )
        if isinstance(obj, torch.Tensor):
            if name in TENSOR_SETTABLE:
                setattr(obj, name, value)
            elif hasattr(torch.Tensor, name):
                raise _forbidden(f"setting Tensor.{name}", node)
            else:  # out.g = ... (fast.ai): the program's own, kept here, not on the tensor
                attrs = self._tensor_attrs(obj, create=True)
                assert attrs is not None  # (create=True makes them)
                attrs[name] = value
        elif isinstance(obj, nn.Module) or isinstance(obj, torch.autograd.function.FunctionCtx):
            if name in allowlist.CTX_ATTRS or name in allowlist.MODULE_METHODS:
                raise _forbidden(f"assigning to '{name}'", node)
            setattr(obj, name, value)
        elif (ucls := user_class_of(obj)) is not None and ucls.kind == "plain":
            method = ucls.lookup(name)
            if method is not None and method.is_property:
                raise AttributeError(f"property '{name}' of '{ucls.name}' object has no setter")
            obj.__dict__[name] = value
        else:
            raise _forbidden(f"setting attributes on a {type(obj).__name__} object", node)

    # ---------------------------------------------------------- expressions
    def _e_name(self, node: ast.Name, scope: Scope) -> Any:
        return self.lookup(node.id, scope)

    def _e_attribute(self, node: ast.Attribute, scope: Scope) -> Any:
        return self.get_attr(self.evaluate(node.value, scope), node.attr, node)

    def getitem(self, obj: Any, key: Any) -> Any:
        if isinstance(obj, ARRAYS):
            return self.gate.call(operator.getitem, [obj, key], {}, "getitem", target=obj)
        if isinstance(obj, GRIDS):  # np.mgrid[0:8000, 0:8000]: estimated as any call
            return self.gate.call(operator.getitem, [obj, key], {}, "mgrid", target=obj)
        if isinstance(obj, (Namespace, UserFunction, UserClass)):
            raise TypeError(f"'{type(obj).__name__}' object is not subscriptable")
        if isinstance(obj, Dataset):
            return dataset_item(obj, key, self.getitem)
        return obj[key]

    def _setitem(self, obj: Any, key: Any, value: Any) -> None:
        if isinstance(obj, ARRAYS):
            self.gate.call(operator.setitem, [obj, key, value], {}, "setitem", target=obj)
        elif isinstance(obj, (list, dict, nn.Sequential, nn.ModuleList, nn.ModuleDict)):
            obj[key] = value
        else:
            raise TypeError(f"'{type(obj).__name__}' object does not support item assignment")

    def _e_subscript(self, node: ast.Subscript, scope: Scope) -> Any:
        return self.getitem(self.evaluate(node.value, scope), self.evaluate(node.slice, scope))

    def _e_slice(self, node: ast.Slice, scope: Scope) -> slice:
        return slice(
            None if node.lower is None else self.evaluate(node.lower, scope),
            None if node.upper is None else self.evaluate(node.upper, scope),
            None if node.step is None else self.evaluate(node.step, scope),
        )

    def _check_python_binop(self, name: str, a: Any, b: Any) -> None:
        g = self.gate
        if type(a) is int and type(b) is int:
            if name in ("pow", "ipow"):
                g.int_pow(a, b)
            elif name in ("mul", "imul"):
                g.int_bits(a.bit_length() + b.bit_length(), "this product")
            elif name in ("lshift", "ilshift"):
                g.int_bits(a.bit_length() + b, "this shift")
        elif name in ("mul", "imul"):
            for seq, n in ((a, b), (b, a)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int):
                    g.seq_len(len(seq) * max(n, 0), "this repetition")
        elif (
            name in ("add", "iadd")
            and isinstance(a, (str, list, tuple))
            and isinstance(b, (str, list, tuple))
        ):
            g.seq_len(len(a) + len(b), "this concatenation")
        elif name in ("remainder", "imod") and isinstance(a, str):
            g.seq_len(percent_length(a, b), "this % formatting")

    def _binop(
        self, fn: Callable, name: str, a: Any, b: Any, node: ast.AST | None, inplace: bool = False
    ) -> Any:
        ta, tb = type(a), type(b)
        if (ta is float or tb is float) and ta in _NUMBERS and tb in _NUMBERS:
            return fn(a, b)  # a float result cannot blow up in size
        if isinstance(a, ARRAYS) or isinstance(b, ARRAYS):
            if inplace and isinstance(a, ARRAYS):
                return self.gate.call(fn, [a, b], {}, name, target=a)
            return self.gate.call(fn, [a, b], {}, name.removeprefix("i") if inplace else name)
        self._check_python_binop(name, a, b)
        return fn(a, b)

    def binop(self, fn: Callable, name: str, a: Any, b: Any) -> Any:
        """``a <op> b`` as the program's own operator would do it (``operator.add``)."""
        return self._binop(fn, name, a, b, None)

    def _e_binop(self, node: ast.BinOp, scope: Scope) -> Any:
        fn, name = BINOPS[type(node.op)]
        return self._binop(
            fn, name, self.evaluate(node.left, scope), self.evaluate(node.right, scope), node
        )

    def _e_unary(self, node: ast.UnaryOp, scope: Scope) -> Any:
        fn, name = UNARY[type(node.op)]
        v = self.evaluate(node.operand, scope)
        if isinstance(node.op, ast.Not):
            return not self.truth(v)
        if isinstance(v, ARRAYS):
            return self.gate.call(fn, [v], {}, name)
        return fn(v)

    def truth(self, v: Any) -> bool:
        return bool(v)

    def _e_boolop(self, node: ast.BoolOp, scope: Scope) -> Any:
        is_and = isinstance(node.op, ast.And)
        value: Any = None
        for expr in node.values:
            value = self.evaluate(expr, scope)
            if self.truth(value) != is_and:
                return value
        return value

    def _e_compare(self, node: ast.Compare, scope: Scope) -> Any:
        left = self.evaluate(node.left, scope)
        if len(node.ops) == 1:
            right = self.evaluate(node.comparators[0], scope)
            fn, name = CMPOPS[type(node.ops[0])]
            if type(left) in _NUMBERS and type(right) in _NUMBERS:
                return fn(left, right)
            if name in ("is", "is_not", "in", "not_in") or not (
                isinstance(left, ARRAYS) or isinstance(right, ARRAYS)
            ):
                return fn(left, right)
            return self.gate.call(fn, [left, right], {}, name)
        result: Any = True
        for op, comp in zip(node.ops, node.comparators, strict=False):
            right = self.evaluate(comp, scope)
            fn, name = CMPOPS[type(op)]
            if name in ("is", "is_not", "in", "not_in") or not (
                isinstance(left, ARRAYS) or isinstance(right, ARRAYS)
            ):
                result = fn(left, right)
            else:
                result = self.gate.call(fn, [left, right], {}, name)
            if len(node.ops) > 1 and not self.truth(result):
                return result
            left = right
        return result

    def _e_namedexpr(self, node: ast.NamedExpr, scope: Scope) -> Any:
        value = self.evaluate(node.value, scope)
        self.bind(node.target.id, value, scope)
        return value

    def _e_yield(self, node: ast.Yield, scope: Scope) -> Any:
        gen = running_generator()
        if gen is None:
            raise _refused("'yield' outside a function", node)
        return gen.yield_(None if node.value is None else self.evaluate(node.value, scope))

    def _e_yieldfrom(self, node: ast.YieldFrom, scope: Scope) -> Any:
        gen = running_generator()
        if gen is None:
            raise _refused("'yield from' outside a function", node)
        inner = self.evaluate(node.value, scope)
        if isinstance(inner, UserGenerator):  # its return value is the expression's
            while True:
                try:
                    item = next(inner)
                except StopIteration as stop:
                    return stop.value
                gen.yield_(item)
        for item in self.iterate(inner, node):
            gen.yield_(item)
        return None

    def _e_ifexp(self, node: ast.IfExp, scope: Scope) -> Any:
        return self.evaluate(
            node.body if self.truth(self.evaluate(node.test, scope)) else node.orelse, scope
        )

    def _spread(self, value: Any, node: ast.AST, have: int) -> Iterable[Any]:
        """What ``*value`` spreads into a display or a call's arguments: a range spreads at
        C speed, so its length is checked first (``[*range(10**8)]`` took 8 s before its
        list was refused); other iterables count their items as they come."""
        if isinstance(value, range):
            self.gate.seq_len(have + len(value), "this sequence")
        return self.iterate(value, node)

    def _elements(self, elts: list[ast.expr], scope: Scope) -> list[Any]:
        out: list[Any] = []
        for e in elts:
            if isinstance(e, ast.Starred):
                out.extend(self._spread(self.evaluate(e.value, scope), e, len(out)))
                self.gate.seq_len(len(out), "this sequence")
            else:
                out.append(self.evaluate(e, scope))
        return out

    def _e_list(self, node: ast.List, scope: Scope) -> list:
        return self._elements(node.elts, scope)

    def _e_tuple(self, node: ast.Tuple, scope: Scope) -> tuple:
        return tuple(self._elements(node.elts, scope))

    def _e_set(self, node: ast.Set, scope: Scope) -> set:
        return set(self._elements(node.elts, scope))

    def _e_dict(self, node: ast.Dict, scope: Scope) -> dict:
        out: dict = {}
        for k, v in zip(node.keys, node.values, strict=False):
            if k is None:
                out.update(self.evaluate(v, scope))
            else:
                out[self.evaluate(k, scope)] = self.evaluate(v, scope)
        return out

    def _e_joinedstr(self, node: ast.JoinedStr, scope: Scope) -> str:
        parts = []
        length = 0
        for v in node.values:  # (each field priced before it is made: _e_formatted)
            part = cast(str, v.value) if isinstance(v, ast.Constant) else self.evaluate(v, scope)
            length += len(part)
            self.gate.seq_len(length, "this string")
            parts.append(part)
        return "".join(parts)

    def _e_formatted(self, node: ast.FormattedValue, scope: Scope) -> str:
        value = self.evaluate(node.value, scope)
        if node.conversion == ord("r"):
            value = repr(value)
        elif node.conversion == ord("s"):
            value = str(value)
        elif node.conversion == ord("a"):
            value = ascii(value)
        spec = "" if node.format_spec is None else self.evaluate(node.format_spec, scope)
        self.gate.seq_len(format_length(value, spec), "this format field")
        return format(value, spec)

    def _comprehension(
        self, generators: list[ast.comprehension], scope: Scope, emit: Callable[[Scope], None]
    ) -> None:
        inner = Scope(scope)
        inner.method_class, inner.method_self = scope.method_class, scope.method_self

        def loop(i: int) -> None:
            gen = generators[i]
            source = self.evaluate(gen.iter, scope if i == 0 else inner)
            for item in self.iterate(source, gen):
                self._tick(gen.iter)
                self.assign(gen.target, item, inner)
                if all(self.truth(self.evaluate(c, inner)) for c in gen.ifs):
                    if i + 1 < len(generators):
                        loop(i + 1)
                    else:
                        emit(inner)

        loop(0)

    def _e_listcomp(self, node: ast.ListComp | ast.GeneratorExp, scope: Scope) -> list:
        out: list = []
        self._comprehension(
            node.generators, scope, lambda s: out.append(self.evaluate(node.elt, s))
        )
        return out

    def _e_setcomp(self, node: ast.SetComp, scope: Scope) -> set:
        out: set = set()
        self._comprehension(node.generators, scope, lambda s: out.add(self.evaluate(node.elt, s)))
        return out

    def _e_dictcomp(self, node: ast.DictComp, scope: Scope) -> dict:
        out: dict = {}

        def emit(s: Scope) -> None:
            out[self.evaluate(node.key, s)] = self.evaluate(node.value, s)

        self._comprehension(node.generators, scope, emit)
        return out

    # ---------------------------------------------------------- calls
    def _e_call(self, node: ast.Call, scope: Scope) -> Any:
        self.line = self.recorder.line = self.gate.line = node.lineno
        self.col = node.col_offset + 1
        func_node = node.func
        target = None
        if isinstance(func_node, ast.Name) and func_node.id == "super":
            return self._super(node, scope)
        if isinstance(func_node, ast.Attribute):
            target = self.evaluate(func_node.value, scope)
            fn = self.get_attr(target, func_node.attr, func_node)
            if isinstance(target, Namespace):
                op = (
                    "autograd." + func_node.attr
                    if target.path == "torch.autograd"
                    else f"{target.path}.{func_node.attr}"
                    if target.path in STDLIB_NAMES  # (priced by themselves: Gate.price)
                    else func_node.attr
                )
                target = None
            else:
                op = func_node.attr
        else:
            fn = self.evaluate(func_node, scope)
            op = func_node.id if isinstance(func_node, ast.Name) else "call"
        args: list[Any] = []
        for a in node.args:
            if isinstance(a, ast.Starred):
                args.extend(self._spread(self.evaluate(a.value, scope), a, len(args)))
            else:
                args.append(self.evaluate(a, scope))
        kwargs: dict[str, Any] = {}
        for kw in node.keywords:
            if kw.arg is None:
                extra = self.evaluate(kw.value, scope)
                if not isinstance(extra, dict) or not all(isinstance(k, str) for k in extra):
                    raise TypeError("argument after ** must be a mapping with string keys")
                kwargs.update(extra)
            else:
                kwargs[kw.arg] = self.evaluate(kw.value, scope)
        return self.call_value(fn, args, kwargs, op, target, node)

    def _super(self, node: ast.Call, scope: Scope) -> SuperProxy:
        s: Scope | None = scope
        while s is not None and s.method_class is None:
            s = s.parent
        if node.args:
            cls = self.evaluate(node.args[0], scope)
            obj = self.evaluate(node.args[1], scope) if len(node.args) > 1 else None
            if not isinstance(cls, UserClass):
                raise TypeError("super() argument 1 must be a class of this program")
            return SuperProxy(cls, obj)
        if s is None:
            raise RuntimeError("super(): no arguments")
        assert s.method_class is not None  # (the loop above stops at a method's scope)
        return SuperProxy(s.method_class, s.method_self)

    def call_value(
        self,
        fn: Any,
        args: list[Any],
        kwargs: dict[str, Any],
        op: str | None,
        target: Any = None,
        node: ast.AST | None = None,
    ) -> Any:
        if isinstance(fn, UserFunction):
            return self.call_function(fn, args, kwargs)
        if isinstance(fn, BoundMethod):
            return self.call_function(fn.func, [fn.obj, *args], kwargs)
        if isinstance(fn, Builtin):
            return fn.fn(*args, **kwargs)
        if isinstance(fn, UserClass):
            return fn.pyclass(*args, **kwargs)
        if isinstance(fn, (Namespace, SuperProxy)) or not callable(fn):
            raise TypeError(f"'{type(fn).__name__}' object is not callable")
        if fn is torch.set_grad_enabled and node is not self._with_call:
            raise _refused(WITH_ONLY_REFUSAL, node)
        if (
            op == "type"
            and isinstance(target, torch.Tensor)
            and any(isinstance(a, str) for a in (*args, *kwargs.values()))
        ):
            # (a type's name is imported by torch to find it: 'os.system' would import os)
            raise _forbidden(
                "Tensor.type with a type's name (pass the type: "
                "x.type(torch.FloatTensor), or a dtype)",
                node,
            )
        if (
            op == "register_hook"
            and isinstance(target, torch.Tensor)
            and args
            and isinstance(args[0], CALLABLE)
        ):
            owner = (
                ast.unparse(node.func.value)
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                else "the tensor"
            )
            args = [
                TensorHook(self.link, args[0], self.recorder.node_of(target), owner, self.line),
                *args[1:],
            ]
        args = [Callback(self.link, a) if isinstance(a, CALLABLE) else a for a in args]
        if kwargs:  # (LambdaLR(opt, lr_lambda=f))
            kwargs = {
                k: Callback(self.link, v) if isinstance(v, CALLABLE) else v
                for k, v in kwargs.items()
            }
        callee = None
        op = self._stdlib_ops.get(id(fn), op)  # (``from itertools import repeat``)
        if isinstance(fn, nn.Module):
            op = type(fn).__name__
            callee = _dotted(node.func) if isinstance(node, ast.Call) else None
        elif op == "apply" and hasattr(fn, "__self__") and isinstance(fn.__self__, type):
            op = fn.__self__.__name__
        return self.gate.call(fn, args, kwargs, op or "call", target, callee)

    def call_function(self, func: UserFunction, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if func.is_generator:  # its body runs as the generator is iterated
            return UserGenerator(self.link, func, args, kwargs)
        if func.memo is not None:
            return self._memoized(func, args, kwargs)
        return self.run_body(func, args, kwargs)

    def _memoized(self, func: UserFunction, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """``@functools.lru_cache``: an earlier result for the same arguments; the cache
        keeps the ``maxsize`` results used most recently, or (unbounded) at most
        max_sequence_length."""
        memo = func.memo
        assert memo is not None
        key = (tuple(args), tuple(sorted(kwargs.items())))
        if key in memo:
            memo[key] = memo.pop(key)  # now the most recently used
            return memo[key]
        value = self.run_body(func, args, kwargs)
        if func.memo_size is None:
            self.gate.seq_len(len(memo) + 1, f"the cache of {func.name}()")
        elif len(memo) >= func.memo_size > 0:
            del memo[next(iter(memo))]
        if func.memo_size != 0:
            memo[key] = value
        return value

    def run_body(self, func: UserFunction, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Run ``func``'s body with these arguments: what it returns."""
        self.depth += 1
        if self.depth > self.settings.max_recursion_depth:  # (each frame's finally counts it down)
            raise LimitExceeded(
                "max_recursion_depth",
                self.settings.max_recursion_depth,
                f"{func.name}() called itself too deeply",
                self.line,
            )
        try:
            scope = Scope(func.scope)
            self._bind_args(func, args, kwargs, scope)
            if func.owner is not None and args:
                scope.method_class, scope.method_self = func.owner, args[0]
            saved = (self.line, self.col)
            try:
                self._with([(mode(), None) for mode in func.grad_modes], func.node.body, scope)
            except _Return as r:
                return r.value
            finally:
                self.line, self.col = saved
                self.recorder.line = self.gate.line = saved[0]
            return None
        finally:
            self.depth -= 1

    def _bind_args(
        self, func: UserFunction, args: list[Any], kwargs: dict[str, Any], scope: Scope
    ) -> None:
        a = func.node.args
        params = [p.arg for p in a.posonlyargs + a.args]
        n_default = len(func.defaults)
        values = scope.vars
        for i, name in enumerate(params):
            if i < len(args):
                if name in kwargs:
                    raise TypeError(f"{func.name}() got multiple values for argument '{name}'")
                values[name] = args[i]
            elif name in kwargs:
                values[name] = kwargs.pop(name)
            elif i >= len(params) - n_default:
                values[name] = func.defaults[i - (len(params) - n_default)]
            else:
                raise TypeError(f"{func.name}() missing 1 required positional argument: '{name}'")
        extra = args[len(params) :]
        if a.vararg is not None:
            values[a.vararg.arg] = tuple(extra)
        elif extra:
            raise TypeError(
                f"{func.name}() takes {len(params)} positional arguments but {len(args)} were given"
            )
        for p, default in zip(a.kwonlyargs, func.kw_defaults, strict=False):
            if p.arg in kwargs:
                values[p.arg] = kwargs.pop(p.arg)
            elif default is not None or p.arg in values:
                values[p.arg] = default
            else:
                raise TypeError(
                    f"{func.name}() missing 1 required keyword-only argument: '{p.arg}'"
                )
        if a.kwarg is not None:
            values[a.kwarg.arg] = dict(kwargs)
        elif kwargs:
            name = next(iter(kwargs))
            raise TypeError(f"{func.name}() got an unexpected keyword argument '{name}'")
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                self.recorder.bind_name(name, value)


def _dotted(expr: ast.expr) -> str | None:
    """``net`` or ``model.encoder`` for a callee written as a name or attribute chain."""
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        return None
    parts.append(expr.id)
    return ".".join(reversed(parts))
