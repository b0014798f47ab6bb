"""A notebook, executed by ``nbclient`` in a real IPython kernel, that records the
user's own model and shows its runs inline; the outputs' HTML opened in Debian's
Chromium with the network off, as a notebook page holds them: one iframe per run.

The notebook is written here in the style of the PyTorch "Neural Networks" tutorial
(a small ``nn.Module``, its loss, ``backward``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

CELLS = [
    "import torch\nimport torch.nn as nn\nimport chainlens\ntorch.manual_seed(0)",
    "class Net(nn.Module):\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.fc = nn.Linear(3, 2)\n\n"
    "    def forward(self, x):\n"
    "        return torch.tanh(self.fc(x)).sum()\n\n"
    "net = Net()\nx = torch.randn(4, 3)",
    "with chainlens.record() as rec:\n"
    "    loss = net(x)\n"
    "    loss.backward()\n"
    "print(repr(loss.item()))\n"
    "rec.run",
    "w = x.detach().clone().requires_grad_()\n"
    "y = (w ** 2).mean()\n"
    "print(repr(y.item()))\n"
    "run2 = chainlens.show(y)",
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The notebook after a real kernel ran it (its own runtime and IPython folders)."""
    home = tmp_path_factory.mktemp("kernel")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JUPYTER_RUNTIME_DIR", str(home / "runtime"))
        env.setenv("IPYTHONDIR", str(home / "ipython"))
        env.setenv("JUPYTER_PLATFORM_DIRS", "1")
        client = NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(home)}}
        )
        client.execute()
    return nb


def _outputs(cell: Any, kind: str) -> list[Any]:
    return [o for o in cell.outputs if o.output_type == kind]


def test_runs_display_inline_as_the_viewer(executed: Any) -> None:
    recorded, shown = executed.cells[2], executed.cells[3]
    (result,) = _outputs(recorded, "execute_result")
    assert result.data["text/plain"].startswith("Run(id=")
    assert result.data["text/html"].startswith("<iframe srcdoc=")
    (display,) = _outputs(shown, "display_data")  # chainlens.show(y)
    assert display.data["text/html"].startswith("<iframe srcdoc=")


def test_the_outputs_show_the_graph_and_step_backward_offline(
    executed: Any, chromium: Any, tmp_path: Path
) -> None:
    recorded, shown = executed.cells[2], executed.cells[3]
    printed = [float(_outputs(c, "stream")[0].text.strip()) for c in (recorded, shown)]
    outputs = [
        _outputs(recorded, "execute_result")[0].data["text/html"],
        _outputs(shown, "display_data")[0].data["text/html"],
    ]
    page_file = tmp_path / "notebook-outputs.html"
    page_file.write_text("<!doctype html><html><body>" + "".join(outputs) + "</body></html>")
    context = chromium.new_context(offline=True, viewport={"width": 1400, "height": 1700})
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_file.resolve().as_uri())
        frames = [page.frame_locator("iframe").nth(k) for k in range(2)]
        for f in frames:
            f.locator("body[data-painted]").wait_for(timeout=30_000)
        runs = [
            f.locator("#chainlens-run").evaluate("el => JSON.parse(el.textContent).run")
            for f in frames
        ]
        # every number shown is the kernel's: the loss each cell printed
        assert [r["passes"][0]["loss"] for r in runs] == printed
        assert runs[0]["nodes"][0]["file"] is not None  # lines point into the cell
        labels = [f.locator("#step-label") for f in frames]
        totals = [len(r["passes"][0]["steps"]) for r in runs]
        first = [{n["id"]: n["grad_fn"] for n in r["nodes"]}[r["passes"][0]["root"]] for r in runs]
        assert first[1] == "MeanBackward0"
        assert [lab.inner_text() for lab in labels] == [
            f"step 1 / {total}: {grad_fn}" for total, grad_fn in zip(totals, first, strict=True)
        ]
        frames[0].get_by_role("button", name="Next step").click()
        frames[0].get_by_role("button", name="Next step").click()
        assert re.match(rf"step 3 / {totals[0]}", labels[0].inner_text())
        assert labels[1].inner_text().startswith("step 1 /")  # the other run is its own
        card = frames[0].get_by_role("region", name="Chain rule").inner_text()
        assert "verified" in card
    finally:
        context.close()
    assert errors == []
