"""Exceptions that cross module boundaries, each carrying the wire error it becomes."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any


class ChainlensError(Exception):
    """Base: a code, a message and where in the program it applies."""

    code = "error"

    def __init__(
        self, message: str, line: int | None = None, col: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col
        if code is not None:
            self.code = code

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "line": self.line, "col": self.col}


class ProgramRejected(ChainlensError):
    """The program was not run: syntax error, a construct outside the language,
    or a device that is not available (HTTP 400). ``errors``: every refusal found, by line
    (the first is this one), so a program is fixed in one go, not one run at a time."""

    code = "forbidden"

    def __init__(
        self,
        message: str,
        line: int | None = None,
        col: int | None = None,
        code: str | None = None,
        errors: list[dict] | None = None,
    ) -> None:
        super().__init__(message, line, col, code)
        self.errors = errors if errors else [self.to_dict()]

    @classmethod
    def all_of(cls, found: list[ProgramRejected]) -> ProgramRejected:
        """One exception for several refusals: the first by line and column, carrying all."""
        # (a part of a refused construct may have no line of its own: match's cases)
        found = sorted(
            [e for e in found if e.line is not None] or found,
            key=lambda e: (e.line or 0, e.col or 0),
        )
        unique = list({(e.line, e.col, e.message): e.to_dict() for e in found}.values())
        first = found[0]
        return cls(first.message, first.line, first.col, first.code, unique)

    def body(self) -> dict:
        """The HTTP 400 body: ``error`` (the first) and ``errors`` (all)."""
        return {"error": self.to_dict(), "errors": self.errors}


@dataclass
class ErrorContext:
    """What the interpreter and the call gate knew when a program's exception went past
    them, for the diagnostic that explains it (kept on the exception: a Python exception
    cannot be weakly referenced, so no side table can hold it)."""

    #: The line and column of the statement it went past first (the innermost).
    where: tuple[int | None, int | None] | None = None
    #: The innermost library call that raised, and the tensor it was given.
    op: str | None = None
    operand: Any = None
    #: ``x.grad.zero_()`` before any backward: how the program named ``x``.
    grad_of: str | None = None


_CONTEXT = "_chainlens_context"


def error_context(exc: BaseException) -> ErrorContext:
    """``exc``'s context, made empty on first use (an exception that refuses attributes
    gets a fresh one each time: there is nothing to tell about it)."""
    ctx = getattr(exc, _CONTEXT, None)
    if ctx is None:
        ctx = ErrorContext()
        with contextlib.suppress(AttributeError, TypeError):
            setattr(exc, _CONTEXT, ctx)
    return ctx


def limit_text(name: str, value: object, rest: str) -> str:
    """How every message names a limit: ``limit <setting>=<value> <rest>`` (rest: "exceeded:
    why", "reached: what to do"), so a client can read which setting and its value."""
    return f"limit {name}={value} {rest}"


class LimitExceeded(ChainlensError):
    """A resource limit was hit while running; the message names the limit and its value."""

    code = "limit_exceeded"

    def __init__(
        self,
        name: str,
        value: object,
        what: str = "",
        line: int | None = None,
        col: int | None = None,
    ) -> None:
        detail = f": {what}" if what else ""
        super().__init__(limit_text(name, value, f"exceeded{detail}"), line, col)
        self.limit = name
        self.value = value


class RequestTooLarge(ChainlensError):
    code = "request_too_large"


class RateLimited(ChainlensError):
    code = "rate_limited"


class ServiceBusy(ChainlensError):
    code = "busy"


class RunNotFound(ChainlensError):
    code = "not_found"

    @classmethod
    def of(cls, run_id: str) -> RunNotFound:
        """No run by this id (the id cut short: it came from a client)."""
        return cls(f"no run {run_id[:40]!r}: unknown or expired")
