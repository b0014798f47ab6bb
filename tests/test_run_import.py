"""A Run recorded elsewhere, imported (``POST /api/v1/runs/import``): kept when it is a
Run, refused with a 4xx saying why when it is not, and opened on the page with its text
shown as text."""

from __future__ import annotations

import httpx
import orjson
import pytest

import chainlens
from chainlens.examples.catalog import examples

from browser import GuardedPage
from server import serve

IMPORT = "/api/v1/runs/import"
JSON = {"content-type": "application/json"}


def _recorded(example_id: str = "chain_rule") -> dict:
    """A Run made in-process, as a script on another machine would have it."""
    source = next(e.source for e in examples() if e.id == example_id)
    return chainlens.run(source).model_dump(mode="json")


def _import(base_url: str, body: bytes) -> httpx.Response:
    return httpx.post(base_url + IMPORT, content=body, headers=JSON, timeout=60)


def test_an_imported_run_is_kept_and_read_back(base_url: str) -> None:
    run = _recorded("lenet")
    r = _import(base_url, orjson.dumps(run))
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["url"] == f"/#r={answer['id']}" and answer["id"] != run["id"]
    kept = httpx.get(f"{base_url}/api/v1/runs/{answer['id']}").json()
    assert kept == {**run, "id": answer["id"]}


def _hostile(base_url: str, body: bytes, code: str = "invalid_run") -> str:
    r = _import(base_url, body)
    assert r.status_code == 400, (r.status_code, r.text[:200])
    error = r.json()["error"]
    assert error["code"] == code
    return error["message"]


def test_what_is_not_a_run_is_refused_with_why(base_url: str) -> None:
    run = _recorded()
    assert "not JSON" in _hostile(base_url, b"{not json")
    assert "JSON object" in _hostile(base_url, b"[1, 2, 3]")
    assert "not JSON" in _hostile(base_url, b"[" * 5000 + b"]" * 5000)  # nesting
    assert "not JSON" in _hostile(base_url, orjson.dumps(run)[:-1] + b', "x": 1e999}')
    assert "not a Run: nodes" in _hostile(base_url, orjson.dumps({**run, "nodes": "many"}))

    def with_value(path: str, value: object) -> bytes:
        broken = orjson.loads(orjson.dumps(run))
        view = broken["variables"]["x"]["value"]
        if path == "values":
            view["values"] = value
        elif path == "shape":
            view["shape"] = value
        else:
            view["stats"][path] = value
        return orjson.dumps(broken)

    assert "is not a number" in _hostile(base_url, with_value("values", ["one", 1.0, 1.0]))
    assert "is not a number" in _hostile(base_url, with_value("min", "<script>"))
    assert "shape" in _hostile(base_url, with_value("values", [1.0, 1.0]))
    assert "numel" in _hostile(base_url, with_value("shape", [10**12, 10**12]))
    huge = with_value("values", ["HUGE", 1.0, 1.0]).replace(b'"HUGE"', b"1e400")
    assert "not JSON" in _hostile(base_url, huge)  # (no double holds it)
    line = orjson.dumps(run).replace(b'"line":', b'"line":1e30,"_":', 1)
    assert "not a Run" in _hostile(base_url, line)


def test_an_oversized_import_is_413_naming_the_limit() -> None:
    with serve(max_import_bytes=4096) as base:
        r = _import(base, orjson.dumps(_recorded("lenet")))
        assert r.status_code == 413
        assert "max_import_bytes=4096" in r.json()["error"]["message"]
        # the limit of other requests stays as it was
        small = httpx.post(base + "/api/v1/runs", content=b"x" * 40_000, headers=JSON)
        assert small.status_code == 413 and "max_body_bytes" in small.json()["error"]["message"]


def test_what_needs_the_program_says_so(base_url: str) -> None:
    run_id = _import(base_url, orjson.dumps(_recorded())).json()["id"]
    for r in (
        httpx.post(f"{base_url}/api/v1/runs/{run_id}/check", json={"node": "n1"}, timeout=60),
        httpx.get(f"{base_url}/api/v1/runs/{run_id}/manual.py", timeout=60),
        httpx.get(f"{base_url}/api/v1/runs/{run_id}/tensors/n1", timeout=60),
    ):
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "needs_program"
        assert "imported" in r.json()["error"]["message"]


@pytest.mark.parametrize("where", ["label", "names"])
def test_the_page_opens_an_import_and_shows_its_text_as_text(
    page: GuardedPage, base_url: str, where: str
) -> None:
    run = _recorded()
    hostile = '<img src=x onerror="window.pwned=1">'
    leaf = next(n for n in run["nodes"] if n["kind"] == "leaf")
    if where == "label":
        leaf["label"] = hostile
    else:
        leaf["names"] = [hostile]
    run_id = _import(base_url, orjson.dumps(run)).json()["id"]
    page.page.evaluate("delete document.body.dataset.painted")
    page.page.goto(f"{base_url}/#r={run_id}")
    page.page.reload()  # (a hash change alone does not reload the page)
    page.page.wait_for_function("document.body.dataset.painted", timeout=30_000)
    cells = page.page.evaluate(
        "[...document.querySelectorAll('table[aria-label=Nodes] tbody td')].map(td => td.textContent)"
    )
    assert any(hostile in c for c in cells)
    assert page.page.evaluate("window.pwned === undefined")
    assert page.page.evaluate("document.querySelectorAll('img[src=x]').length") == 0
    assert "recorded elsewhere" in page.page.get_by_role("textbox", name="Program").inner_text()
    assert page.errors == [] and page.foreign == []


def test_a_script_sends_its_run_to_a_server(base_url: str) -> None:
    run = chainlens.run(next(e.source for e in examples() if e.id == "two_layer_nn"))
    url = chainlens.open(run, server=base_url, browser=False)
    assert url.startswith(base_url + "/#r=")
    run_id = url.rsplit("=", 1)[1]
    with chainlens.Client(base_url) as client:
        assert client.get(run_id).model_dump() == {**run.model_dump(), "id": run_id}
        again = client.import_run(run)
        assert again.id != run_id and again.url == f"/#r={again.id}"


def test_the_page_saves_the_graph_and_the_run(page: GuardedPage, base_url: str, tmp_path) -> None:
    """The PNG and JSON buttons: an image of the graph as drawn, and the Run byte for byte
    as the API keeps it."""
    source = next(e.source for e in examples() if e.id == "chain_rule")
    page.page.evaluate(f"chainlens.load({source!r})")
    page.page.evaluate("delete document.body.dataset.painted")
    assert page.page.is_disabled("#save-json")
    page.page.click("#run")
    page.page.wait_for_function("document.body.dataset.painted", timeout=30_000)
    with page.page.expect_download() as json_file:
        page.page.click("#save-json")
    data = json_file.value.path().read_bytes()
    run_id = orjson.loads(data)["id"]
    assert json_file.value.suggested_filename == f"chainlens-{run_id}.json"
    assert data == httpx.get(f"{base_url}/api/v1/runs/{run_id}").content
    with page.page.expect_download() as png_file:
        page.page.click("#save-png")
    image = png_file.value.path().read_bytes()
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(image[16:20], "big"), int.from_bytes(image[20:24], "big")
    canvas = page.page.evaluate(
        "[document.getElementById('graph').width, document.getElementById('graph').height]"
    )
    assert [width, height] == canvas
    assert page.errors == [] and page.foreign == []


def test_a_saved_run_opens_again_on_the_page(page: GuardedPage, tmp_path) -> None:
    """JSON saved from the page (or by a script) opens again with "Open…": the same
    nodes, values and gradients in the Nodes table."""
    source = next(e.source for e in examples() if e.id == "two_layer_nn")
    page.page.evaluate(f"chainlens.load({source!r})")
    page.page.evaluate("delete document.body.dataset.painted")
    page.page.click("#run")
    page.page.wait_for_function("document.body.dataset.painted", timeout=30_000)
    rows = page.page.evaluate(TABLE_TEXT)
    with page.page.expect_download() as saved:
        page.page.click("#save-json")
    path = tmp_path / "run.json"
    saved.value.save_as(path)
    page.page.evaluate("delete document.body.dataset.painted")
    page.page.set_input_files("#open-json", str(path))
    page.page.wait_for_function("document.body.dataset.painted", timeout=30_000)
    assert "#r=" in page.page.url
    assert page.page.evaluate(TABLE_TEXT) == rows
    assert "recorded elsewhere" in page.page.get_by_role("textbox", name="Program").inner_text()
    assert page.errors == [] and page.foreign == []


TABLE_TEXT = (
    "[...document.querySelectorAll('table[aria-label=Nodes] tbody tr')]"
    ".map(tr => [...tr.children].map(td => td.textContent))"
)
