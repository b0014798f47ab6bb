"""Strict request parsing: what FastAPI's default JSON handling lets through as a 500.

Measured: ``{"source": NaN}`` and ``"\\ud800"`` in a body each gave a 500, duplicate
keys silently kept the last. Here each is a clean 400 or 422, and no error echoes
the input back.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import ChainlensError
from ..schema import RunRequest

M = TypeVar("M", bound=BaseModel)


class BadRequest(ChainlensError):
    code = "bad_request"


class SchemaError(Exception):
    """The body is JSON but not the request model: FastAPI's 422 shape, inputs left out."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("invalid request")
        self.errors = errors


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BadRequest(f"duplicate key {key[:40]!r} in the JSON body")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise BadRequest(f"{name} is not valid JSON")


def _check_strings(value: Any) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest("the body contains a lone surrogate (\\ud800-\\udfff)") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_strings(k)
            _check_strings(v)
    elif isinstance(value, list):
        for v in value:
            _check_strings(v)


def parse_json(raw: bytes | str) -> Any:
    try:
        data = json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except BadRequest:
        raise
    except UnicodeDecodeError:
        raise BadRequest("the body is not valid UTF-8") from None
    except ValueError as e:
        raise BadRequest(f"the body is not valid JSON: {str(e)[:120]}") from None
    except RecursionError:
        raise BadRequest("the JSON body is nested too deeply") from None
    _check_strings(data)
    return data


def parse_run_request(raw: bytes | str) -> RunRequest:
    return parse_model(raw, RunRequest)


def parse_model(raw: bytes | str, model: type[M]) -> M:
    """A request body as ``model``, strictly (see the module's docstring)."""
    data = parse_json(raw)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise SchemaError(
            [
                {"type": err["type"], "loc": ["body", *err["loc"]], "msg": err["msg"]}
                for err in e.errors(include_url=False, include_input=False)
            ]
        ) from None
