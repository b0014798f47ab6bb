"""Text a program made, made fit for the wire.

Python strings may hold lone surrogates (``'\\ud800'``), which UTF-8 cannot encode: a
program printing one, or raising with one in its message, made the worker fail while
sending its Run. Such characters are written as Python escapes instead.
"""

from __future__ import annotations


def wire_text(text: str) -> str:
    """``text``, with each character UTF-8 cannot encode written as its escape."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
