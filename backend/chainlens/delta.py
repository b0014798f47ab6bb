"""The ``done`` event for a client that watched the run streamed: the Run less what the
stream carried (``WS /api/v1/stream?done=delta``).

Every node and step goes out once as the program runs; a plain ``done`` then carries the
whole Run again (an RNN unrolled 500 steps: 6.4 MB twice). The Run is assembled from the
same records and views as the events (``assembly``), so a node or a pass's steps equal
to what was sent is named instead of repeated: a node by its id, with the fields that
changed since (its gradient, saved tensors, names); a pass's steps as null. ``rebuild``
is the reader, as the page's ``RunModel`` reads it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .schema import Event, NodeDict, NodePatch, RunDict, StepDict


class Streamed:
    """What the stream sent: each node (the first time its id came) and each pass's
    steps, as the events' own dicts."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeDict] = {}
        self.steps: dict[int, list[StepDict]] = {}

    def note(self, events: Iterable[Event]) -> None:
        for e in events:
            if e["type"] == "node":
                self.nodes.setdefault(e["node"]["id"], e["node"])
            elif e["type"] == "step":
                self.steps.setdefault(e["pass"], []).append(e["step"])


def run_delta(run: RunDict, streamed: Streamed) -> dict[str, Any]:
    """The Run, its streamed nodes as patches and its streamed steps as null."""
    nodes: list[NodeDict | NodePatch] = []
    for node in run["nodes"]:
        sent = streamed.nodes.get(node["id"])
        if sent is None:
            nodes.append(node)
        else:
            changed = {k: v for k, v in node.items() if k not in sent or sent[k] != v}  # type: ignore[literal-required]
            nodes.append({"streamed": node["id"], "changed": changed})
    passes = [
        {**p, "steps": None} if p["steps"] and p["steps"] == streamed.steps.get(p["index"]) else p
        for p in run["passes"]
    ]
    return {**run, "nodes": nodes, "passes": passes}


def rebuild(delta: dict[str, Any], events: Iterable[Any]) -> dict[str, Any]:
    """The whole Run from a ``done`` delta and the events streamed before it."""
    seen = Streamed()
    seen.note(events)
    return {
        **delta,
        "nodes": [
            {**seen.nodes[n["streamed"]], **n["changed"]} if "streamed" in n else n
            for n in delta["nodes"]
        ],
        "passes": [
            {**p, "steps": seen.steps[p["index"]]} if p["steps"] is None else p
            for p in delta["passes"]
        ],
    }
