"""What the service is and offers: health (version, torch, devices), readiness (its
shared store answers) and the examples."""

from __future__ import annotations

import torch
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ...engine import available_devices
from ...examples.catalog import examples
from ...schema import Example, Health, Readiness
from ...version import __version__
from ..responses import json_response

router = APIRouter(prefix="/api/v1")


@router.get("/health", response_model=Health)
async def health() -> Response:
    return json_response(
        {
            "status": "ok",
            "version": __version__,
            "torch": torch.__version__,
            "devices": available_devices(),
        }
    )


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(request: Request) -> Response:
    reason = await run_in_threadpool(request.app.state.shared.ready)  # (a Redis ping)
    if reason is None:
        return json_response({"status": "ready", "reason": None})
    return json_response({"status": "not_ready", "reason": reason}, status=503)


@router.get("/examples", response_model=list[Example])
async def list_examples() -> Response:
    return json_response([e.model_dump() for e in examples()])
