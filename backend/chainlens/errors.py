"""Exceptions that cross module boundaries, each carrying the wire error it becomes."""

from __future__ import annotations


class ChainlensError(Exception):
    """Base: a code, a message and where in the program it applies."""

    code = "error"

    def __init__(self, message: str, line: int | None = None, col: int | None = None,
                 code: str | None = None) -> None:
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
    or a device that is not available (HTTP 400)."""

    code = "forbidden"


class LimitExceeded(ChainlensError):
    """A resource limit was hit while running; the message names the limit and its value."""

    code = "limit_exceeded"

    def __init__(self, name: str, value: object, what: str = "",
                 line: int | None = None, col: int | None = None) -> None:
        detail = f": {what}" if what else ""
        super().__init__(f"limit {name}={value} exceeded{detail}", line, col)
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
