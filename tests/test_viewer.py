"""The standalone viewer: a Run saved as one HTML file, opened from ``file://`` in
Debian's Chromium with the network off; and the page's SVG and HTML downloads.

The numbers it shows are compared with plain PyTorch running the same program.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_page import load_example, numbers, run_and_wait, step_label, table_rows

import chainlens
from chainlens.examples.catalog import examples
from chainlens.recording import Recording
from chainlens.schema import Run

from browser import GuardedPage
from oracle import run_plain

#: What a saved file may load: itself, and the layout worker it makes from its own code.
OFFLINE_SCHEMES = ("file:", "blob:", "data:")


class SavedPage:
    """A saved file open in a context with the network off, and what it asked for."""

    def __init__(self, chromium: Any, path: Path) -> None:
        self.context = chromium.new_context(offline=True, viewport={"width": 1280, "height": 720})
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_function("document.body.dataset.painted", timeout=30_000)

    def close(self) -> None:
        self.context.close()
        assert self.errors == [], self.errors
        assert all(u.startswith(OFFLINE_SCHEMES) for u in self.requests), self.requests


@pytest.fixture
def saved(chromium: Any) -> Iterator[Any]:
    opened: list[SavedPage] = []

    def open_file(path: Path) -> SavedPage:
        opened.append(SavedPage(chromium, path))
        return opened[-1]

    yield open_file
    for page in opened:
        page.close()


def _source(example_id: str) -> str:
    return next(e.source for e in examples() if e.id == example_id)


def test_a_saved_run_opens_offline_and_steps_backward(saved: Any, tmp_path: Path) -> None:
    source = _source("chain_rule")
    run = chainlens.run(source)
    path = tmp_path / "chain_rule.html"
    run.save(path)
    view = saved(path)
    page = GuardedPage.__new__(GuardedPage)  # (the page helpers read .page only)
    page.page = view.page
    assert view.page.evaluate("document.body.dataset.painted") == run.id
    assert view.page.locator("#run").is_hidden()  # nothing here needs a server
    editor = view.page.get_by_role("textbox", name="Program").inner_text()
    assert "requires_grad" in editor  # the program it ran, in the editor
    current, total = step_label(page)
    assert (current, total) == (1, len(run.passes[0].steps))
    view.page.locator("#graph").focus()
    view.page.keyboard.press("End")
    assert step_label(page) == (total, total)
    expected = run_plain(source).variables["x"].grad.tolist()
    x_row = next(r for r in table_rows(page) if r["names"] == "x")
    assert numbers(x_row["gradient"]) == pytest.approx(expected, rel=1e-6)
    card = view.page.get_by_role("region", name="Chain rule").inner_text()
    assert "AccumulateGrad" in card and "verified" in card


def test_a_recorded_script_opens_with_its_own_text(saved: Any, tmp_path: Path) -> None:
    script = tmp_path / "mine.py"
    script.write_text(
        "import torch\n"
        "w = torch.tensor([0.5, -1.5], requires_grad=True)\n"
        "loss = (torch.sigmoid(w) * 4).sum()\n"
        "loss.backward()\n"
    )
    import runpy

    names: dict[str, Any] = {}
    rec = Recording(variables=lambda: names, program_file=str(script))
    with rec:
        names.update(runpy.run_path(str(script)))
    assert rec.run is not None
    rec.run.save(tmp_path / "mine.html")
    view = saved(tmp_path / "mine.html")
    editor = view.page.get_by_role("textbox", name="Program").inner_text()
    assert "torch.sigmoid(w) * 4" in editor
    w_grad = names["w"].grad
    row = next(r for r in _rows(view.page) if r["names"] == "w")
    assert row["value"] == "[0.5, -1.5]"
    view.page.locator("#graph").focus()
    view.page.keyboard.press("End")
    row = next(r for r in _rows(view.page) if r["names"] == "w")
    assert numbers(row["gradient"]) == [float(f"{v:.4g}") for v in w_grad.tolist()]  # as shown


def _rows(page: Any) -> list[dict[str, str]]:
    holder = GuardedPage.__new__(GuardedPage)
    holder.page = page
    return table_rows(holder)


HOSTILE = '</script><img src=x onerror="window.pwned=1">'


def test_a_hostile_label_in_a_saved_file_is_only_text(saved: Any, tmp_path: Path) -> None:
    """A Run is data: whatever a label, a name or printed text holds, the saved file
    shows it as text and runs none of it."""
    data = chainlens.run(_source("chain_rule")).model_dump(mode="json")
    leaf = next(n for n in data["nodes"] if n["kind"] == "leaf")
    leaf["names"] = [HOSTILE]
    leaf["label"] = HOSTILE
    data["stdout"] = HOSTILE + "\n<!-- <script>window.pwned=2</script>\n"
    run = Run.model_validate(data)
    run.save(tmp_path / "hostile.html")
    view = saved(tmp_path / "hostile.html")
    assert view.page.evaluate("window.pwned") is None
    assert view.page.locator("img[src=x]").count() == 0
    assert HOSTILE in view.page.get_by_label("Printed output").inner_text()
    assert any(r["names"] == HOSTILE for r in _rows(view.page))


def test_the_page_saves_svg_and_a_standalone_html(
    page: GuardedPage, saved: Any, tmp_path: Path
) -> None:
    load_example(page, "chain_rule")
    run_and_wait(page)
    rows = table_rows(page)
    drawn = [page.page.evaluate(f"chainlens.text('{r['id']}')") for r in rows]
    labels = {d[0] for d in drawn if d}
    with page.page.expect_download() as svg_download:
        page.page.get_by_role("button", name="SVG").click()
    svg_path = tmp_path / "graph.svg"
    svg_download.value.save_as(svg_path)
    svg = ET.parse(svg_path).getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    texts = {t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")}
    assert len(labels) == len(rows) and labels <= texts  # every label the canvas drew
    assert len(list(svg.iter("{http://www.w3.org/2000/svg}path"))) >= len(rows)
    assert re.fullmatch(r"chainlens-\w+\.svg", svg_download.value.suggested_filename)

    with page.page.expect_download() as html_download:
        page.page.get_by_role("button", name="HTML").click()
    html_path = tmp_path / "run.html"
    html_download.value.save_as(html_path)
    run_id = page.page.evaluate("document.body.dataset.painted")
    view = saved(html_path)
    assert view.page.evaluate("document.body.dataset.painted") == run_id
    assert "requires_grad" in view.page.get_by_role("textbox", name="Program").inner_text()
