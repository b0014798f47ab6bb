"""Files a person keeps: ``Run.to_dot()`` is DOT a parser reads back node for node and
edge for edge, whatever text the program put in its names."""

from __future__ import annotations

import pydot
import pytest

import chainlens
from chainlens.examples.catalog import examples
from chainlens.schema import Run


def _graph(run: Run) -> pydot.Dot:
    (graph,) = pydot.graph_from_dot_data(run.to_dot())
    return graph


def _label(graph: pydot.Dot, name: str) -> str:
    (node,) = graph.get_node(f'"{name}"')
    return node.get_label()


@pytest.mark.parametrize("example", examples(), ids=lambda e: e.id)
def test_each_example_graph_parses_back_node_for_node(example) -> None:
    run = chainlens.run(example.source)
    graph = _graph(run)
    ids = {n.id for n in run.nodes}
    drawn = {n.get_name().strip('"') for n in graph.get_nodes()} - {"node", "edge", "graph"}
    assert {d for d in drawn if not d.startswith("cut")} == ids
    edges = {(e.get_source().strip('"'), e.get_destination().strip('"')) for e in graph.get_edges()}
    wanted = {(i, n.id) for n in run.nodes for i in n.inputs if i in ids}
    assert {e for e in edges if not e[1].startswith("cut")} == wanted
    cut = [e for e in graph.get_edges() if e.get_destination().strip('"').startswith("cut")]
    assert len(cut) == len([c for c in run.cut_edges if c.source in ids])
    assert all(e.get("style") == "dashed" for e in cut)


def test_leaves_show_name_and_size_and_the_root_is_green() -> None:
    run = chainlens.run(
        "import torch\nweights = torch.ones(2, 3, requires_grad=True)\n"
        "loss = (weights * 2).sum()\nloss.backward()\n"
    )
    graph = _graph(run)
    leaf = next(n for n in run.nodes if n.kind == "leaf")
    assert _label(graph, leaf.id) == '"weights\\n(2, 3)"'
    root = run.passes[0].root
    (node,) = graph.get_node(f'"{root}"')
    assert node.get("fillcolor") == "darkolivegreen1"


def test_text_in_labels_stays_text() -> None:
    run = chainlens.run(
        "import torch\nx = torch.ones(2, requires_grad=True)\n(x * 3).sum().backward()\n"
    )
    hostile = 'a"b\\c<img src=x onerror=alert(1)>\nnext'
    data = run.model_dump()
    data["nodes"][0]["label"] = hostile
    data["nodes"][0]["kind"] = "leaf"
    graph = _graph(Run.model_validate(data))
    label = _label(graph, run.nodes[0].id)
    # the parser hands back the quoted DOT string: unescaped, it is the text itself
    assert label.startswith('"') and label.endswith('"')
    text = label[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    assert text.split("\\n")[0] == 'a"b\\c<img src=x onerror=alert(1)>'


def test_the_command_line_writes_the_graph(tmp_path) -> None:
    import subprocess
    import sys

    source = next(e.source for e in examples() if e.id == "chain_rule")
    program, out = tmp_path / "prog.py", tmp_path / "graph.dot"
    program.write_text(source)
    subprocess.run(
        [sys.executable, "-m", "chainlens", "run", str(program), "--dot", str(out)],
        capture_output=True,
        check=True,
    )
    assert out.read_text() == chainlens.run(source).to_dot()


def test_a_run_reads_in_one_line() -> None:
    run = chainlens.run(
        "import torch\nx = torch.ones(3, requires_grad=True)\ny = x * 2\ny.backward()\n"
    )
    text = repr(run)
    assert len(text) < 400 and "\n" not in text
    assert f"nodes={len(run.nodes)}" in text and "status='error'" in text
    assert "non_scalar_backward" in text and "RuntimeError: grad can be implicitly" in text
