"""A Run recorded elsewhere (``POST /api/v1/runs/import``), checked before it is kept.

Nothing in an imported Run is ever executed: it is numbers and text that the page draws.
Still, it comes from a stranger, so it must be a Run by the schema, and every place
where the schema allows a number as text (``"nan"``, ``"inf"``, ``"-inf"``) must hold
one of those, every tensor's values must fit its shape, and every shape its element
count; text stays text wherever the page shows it (its labels are drawn and written as
text, never as markup).
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from pydantic import ValidationError

from ..compact import tensor_slots
from ..schema import Run
from ..tracing.summaries import MAX_VALUES, NON_FINITE_TEXT
from .requests import BadRequest

#: No dimension of a tensor is larger (the engine's limits are far below it).
MAX_DIM = 2**40


def _number(v: Any, where: str) -> None:
    if type(v) is bool or (type(v) is int and abs(v) < 2**63):
        return
    if type(v) is float and math.isfinite(v):
        return
    if type(v) is str and v in NON_FINITE_TEXT:
        return
    raise BadRequest(f"{where}: {str(v)[:40]!r} is not a number", code="invalid_run")


def _values(values: Any, shape: list[int], where: str) -> None:
    if not shape:
        _number(values, where)
        return
    if not isinstance(values, list) or len(values) != shape[0]:
        raise BadRequest(f"{where}: values do not have the shape {shape}", code="invalid_run")
    for item in values:
        _values(item, shape[1:], where)


def _view(view: dict[str, Any], where: str) -> None:
    shape = view["shape"]
    if any(d < 0 or d > MAX_DIM for d in shape) or math.prod(shape) != view["numel"]:
        raise BadRequest(f"{where}: shape {shape[:8]} does not hold numel", code="invalid_run")
    if view["values"] is not None:
        if view["numel"] > MAX_VALUES:  # (what the engine sends values for)
            raise BadRequest(
                f"{where}: values are sent for at most {MAX_VALUES} elements", code="invalid_run"
            )
        _values(view["values"], shape, where)
    stats = view["stats"]
    if stats is not None:
        for key in ("min", "max", "mean", "std", "norm"):
            if stats[key] is not None:
                _number(stats[key], f"{where}.stats.{key}")


def checked_run(body: bytes) -> bytes:
    """The Run in ``body`` as the store keeps it (its JSON without the id), or BadRequest
    saying what is wrong with it."""
    try:
        data = orjson.loads(body)  # (refuses NaN literals, 1e999 and nesting past 1,024)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"not JSON: {e}", code="invalid_run") from None
    if not isinstance(data, dict):
        raise BadRequest("a Run is a JSON object", code="invalid_run")
    data.setdefault("id", "")
    try:
        run = Run.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise BadRequest(f"not a Run: {where}: {first['msg']}", code="invalid_run") from None
    kept = run.model_dump_json(exclude={"id"}).encode()
    for container, key in tensor_slots(orjson.loads(kept)):
        if container[key] is not None:
            _view(container[key], f"a tensor ({key})")
    return kept
