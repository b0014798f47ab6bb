"""Parse a program and refuse, before anything runs, every construct outside the language.

All checks are iterative (no recursion), size is checked before parsing (a 2 MB
literal takes 24 s to parse), and parser crashes become a clean ``syntax_error``.
"""

from __future__ import annotations

import ast
import builtins
import io
import tokenize
import unicodedata

from ..errors import LimitExceeded, ProgramRejected
from ..settings import Settings
from .allowlist import BUILTINS, NAMESPACES
from .objects import PROTOCOL

ALLOWED_NODES: frozenset[type] = frozenset(
    {
        ast.Module,
        ast.Expr,
        ast.Assign,
        ast.AugAssign,
        ast.AnnAssign,
        ast.If,
        ast.For,
        ast.While,
        ast.Break,
        ast.Continue,
        ast.Pass,
        ast.Return,
        ast.FunctionDef,
        ast.ClassDef,
        ast.With,
        ast.withitem,
        ast.Import,
        ast.ImportFrom,
        ast.alias,
        ast.Try,
        ast.ExceptHandler,
        ast.Raise,
        ast.Assert,
        ast.Delete,
        ast.arguments,
        ast.arg,
        ast.keyword,
        ast.Constant,
        ast.Name,
        ast.Attribute,
        ast.Subscript,
        ast.Slice,
        ast.Call,
        ast.BinOp,
        ast.UnaryOp,
        ast.BoolOp,
        ast.Compare,
        ast.IfExp,
        ast.List,
        ast.Tuple,
        ast.Dict,
        ast.Set,
        ast.JoinedStr,
        ast.FormattedValue,
        ast.ListComp,
        ast.GeneratorExp,
        ast.DictComp,
        ast.SetComp,
        ast.comprehension,
        ast.Starred,
        ast.Lambda,
        ast.Yield,
        ast.YieldFrom,
        ast.Global,
        ast.Nonlocal,
        ast.NamedExpr,
        ast.Load,
        ast.Store,
        ast.Del,
        ast.Add,
        ast.Sub,
        ast.Mult,
        ast.MatMult,
        ast.Div,
        ast.FloorDiv,
        ast.Mod,
        ast.Pow,
        ast.LShift,
        ast.RShift,
        ast.BitAnd,
        ast.BitOr,
        ast.BitXor,
        ast.UAdd,
        ast.USub,
        ast.Not,
        ast.Invert,
        ast.And,
        ast.Or,
        ast.Eq,
        ast.NotEq,
        ast.Lt,
        ast.LtE,
        ast.Gt,
        ast.GtE,
        ast.Is,
        ast.IsNot,
        ast.In,
        ast.NotIn,
    }
)

CONSTRUCT_NAMES: dict[type, str] = {
    ast.Await: "await",
    ast.AsyncFunctionDef: "async def",
    ast.AsyncFor: "async for",
    ast.AsyncWith: "async with",
    ast.Match: "match",
}

DANGEROUS_BUILTINS = frozenset(dir(builtins)) - BUILTINS


def _reject(message: str, node: ast.AST | None = None, code: str = "forbidden") -> ProgramRejected:
    line = getattr(node, "lineno", None)
    col = getattr(node, "col_offset", None)
    return ProgramRejected(message, line, None if col is None else col + 1, code=code)


def dotted(node: ast.AST) -> str | None:
    """``a.b.c`` as text, or None when the expression is not a plain dotted name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def parse(source: str, settings: Settings) -> ast.Module:
    """Parse and check ``source``; raise ProgramRejected or LimitExceeded, never anything else."""
    size = len(source.encode("utf-8", "surrogatepass"))
    if size > settings.max_source_bytes:
        raise LimitExceeded(
            "max_source_bytes", settings.max_source_bytes, f"the program is {size} bytes"
        )
    if "\x00" in source:
        raise _reject("the program contains a NUL character", code="syntax_error")
    try:
        tree = ast.parse(source, mode="exec")
    except SyntaxError as e:
        raise ProgramRejected(f"{e.msg}", e.lineno, e.offset, code="syntax_error") from None
    except (MemoryError, RecursionError):
        raise ProgramRejected(
            "the program is nested too deeply to parse", 1, 1, code="syntax_error"
        ) from None
    except ValueError as e:
        raise ProgramRejected(str(e), 1, 1, code="syntax_error") from None
    check(tree, source, settings)
    return tree


#: The protocol methods a class of the program may define: Python calls them implicitly
#: (``len(x)``, ``x[i]``, ``a + b``, ``with x:``), and they run interpreted, through
#: bridges (``objects.PROTOCOL``). Any other ``__name__`` is refused as a definition:
#: finalisers and meta-hooks (``__del__``, ``__getattr__``, ``__reduce__``,
#: ``__init_subclass__``, ``__class_getitem__``, ``__set_name__``...).
PROTOCOL_METHODS = PROTOCOL | {"__init__"}
#: Dunder names a program may read: ``__name__`` (``if __name__ == "__main__":``) and
#: ``__init__`` (``super().__init__()``).
_DUNDER_NAMES = frozenset({"__name__", "__init__"})


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and len(name) > 4


#: Decorators the checker lets through by name where Python's builtins are otherwise
#: refused: ``@property``, ``@classmethod`` and ``@staticmethod``.
_PLAIN_DECORATORS = frozenset({"staticmethod", "classmethod", "property"})


def _check_decorator(dec: ast.expr) -> None:
    """A decorator is a name, a dotted name or a call of one (what it stands for is
    checked when the function is made: the language's own, or the program's)."""
    target = dec.func if isinstance(dec, ast.Call) else dec
    if dotted(target) is None:
        raise _reject("a decorator is a name, a dotted name, or a call of one", dec)


def _check_identifier(name: str, node: ast.AST) -> None:
    """The program's own names may start with ``_`` (``_grad_out_negexp``); names of the
    form ``__x__`` are Python's and stay out, but for the protocol methods a class defines
    and the names in ``_DUNDER_NAMES``."""
    if (
        _dunder(name)
        and name not in _DUNDER_NAMES
        and not (isinstance(node, ast.FunctionDef) and name in PROTOCOL_METHODS)
    ):
        what = "defining" if isinstance(node, ast.FunctionDef) else "the name"
        raise _reject(f"{what} {name!r} is not part of the chainlens language", node)
    if not name.isascii():
        raise _reject(f"identifier {name!r} is not plain ASCII", node)


def _raw_identifiers_are_ascii(source: str) -> None:
    """Python NFKC-normalises identifiers (fullwidth ``ｅｖａｌ`` parses as ``eval``), so the
    tree cannot show a look-alike; the tokens, read before normalisation, can."""
    if source.isascii():
        return
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.NAME and not tok.string.isascii():
                raise ProgramRejected(
                    f"identifier {tok.string!r} is not plain ASCII (it would normalise to "
                    f"{unicodedata.normalize('NFKC', tok.string)!r})",
                    tok.start[0],
                    tok.start[1] + 1,
                )
    except (tokenize.TokenError, SyntaxError):
        raise ProgramRejected(
            "the program could not be tokenised", 1, 1, code="syntax_error"
        ) from None


def check(tree: ast.Module, source: str, settings: Settings) -> None:
    """Walk the tree once, iteratively (caps checked as it goes), then refuse what the
    language does not have: every refusal at once, the first by line carrying them all."""
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    nodes: list[ast.AST] = []
    while stack:
        node, depth = stack.pop()
        nodes.append(node)
        if len(nodes) > settings.max_ast_nodes:
            raise LimitExceeded("max_ast_nodes", settings.max_ast_nodes, "the program is too large")
        if depth > settings.max_ast_depth:
            raise LimitExceeded(
                "max_ast_depth",
                settings.max_ast_depth,
                "the program is nested too deeply",
                getattr(node, "lineno", None),
            )
        for child in ast.iter_child_nodes(node):
            stack.append((child, depth + 1))
    bound = _bound_names(nodes)
    aliases = _namespace_aliases(nodes, bound)
    with_calls = {
        id(item.context_expr.func)
        for node in nodes
        if isinstance(node, ast.With)
        for item in node.items
        if isinstance(item.context_expr, ast.Call)
    }
    found: list[ProgramRejected] = []
    # builtins a program may name in one place only: ``object`` as a class's base (older
    # tutorials: ``class A(object):``), ``property`` and ``classmethod`` as decorators
    in_place = {
        id(b)
        for node in nodes
        if isinstance(node, ast.ClassDef)
        for b in node.bases
        if isinstance(b, ast.Name) and b.id == "object"
    }
    in_place |= {
        id(d)
        for node in nodes
        if isinstance(node, ast.FunctionDef)
        for d in node.decorator_list
        if isinstance(d, ast.Name) and d.id in _PLAIN_DECORATORS
    }
    for node in nodes:
        kind = type(node)
        if kind not in ALLOWED_NODES:
            what = CONSTRUCT_NAMES.get(kind, kind.__name__)
            found.append(_reject(f"'{what}' is not part of the chainlens language", node))
        try:
            _check_node(node, bound, in_place)
            if isinstance(node, ast.Attribute):
                _check_chain(node, aliases, id(node) in with_calls)
        except ProgramRejected as e:
            found.append(e)
    try:
        _raw_identifiers_are_ascii(source)
    except ProgramRejected as e:
        if e.code == "syntax_error":
            raise
        found.append(e)
    if found:
        raise ProgramRejected.all_of(found)


def _bound_names(nodes: list[ast.AST]) -> set[str]:
    """Every name the program binds itself: those may shadow a refused builtin
    (tutorials call the custom ReLU's argument ``input``)."""
    names: set[str] = {"__name__"}  # bound to "__main__" in every run
    for node in nodes:
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


#: Names that stand for a namespace even before (or without) an import.
ROOT_ALIASES = {
    "torch": "torch",
    "nn": "torch.nn",
    "F": "torch.nn.functional",
    "optim": "torch.optim",
    "np": "numpy",
    "numpy": "numpy",
}


def _namespace_aliases(nodes: list[ast.AST], bound: set[str]) -> dict[str, str]:
    """Names that certainly stand for a namespace: imported ones, and the usual
    aliases where the program binds them to nothing else."""
    aliases = {k: v for k, v in ROOT_ALIASES.items() if k not in bound}
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if full in NAMESPACES:
                    aliases[a.asname or a.name] = full
    return aliases


#: Allowed only as the call a ``with`` enters: called alone, it switches the grad mode for
#: the rest of the program (the interpreter refuses what only shows at run time, aliases).
WITH_ONLY = "torch.set_grad_enabled"
WITH_ONLY_REFUSAL = f"{WITH_ONLY}(mode) is available only as 'with {WITH_ONLY}(mode):'"


def _check_chain(node: ast.Attribute, aliases: dict[str, str], with_call: bool) -> None:
    """``torch.os.system``: walk the dotted chain through the allow-lists, statically."""
    text = dotted(node)
    if text is None:
        return
    root, *attrs = text.split(".")
    path = aliases.get(root)
    if path is None:
        return
    for attr in attrs:
        _, allowed = NAMESPACES[path]
        if attr not in allowed:
            instead = PATH_INSTEAD.get(f"{path}.{attr}")
            raise _reject(
                f"'{path}.{attr}' is not available in chainlens"
                + (f" ({instead})" if instead else ""),
                node,
            )
        if f"{path}.{attr}" == WITH_ONLY and not with_call:
            raise _reject(WITH_ONLY_REFUSAL, node)
        if f"{path}.{attr}" not in NAMESPACES:
            return
        path = f"{path}.{attr}"


def _check_node(node: ast.AST, bound: set[str], in_place: set[int]) -> None:
    if isinstance(node, ast.Name):
        _check_identifier(node.id, node)
        if node.id in DANGEROUS_BUILTINS and node.id not in bound and id(node) not in in_place:
            raise _reject(f"'{node.id}' is not available in chainlens", node)
    elif isinstance(node, ast.Attribute):
        # (``_x`` attributes are the program's own objects' alone: the interpreter refuses
        # them on library objects, whose type it knows only at run time)
        if _dunder(node.attr) and not (
            node.attr == "__init__"
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "super"
        ):
            raise _reject(
                f"attributes of the form '__name__' are not available: {node.attr!r}", node
            )
        if not node.attr.isascii():
            raise _reject(f"identifier {node.attr!r} is not plain ASCII", node)
    elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        _check_identifier(node.name, node)
        for dec in node.decorator_list:
            _check_decorator(dec)
        if isinstance(node, ast.ClassDef):
            _check_class(node)
    elif isinstance(node, ast.arg):
        _check_identifier(node.arg, node)
    elif isinstance(node, ast.keyword) and node.arg is not None:
        _check_identifier(node.arg, node)
    elif isinstance(node, ast.alias) and node.asname is not None:
        _check_identifier(node.asname, node)
    elif isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name not in NAMESPACES:
                raise _reject(_import_refusal(f"import of '{alias.name}'", alias.name), node)
    elif isinstance(node, ast.ImportFrom):
        if node.level or node.module not in NAMESPACES:
            raise _reject(_import_refusal(f"import from '{node.module}'", node.module or ""), node)
        _, allowed = NAMESPACES[node.module]
        for alias in node.names:
            if alias.name not in allowed and f"{node.module}.{alias.name}" not in NAMESPACES:
                raise _reject(f"'{node.module}.{alias.name}' is not available in chainlens", node)
    elif isinstance(node, ast.Constant) and isinstance(node.value, bytes):
        raise _reject("bytes literals are not part of the language", node)
    elif isinstance(node, ast.ExceptHandler) and node.name is not None:
        _check_identifier(node.name, node)


#: What to write instead of a module that tutorials import but the language has not.
IMPORT_INSTEAD = {
    "matplotlib": "the page draws the graph and the loss curve; print the numbers to see them",
    "os": "a program cannot reach files or the environment; build the data in the program "
    "(torch.randn, torch.tensor)",
    "sys": "print writes to the page's Output; the run's limits are the server's",
    "pathlib": "a program cannot reach files; build the data in the program",
    "pickle": "a program cannot load or save files; build the data in the program",
    "subprocess": "a program cannot start processes",
    "socket": "a program cannot reach the network",
    "importlib": "import the modules the language has by name",
    "torchvision": "build the data in the program (torch.randn(64, 1, 28, 28) for MNIST-sized "
    "images) and write the model with torch.nn",
}


#: What to write instead of a library path tutorials use but the language has not.
PATH_INSTEAD = {
    "torch.autograd.profiler": "the Run's timings_ms times the program, and "
    "`chainlens run` or the page shows them",
    "torch.profiler": "the Run's timings_ms times the program",
    "torch.backends.cudnn.deterministic": "a program may ask torch.backends what is "
    "available, not change it",
    "torch.backends.cudnn.benchmark": "a program may ask torch.backends what is "
    "available, not change it",
}


def _import_refusal(what: str, module: str) -> str:
    """Why an import is refused, and what to write instead where there is an equivalent."""
    message = (
        f"{what} is not allowed; chainlens programs may import torch (and its nn, "
        "nn.functional, optim, autograd and utils.data), numpy, and the standard "
        "library's math, random, itertools, functools, collections, operator, "
        "statistics, string, copy, time and typing"
    )
    instead = IMPORT_INSTEAD.get(module.split(".")[0])
    return f"{message} ({instead})" if instead else message


def _check_class(node: ast.ClassDef) -> None:
    if node.keywords:
        raise _reject("class keywords (metaclass=...) are not part of the language", node)
    if len(node.bases) > 1:
        raise _reject(
            "a class may have one base class (torch.autograd.Function, nn.Module, "
            "Dataset, an exception, or a class of the program's own)",
            node,
        )
    for stmt in node.body:
        if not isinstance(stmt, (ast.FunctionDef, ast.Pass, ast.Expr, ast.Assign, ast.AnnAssign)):
            raise _reject("a class body may hold only methods and simple assignments", stmt)
