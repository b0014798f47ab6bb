"""Runs: make one, read one back, and what a finished run's program gives when it runs
again (a gradient check, manual-backprop code, a node's tensors in full)."""

from __future__ import annotations

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from ...errors import RunNotFound
from ...schema import CheckRequest, GradCheck, ImportedRun, NodeTensors, Run, RunProgram
from ..requests import parse_model, parse_run_request
from ..responses import (
    COMPACT,
    FORMAT,
    STORED,
    STORED_FORMAT,
    RunFormat,
    StoredFormat,
    client_address,
    errors,
    json_body,
    json_body_only,
    json_response,
    run_response,
)

#: On POST /runs: ``hit`` when the Run is one made earlier for the same request.
CACHE_HEADER = "X-Chainlens-Cache"

router = APIRouter(prefix="/api/v1/runs")
#: Where a Run recorded elsewhere comes in (the body limit there is max_import_bytes).
IMPORT_PATH = "/api/v1/runs/import"


@router.post(
    "",
    response_model=Run,
    responses={
        200: {
            **COMPACT[200],
            "headers": {
                CACHE_HEADER: {
                    "description": "hit: the run made earlier for the same program, device "
                    "and seed (CPU), under a new id; miss: run now",
                    "schema": {"type": "string", "enum": ["hit", "miss"]},
                }
            },
        },
        **errors(400, 413, 415, 429, 503),
    },
    openapi_extra=json_body("RunRequest"),
)
async def create_run(request: Request, format: RunFormat = FORMAT) -> Response:
    """Run a program; the body is a RunRequest (parsed strictly: see api/requests.py).

    A request answered before (same program, device and seed, on the CPU) gets that
    run again under a new id, with the header ``X-Chainlens-Cache: hit``."""
    json_body_only(request)
    req = parse_run_request(await request.body())
    body, cached = await request.app.state.service.run(req, client_address(request.client))
    return await run_response(
        body, request, format, headers={CACHE_HEADER: "hit" if cached else "miss"}
    )


@router.post(
    "/import",
    status_code=201,
    response_model=ImportedRun,
    responses=errors(400, 413, 415, 429),
    openapi_extra=json_body("Run"),
)
async def import_run(request: Request) -> Response:
    """Keep a Run recorded elsewhere (``chainlens.run`` on another machine, a saved
    file): checked against the schema, numbers only where numbers go, at most
    ``max_import_bytes``. Nothing in it runs; checks and numpy code, which run a program
    again, say it has none."""
    json_body_only(request)
    service = request.app.state.service
    run_id = await service.import_run(await request.body(), client_address(request.client))
    return json_response({"id": run_id, "url": f"/#r={run_id}"}, status=201)


@router.get("/{run_id}", response_model=Run, responses={**errors(404, 429, 503), **STORED})
async def get_run(run_id: str, request: Request, format: StoredFormat = STORED_FORMAT) -> Response:
    service = request.app.state.service
    if format == "html":
        return HTMLResponse(await service.page(run_id, client_address(request.client)))
    body = service.get(run_id)
    if body is None:
        raise RunNotFound.of(run_id)
    return await run_response(body, request, format)


@router.post(
    "/{run_id}/check",
    response_model=GradCheck,
    responses=errors(400, 404, 413, 415, 429, 503),
    openapi_extra=json_body("CheckRequest"),
)
async def check_gradient(run_id: str, request: Request) -> Response:
    """Check one gradient of a finished run by finite differences: a leaf's (in a pass)
    or a step's (each input of that node). The program runs again in a worker; the body
    is a CheckRequest. 400 ``check_failed`` says why a check could not be made."""
    json_body_only(request)
    req = parse_model(await request.body(), CheckRequest)
    body = await request.app.state.service.check(run_id, req, client_address(request.client))
    return json_response(body)


@router.get("/{run_id}/program", response_model=RunProgram, responses=errors(404))
async def run_program(run_id: str, request: Request) -> Response:
    """The program a kept run ran, as it was sent (the page shows it when it opens a run
    by its link); null for an imported Run, which carries none. 404 for an unknown run."""
    service = request.app.state.service
    if not service.kept(run_id):
        raise RunNotFound.of(run_id)
    return json_response({"run_id": run_id, "source": service.program(run_id)})


@router.get(
    "/{run_id}/manual.py",
    response_class=Response,
    responses={
        200: {
            "content": {"text/x-python": {"schema": {"type": "string"}}},
            "description": "A standalone Python file (numpy only).",
        },
        **errors(400, 404, 429, 503),
    },
)
async def manual_backprop(
    run_id: str,
    request: Request,
    pass_: int = Query(
        0,
        alias="pass",
        ge=0,
        le=1_000_000,
        description="The backward pass to write out, "
        "by its index in the Run's passes (the file "
        "and its name number passes from 1).",
    ),
) -> Response:
    """One backward pass of a finished run as manual-backprop code: a standalone numpy
    file that recomputes the forward and every gradient, one chain-rule line per node
    in the engine's order, ending in ``GRADIENTS`` (dL/d each leaf) and ``UPSTREAM``
    (dL/d each node's output, by node id). The program runs again in a worker. 400
    ``manual_unavailable`` says why a pass cannot be written out (a custom Function,
    an op without a numpy translation, a pass the program never finished)."""
    body = await request.app.state.service.manual(run_id, pass_, client_address(request.client))
    return Response(
        body,
        media_type="text/x-python; charset=utf-8",
        headers={
            "Content-Disposition": f'inline; filename="chainlens-{run_id[:16]}-pass{pass_ + 1}.py"'
        },
    )


@router.get(
    "/{run_id}/tensors/{node}",
    response_model=NodeTensors,
    responses=errors(400, 404, 429, 503),
)
async def node_tensors(
    run_id: str,
    request: Request,
    node: str = Path(
        max_length=64, pattern=r"^[A-Za-z0-9_]+$", description="A node id of the Run (n3)."
    ),
    pass_: int = Query(
        0,
        alias="pass",
        ge=0,
        le=1_000_000,
        description="The backward pass, by its index in the Run's passes.",
    ),
) -> Response:
    """One node's tensors in full (value, gradient, saved), for pictures whose every
    pixel can be read: the Run keeps values to 64 elements. The program runs again in
    a worker. 400 ``tensors_unavailable`` says why not (unknown node, a pass not
    recorded, more than max_fetched_elements elements)."""
    body = await request.app.state.service.tensors(
        run_id, node, pass_, client_address(request.client)
    )
    return json_response(body)
