"""The compact Run: each tensor once, its numbers as little-endian binary.

The JSON Run writes a tensor wherever it appears: a gradient passed from one node to the
next is one step's ``grad_inputs`` and the next step's ``grad_output``, and its values
are decimal text. The compact Run is the same Run with every TensorView slot holding an
index into a table of distinct TensorViews, whose values sit in one binary block, and
every step's formula an index into a table of distinct formulas (3,000 steps of an
unrolled RNN share a few dozen)::

    b"CLR1" | header length (u32, little-endian) | header (JSON) | zero padding to 8 bytes
    | values (each array little-endian, 8-byte aligned)

    header = {"run": the Run, its TensorView slots as indices into "tensors" and each
                     step's formula as an index into "formulas" (or null),
              "tensors": [a TensorView, its "values" null or
                          {"type": "f8" | "i8" | "b1", "at": byte offset, "count": n}],
              "formulas": [a step's formula]}

A TensorView's values are float64 (``f8``: the very numbers the JSON writes; "nan",
"inf" and "-inf" there are NaN and infinities here), int64 (``i8``) or one byte per
bool (``b1``), row-major in its ``shape``. ``decode`` gives back the JSON Run, value for
value: the encoding is a way to carry the Run, not another Run.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson

from .tracing.summaries import NON_FINITE_TEXT, nest, number

MAGIC = b"CLR1"
#: What a client sends in ``Accept`` (or ``?format=compact``) to be answered this way.
MEDIA_TYPE = "application/vnd.chainlens.run"
_LENGTH = struct.Struct("<I")


def tensor_slots(run: dict[str, Any]) -> Iterator[tuple[Any, Any]]:
    """Every place the Run holds a TensorView (or null where it could), as (container,
    key): the schema's Variable, Node, Step and Pass fields of type TensorView."""
    for variable in run["variables"].values():
        yield variable, "value"
        yield variable, "grad"
    for node in run["nodes"]:
        yield node, "value"
        yield node, "grad"
        for name in node.get("saved") or ():
            yield node["saved"], name
    for p in run["passes"]:
        yield p, "gradient"
        for nid in p.get("leaf_values") or ():
            yield p["leaf_values"], nid
        for step in p["steps"]:
            yield step, "grad_output"
            for i in range(len(step["grad_inputs"])):
                yield step["grad_inputs"], i


def _flat(values: Any, shape: list[int]) -> list[Any]:
    if not shape:
        return [values]
    if len(shape) == 1:
        return values
    return [x for row in values for x in _flat(row, shape[1:])]


def _array(view: dict[str, Any]) -> np.ndarray | None:
    """The view's values as one typed array, or None where they are not numbers of one
    kind (then they stay in the header as JSON)."""
    flat = _flat(view["values"], view["shape"])
    if view["dtype"] == "bool":
        if all(type(v) is bool for v in flat):
            return np.array(flat, dtype=np.uint8)
        return None
    if all(type(v) is int for v in flat) and "float" not in view["dtype"]:
        try:
            return np.array(flat, dtype="<i8")
        except OverflowError:  # (a uint64 past 2**63)
            return None
    if all(type(v) in (float, int) or v in NON_FINITE_TEXT for v in flat):
        return np.array([NON_FINITE_TEXT[v] if type(v) is str else v for v in flat], dtype="<f8")
    return None


def encode(run: dict[str, Any]) -> bytes:
    """The Run (as JSON data) in the compact encoding; ``run`` is left as it was."""
    return encode_json(orjson.dumps(run))


def encode_json(body: bytes) -> bytes:
    """A JSON Run's body in the compact encoding. TensorViews equal in every field are
    one entry of the table (the engine hands out one view per tensor)."""
    tensors: list[dict[str, Any]] = []
    blocks: list[bytes] = []
    offset = 0
    index: dict[bytes, int] = {}
    header_run = orjson.loads(body)  # (its slots are rewritten as indices)
    for container, key in tensor_slots(header_run):
        view = container[key]
        if view is None:
            continue
        identity = orjson.dumps(view, option=orjson.OPT_SORT_KEYS)
        found = index.get(identity)
        if found is None:
            found = index[identity] = len(tensors)
            entry = dict(view)
            values = _array(view) if view["values"] is not None else None
            if values is not None:
                kind = {"u": "b1", "i": "i8"}.get(values.dtype.kind, "f8")
                data = values.tobytes()
                entry["values"] = {"type": kind, "at": offset, "count": values.size}
                blocks.append(data + b"\0" * (-len(data) % 8))
                offset += len(blocks[-1])
            tensors.append(entry)
        container[key] = found
    formulas = _share_formulas(header_run)
    header = orjson.dumps({"run": header_run, "tensors": tensors, "formulas": formulas})
    start = len(MAGIC) + _LENGTH.size + len(header)
    return b"".join([MAGIC, _LENGTH.pack(len(header)), header, b"\0" * (-start % 8), *blocks])


def _share_formulas(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Each step's formula replaced by its index in the returned table of distinct ones."""
    formulas: list[dict[str, Any]] = []
    index: dict[bytes, int] = {}
    for p in run["passes"]:
        for step in p["steps"]:
            formula = step["formula"]
            if formula is not None:
                identity = orjson.dumps(formula, option=orjson.OPT_SORT_KEYS)
                found = index.get(identity)
                if found is None:
                    found = index[identity] = len(formulas)
                    formulas.append(formula)
                step["formula"] = found
    return formulas


_TYPES = {"f8": "<f8", "i8": "<i8", "b1": "u1"}


def _values(entry: dict[str, Any], blob: memoryview) -> Any:
    spec = entry["values"]
    if not isinstance(spec, dict) or "type" not in spec:
        return spec  # null, or values kept as JSON
    array = np.frombuffer(blob, _TYPES[spec["type"]], spec["count"], spec["at"])
    if spec["type"] == "b1":
        flat: list[Any] = [bool(v) for v in array]
    elif spec["type"] == "f8" and not np.isfinite(array).all():
        flat = [number(v) for v in array.tolist()]
    else:
        flat = array.tolist()
    return nest(flat, tuple(entry["shape"]))


def decode(data: bytes) -> dict[str, Any]:
    """The JSON Run (as data) a compact Run carries. Raises ValueError for bytes that
    are not one."""
    if data[: len(MAGIC)] != MAGIC:
        raise ValueError("not a compact Run (no CLR1 header)")
    (length,) = _LENGTH.unpack_from(data, len(MAGIC))
    start = len(MAGIC) + _LENGTH.size
    header = orjson.loads(data[start : start + length])
    start += length
    blob = memoryview(data)[start + (-start % 8) :]
    views = [{**entry, "values": _values(entry, blob)} for entry in header["tensors"]]
    run = header["run"]
    for container, key in tensor_slots(run):
        found = container[key]
        if found is not None:
            container[key] = views[found]  # (shared, as in the engine's own Run)
    formulas = header["formulas"]
    for p in run["passes"]:
        for step in p["steps"]:
            if step["formula"] is not None:
                step["formula"] = formulas[step["formula"]]
    return run
