"""Generator functions of the program (``yield``, ``yield from``): d2l's ``data_iter``, a
batch generator a training loop draws from with ``next``.

The interpreter walks the syntax tree recursively, so a function cannot be left half-way
through and resumed by returning: each generator's body runs in a greenlet of its own
(the ``greenlet`` library: a separate stack, switched to and from explicitly, no thread).
``next(gen)`` switches into it; a ``yield`` switches back out with its value. The
interpreter's own state that belongs to a stack (call depth, the current line) is saved
and restored on each switch. Generators the program has started and not finished count
against ``max_live_generators``: each holds a stack.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

from greenlet import getcurrent, greenlet

from ..errors import LimitExceeded

if TYPE_CHECKING:
    from .interpreter import Interpreter
    from .objects import Link, UserFunction


class _Body(greenlet):
    """The greenlet a generator's body runs in, knowing its generator (for ``yield``)."""

    def __init__(self, gen: UserGenerator) -> None:
        super().__init__(gen.run)
        self.gen = gen


class UserGenerator:
    """What calling a generator function of the program returns: a Python iterator, so
    ``for``, ``next``, ``list`` and the libraries iterate it as they would a generator."""

    def __init__(
        self, link: Link, func: UserFunction, args: list[Any], kwargs: dict[str, Any]
    ) -> None:
        self.link = link
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.body: _Body | None = None
        self.done = False
        #: the interpreter's stack-bound state inside the body, while it is suspended
        self.inside: tuple[int, int | None, int | None] | None = None

    def __repr__(self) -> str:
        return f"<generator object {self.func.name}>"

    def __iter__(self) -> UserGenerator:
        return self

    def __next__(self) -> Any:
        if self.done:
            raise StopIteration
        interp = self.link.running()
        outside = _state(interp)
        if self.body is None:
            if len(interp.generators) >= interp.settings.max_live_generators:
                self.done = True
                raise LimitExceeded(
                    "max_live_generators",
                    interp.settings.max_live_generators,
                    "the program has too many generators started and not finished",
                    interp.line,
                )
            self.body = _Body(self)
            interp.generators.add(self)
        self.body.parent = getcurrent()
        try:
            kind, value = self.body.switch()
        except BaseException:
            self._finish()
            raise
        finally:
            _restore(interp, outside)
        if kind == "done":
            self._finish()
            raise StopIteration(value)
        return value

    def run(self) -> tuple[str, Any]:
        """The body, in its greenlet: ("done", what it returned)."""
        interp = self.link.running()
        try:
            return "done", interp.run_body(self.func, self.args, self.kwargs)
        except StopIteration:
            raise RuntimeError("generator raised StopIteration") from None

    def yield_(self, value: Any) -> Any:
        """``yield value`` inside the body: out to whoever called ``next``, and back."""
        interp = self.link.running()
        inside = _state(interp)
        assert self.body is not None and self.body.parent is not None
        sent = self.body.parent.switch(("yield", value))
        _restore(interp, inside)
        return sent

    def close(self) -> None:
        """Unwind a suspended body (its ``finally`` blocks run, as Python's ``close``):
        its frames hold this generator, a cycle only unwinding breaks."""
        if self.body is not None and not self.body.dead:
            self.body.parent = getcurrent()
            self.body.throw()
        self._finish()

    def _finish(self) -> None:
        if not self.done:
            self.done = True
            interp = self.link.interp
            if interp is not None:
                interp.generators.discard(self)


def _state(interp: Interpreter) -> tuple[int, int | None, int | None]:
    return interp.depth, interp.line, interp.col


def _restore(interp: Interpreter, state: tuple[int, int | None, int | None]) -> None:
    interp.depth, line, interp.col = state
    interp.line = interp.recorder.line = interp.gate.line = line


def running_generator() -> UserGenerator | None:
    """The generator whose body is running now (None: the program's main line)."""
    return getattr(getcurrent(), "gen", None)


def is_generator_function(node: ast.FunctionDef) -> bool:
    """Whether ``yield`` appears in the function itself (not in a function inside it)."""
    stack: list[ast.AST] = list(node.body)
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.Yield, ast.YieldFrom)):
            return True
        if not isinstance(n, (ast.FunctionDef, ast.Lambda, ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(n))
    return False
