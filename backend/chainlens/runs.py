"""Runs the server makes itself, when the engine could not finish one (timeout, lost worker)."""

from __future__ import annotations

from .schema import ErrorInfo, Run


def error_run(run_id: str, device: str, code: str, message: str, stdout: str = "") -> Run:
    return Run(
        id=run_id,
        status="error",
        device=device,
        error=ErrorInfo(code=code, type=None, message=message),
        stdout=stdout,
        variables={},
        nodes=[],
        passes=[],
        diagnostics=[],
        timings_ms={},
    )
