"""The page end to end: real server, real Chromium, the user's clicks and keys.

Every number the page shows is compared with plain PyTorch (the oracle) or with
the server's own Run, which the engine tests compare with PyTorch.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import httpx
import pytest
import torch
from test_stream_delta import TRAINING

from chainlens.examples.catalog import examples

from browser import GuardedPage
from oracle import run_plain

CHAIN_RULE = [
    "import torch",
    "x = torch.ones(3, requires_grad=True)",
    "y = x + 2",
    "z = (y*y*3).mean()",
    "z.backward()",
]


def run_and_wait(g: GuardedPage, timeout_ms: int = 30_000) -> dict:
    g.page.evaluate("delete document.body.dataset.painted")
    g.page.click("#run")
    g.page.wait_for_function("document.body.dataset.painted", timeout=timeout_ms)
    return g.page.evaluate("({items: chainlens.items, engine: chainlens.layoutEngine})")


def type_program(g: GuardedPage, lines: list[str]) -> None:
    editor = g.page.get_by_role("textbox", name="Program")
    editor.click()
    g.page.keyboard.press("Control+A")
    g.page.keyboard.press("Delete")
    for line in lines:
        g.page.keyboard.type(line)
        g.page.keyboard.press("Enter")
        g.page.keyboard.press("Home")  # no auto-indent carried over


def load_example(g: GuardedPage, example_id: str) -> None:
    g.page.select_option("#examples", example_id)


def table_rows(g: GuardedPage) -> list[dict[str, str]]:
    return g.page.evaluate("""() => [...document.querySelectorAll('table[aria-label=Nodes] tbody tr')]
        .map(tr => { const c = [...tr.children].map(td => td.textContent);
          return {id: c[0], label: c[1], names: c[2], shape: c[3], value: c[4], gradient: c[5],
                  active: tr.getAttribute('aria-current') === 'step'}; })""")


def numbers(text: str) -> list[float]:
    return [float(t) for t in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", text)]


def step_label(g: GuardedPage) -> tuple[int, int]:
    text = g.page.inner_text("#step-label")
    m = re.match(r"step (\d+) / (\d+)", text)
    assert m, text
    return int(m[1]), int(m[2])


def test_chain_rule_typed_run_and_stepped(page: GuardedPage) -> None:
    type_program(page, CHAIN_RULE)
    assert page.page.get_by_role("textbox", name="Program").inner_text().count("requires_grad") == 1
    info = run_and_wait(page)
    assert info["items"] >= 5
    expected = run_plain("\n".join(CHAIN_RULE)).variables["x"].grad.tolist()

    x_row = next(r for r in table_rows(page) if r["names"] == "x")
    assert x_row["gradient"] == "not computed yet"  # step 1: not reached, and never shown as 0

    current, total = step_label(page)
    assert current == 1
    for _ in range(total - 1):
        page.page.get_by_role("button", name="Next step").click()
    assert step_label(page) == (total, total)
    x_row = next(r for r in table_rows(page) if r["names"] == "x")
    assert numbers(x_row["gradient"]) == pytest.approx(expected)
    assert x_row["active"]  # the last step accumulates into x

    card = page.page.get_by_role("region", name="Chain rule")
    assert card.locator(".katex").count() >= 2
    assert "AccumulateGrad" in card.inner_text()
    assert "verified" in card.inner_text()
    page.page.get_by_role("button", name="Previous step").click()
    card_text = card.inner_text()
    assert "AddBackward0" in card_text and "✓ verified" in card_text
    # the scalar-free chain rule still shows its formula typeset, and the saved tensors of
    # a multiplication are listed in the inspector with their values
    mul_row = next(r for r in table_rows(page) if r["label"] == "mul")
    page.page.locator(f"table[aria-label=Nodes] tr[data-node={mul_row['id']}]").click()
    inspector = page.page.get_by_role("region", name="Inspector").inner_text()
    assert "saved self" in inspector and "saved other" in inspector


def test_keyboard_stepping(page: GuardedPage) -> None:
    page.page.evaluate("chainlens.load(" + repr("\n".join(CHAIN_RULE)) + ")")
    page.page.evaluate("delete document.body.dataset.painted")
    page.page.get_by_role("textbox", name="Program").click()
    page.page.keyboard.press("Control+Enter")  # runs from the editor
    page.page.wait_for_function("document.body.dataset.painted")
    page.page.locator("#graph").focus()
    _, total = step_label(page)
    page.page.keyboard.press("End")
    assert step_label(page) == (total, total)
    page.page.keyboard.press("Home")
    assert step_label(page) == (1, total)
    page.page.keyboard.press("ArrowRight")
    assert step_label(page) == (2, total)
    page.page.keyboard.press("ArrowLeft")
    assert step_label(page) == (1, total)
    page.page.keyboard.press(" ")
    assert page.page.inner_text("#play") == "Pause"
    page.page.wait_for_function(
        "document.querySelector('#step-label').textContent.startsWith('step 2')"
    )
    page.page.keyboard.press(" ")
    assert page.page.inner_text("#play") == "Play"
    # every control is reachable with Tab and shows focus
    focused = set()
    for _ in range(40):
        page.page.keyboard.press("Tab")
        focused.add(
            page.page.evaluate(
                "document.activeElement.id || document.activeElement.getAttribute('aria-label') || ''"
            )
        )
    assert {"run", "share", "first", "prev", "next", "last", "play", "slider", "graph"} <= focused
    outline = page.page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


PITFALLS = [e for e in examples() if e.id.startswith("pitfall")]


@pytest.mark.parametrize("example", PITFALLS, ids=[e.id for e in PITFALLS])
def test_pitfall_diagnostic_on_node_and_line(page: GuardedPage, base_url: str, example) -> None:
    truth = httpx.post(
        base_url + "/api/v1/runs", json={"source": example.source}, timeout=60
    ).json()
    load_example(page, example.id)
    run_and_wait(page)
    shown = page.page.locator("#diagnostics button.diag")
    assert shown.count() == len(truth["diagnostics"]) > 0
    codes = [shown.nth(i).get_attribute("data-code") for i in range(shown.count())]
    assert codes == [d["code"] for d in truth["diagnostics"]]
    diag = truth["diagnostics"][0]
    # each node a warning or an error is about is drawn red on the graph
    flagged = {
        d["node"]
        for d in truth["diagnostics"]
        if d["node"]
        and d["severity"] != "info"
        and any(n["id"] == d["node"] for n in truth["nodes"])
    }
    # every pitfall puts a red node on the graph: its own, or the statement that failed
    # before making one (an integer tensor asked to require grad), as written
    page.page.wait_for_function("chainlens.flagged().length > 0")
    assert flagged <= set(page.page.evaluate("chainlens.flagged()"))
    if not truth["nodes"]:
        failed = page.page.evaluate("chainlens.flagged()")[0]
        line = example.source.splitlines()[diag["line"] - 1].strip()
        assert page.page.evaluate(f"chainlens.text('{failed}')")[:2] == [
            line,
            f"✗ line {diag['line']}: not created",
        ]
    # the editor marks the diagnostic's line
    marked_lines = page.page.evaluate("""() => [...document.querySelectorAll('.cm-lintRange')]
        .map(el => { const line = el.closest('.cm-line');
          return [...document.querySelectorAll('.cm-content .cm-line')].indexOf(line) + 1; })""")
    assert diag["line"] in marked_lines
    shown.first.click()
    if diag["node"]:
        inspector = page.page.get_by_role("region", name="Inspector").inner_text()
        assert inspector.split("\n")[2].startswith(diag["node"] + " ")
    cursor_line = page.page.evaluate("""() => { const v = document.querySelector('.cm-activeLine');
        return [...document.querySelectorAll('.cm-content .cm-line')].indexOf(v) + 1; }""")
    assert cursor_line == diag["line"]
    if truth["status"] == "error":
        assert truth["error"]["message"][:40] in page.page.inner_text("#error")
        # the partial graph is still drawn (with the failed statement when it made none)
        assert page.page.evaluate("chainlens.items") >= max(1, len(truth["nodes"]))


def test_lenet_groups_expand_and_collapse(page: GuardedPage) -> None:
    load_example(page, "lenet")
    run_and_wait(page)
    groups = page.page.evaluate("chainlens.groups()")
    assert {g["label"] for g in groups} >= {"conv1", "conv2", "fc1", "fc2", "fc3"}
    assert not any(g["collapsed"] for g in groups)
    before = page.page.evaluate("chainlens.items")
    canvas = page.page.locator("#graph").bounding_box()

    def on_screen(label: str | None = None) -> dict:
        return next(
            g
            for g in page.page.evaluate("chainlens.groups()")
            if (label is None or g["label"] == label)
            and 0 < g["x"] < canvas["width"]
            and 0 < g["y"] < canvas["height"]
        )

    group = on_screen()
    page.page.mouse.click(canvas["x"] + group["x"], canvas["y"] + group["y"])
    page.page.wait_for_function(f"chainlens.items < {before}")
    group = on_screen(group["label"])
    assert group["collapsed"]
    page.screenshot(f"lenet_{group['label']}_collapsed")

    page.page.mouse.click(canvas["x"] + group["x"], canvas["y"] + group["y"])
    page.page.wait_for_function(f"chainlens.items === {before}")
    page.page.click("#collapse-all")
    page.page.wait_for_function(f"chainlens.items < {before} - 8")
    assert all(g["collapsed"] for g in page.page.evaluate("chainlens.groups()"))


def test_share_link_reopens_the_same_view(page: GuardedPage, chromium: object) -> None:
    page.page.evaluate("chainlens.load(" + repr("\n".join(CHAIN_RULE)) + ")")
    run_and_wait(page)
    page.page.keyboard.press("End")
    page.page.locator("#graph").focus()
    page.page.keyboard.press("ArrowLeft")
    where = step_label(page)
    page.page.click("#share")
    url = page.page.url
    assert "#p=" in url
    other = GuardedPage(page.page.context)
    other.page.goto(url)
    other.page.wait_for_function("document.body.dataset.painted")
    assert step_label(other) == where
    assert "requires_grad=True" in other.page.get_by_role("textbox", name="Program").inner_text()
    assert other.foreign == [] and other.errors == []


def test_streaming_draws_nodes_before_the_run_ends(page: GuardedPage, base_url: str) -> None:
    source = "\n".join(
        [
            "import torch",
            "W = torch.randn(8, 8, requires_grad=True)",
            "h = torch.zeros(1, 8)",
            "for t in range(1000):",
            "    h = torch.tanh(h @ W + 0.1)",
            "loss = h.sum()",
            "loss.backward()",
        ]
    )
    page.page.evaluate(f"chainlens.load({source!r})")
    page.page.click("#run")
    page.page.wait_for_function("chainlens.firstPaintAt !== null", timeout=30_000)
    assert page.page.is_visible("#progress")
    page.page.wait_for_function("document.body.dataset.painted", timeout=60_000)
    t = page.page.evaluate(
        "({first: chainlens.firstPaintAt - chainlens.runClickedAt,"
        " node: chainlens.firstNodeAt - chainlens.runClickedAt,"
        " paints: chainlens.paints.map(p => [p.t - chainlens.runClickedAt, p.nodes]),"
        " done: chainlens.paintedAt - chainlens.runClickedAt})"
    )
    assert t["first"] < t["done"] / 2, t
    assert not page.page.is_visible("#progress")
    run = httpx.get(f"{base_url}/api/v1/runs/{page.page.evaluate('chainlens.painted')}").json()
    assert len(run["nodes"]) == 1 + 3 * 1000 + 1  # W; matmul, add, tanh per step; the sum
    page.page.wait_for_function(
        f"document.querySelectorAll('table[aria-label=Nodes] tbody tr').length === {len(run['nodes'])}"
    )
    assert [r["id"] for r in table_rows(page)] == [n["id"] for n in run["nodes"]]


def test_the_page_holds_exactly_the_run_the_server_keeps(page: GuardedPage, base_url: str) -> None:
    """The page asks for ``done`` as a delta (test_stream_delta.py) and rebuilds the Run
    from what it was streamed: node for node and step for step the server's, here with
    passes dropped past max_recorded_passes and parameters stepped between passes."""
    source = TRAINING.replace("range(25)", "range(23)")
    page.page.evaluate(f"chainlens.load({source!r})")
    run_and_wait(page)
    held = page.page.evaluate("chainlens.run()")
    run = httpx.get(f"{base_url}/api/v1/runs/{held['id']}").json()
    assert sum(not p["recorded"] for p in run["passes"]) == 23 - 20  # (19 first, the last)
    assert held == run


def test_error_run_keeps_its_partial_graph(page: GuardedPage) -> None:
    source = "import torch\nx = torch.ones(2, requires_grad=True)\ny = (x * 2).sum()\nz = y @ torch.ones(3)\n"
    page.page.evaluate(f"chainlens.load({source!r})")
    run_and_wait(page)
    truth = run_plain(source)
    assert truth.error is not None
    kind, message, line = truth.error
    shown = page.page.inner_text("#error")
    assert shown.startswith(f"{kind}: {message[:30]}") and f"(line {line})" in shown
    assert page.page.evaluate("chainlens.items") >= 3


def test_dark_mode_follows_the_system(chromium: object, base_url: str) -> None:
    context = chromium.new_context(color_scheme="dark", viewport={"width": 1280, "height": 720})  # type: ignore[attr-defined]
    g = GuardedPage(context)
    g.page.goto(base_url + "/")
    bg = g.page.evaluate("getComputedStyle(document.body).backgroundColor")
    channels = [int(c) for c in re.findall(r"\d+", bg)[:3]]
    assert sum(channels) < 150, bg
    g.screenshot("dark_mode")
    context.close()
    assert g.foreign == [] and g.errors == []


def test_api_docs_need_no_cdn(chromium: object, base_url: str) -> None:
    context = chromium.new_context()  # type: ignore[attr-defined]
    g = GuardedPage(context)
    g.page.goto(base_url + "/docs")
    g.page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    assert g.page.locator(".opblock").count() >= 4
    context.close()
    assert g.foreign == []


def test_vector_backward_shows_jacobian_vjp(page: GuardedPage) -> None:
    example = next(e for e in examples() if e.id == "vjp")
    load_example(page, example.id)
    run_and_wait(page)
    card = page.page.get_by_role("region", name="Chain rule")
    text = card.inner_text()
    assert "Vector to vector" in text and "exactly what x received" in text
    truth = run_plain(example.source).variables
    J = torch.autograd.functional.jacobian(lambda x: x * x * 2, truth["x"].detach())
    shown = page.page.evaluate("""[...document.querySelectorAll('#card annotation')]
        .map(a => a.textContent)""")
    jac = next(t for t in shown if t.startswith("J_"))
    for value in J.diagonal().tolist():
        assert f"{value:g}" in jac


def test_share_link_opens_pass_3_everywhere(page: GuardedPage, base_url: str) -> None:
    """A link to pass 3, step 5 of the two-layer nn example (model.2.weight's
    AccumulateGrad): the selector, the card, the inspector and the numpy code all read
    pass 3, and the inspector shows the weight as PyTorch had it when pass 3 ran."""
    import base64

    from oracle import run_plain_passes

    source = next(e.source for e in examples() if e.id == "two_layer_nn")
    program = base64.urlsafe_b64encode(source.encode()).decode().rstrip("=")
    page.page.goto("about:blank")  # a new document: the link is opened, not a hash change
    page.page.goto(f"{base_url}/#p={program}&s=2.4")
    page.page.wait_for_function("document.body.dataset.painted")
    selected = page.page.evaluate(
        "(() => { const s = document.querySelector('#pass');"
        " return [s.value, s.selectedOptions[0].textContent]; })()"
    )
    assert selected[0] == "2" and selected[1].startswith("3 · loss"), selected
    card = page.page.inner_text("#card")
    assert card.startswith("Pass 3, step 5 of"), card
    inspector = page.page.inner_text("#inspector")
    assert "model.2.weight" in inspector and "value in pass 3" in inspector, inspector
    truth = run_plain_passes(source)[2].steps[4]
    assert truth.grad_fn == "AccumulateGrad"
    shown = page.page.evaluate("""() => [...document.querySelectorAll('#inspector dd')]
        .find(dd => dd.previousElementSibling.textContent === 'value in pass 3')
        .querySelector('.tensor').getAttribute('aria-label')""")
    want = [float(f"{v:.4g}") for v in truth.value.reshape(-1).tolist()]
    assert numbers(shown.split(":", 1)[1]) == pytest.approx(want, rel=1e-3), shown
    page.page.click("#manual")
    code = page.page.locator(".manual-code")
    code.wait_for(timeout=60_000)
    assert "backward pass 3 (line" in code.inner_text()
    page.page.click("#manual-close")
    # step 4: the transpose F.linear made inside itself; one wording for its value
    page.page.locator("#graph").focus()
    page.page.keyboard.press("ArrowLeft")
    assert page.page.inner_text("#card").startswith("Pass 3, step 4 of")
    unseen = "not seen by the program (made inside a library call)"
    assert f"value: {unseen}" in page.page.inner_text("#card")
    assert unseen in page.page.inner_text("#inspector")
    assert "not computed yet" not in page.page.inner_text("#inspector")


def test_every_refusal_is_marked_on_its_line(page: GuardedPage) -> None:
    type_program(page, ["import torch", "x = eval('1')", "import os", "y = torch.load('a')"])
    page.page.click("#run")
    page.page.wait_for_function("document.querySelectorAll('.cm-lintRange').length >= 3")
    marked = page.page.evaluate("""() => [...document.querySelectorAll('.cm-lintRange')]
        .map(el => { const line = el.closest('.cm-line');
          return [...document.querySelectorAll('.cm-content .cm-line')].indexOf(line) + 1; })""")
    assert sorted(set(marked)) == [2, 3, 4], marked
    assert "and 2 more, each marked on its line" in page.page.inner_text("#error")


def test_a_vector_step_shows_its_arithmetic_with_the_numbers(page: GuardedPage) -> None:
    """The chain-rule example on x = torch.ones(3): the pow step reads 1 × 6 = 6 for each of
    its three elements, as PyTorch's numbers make it (y = x + 2 = 3, d(y²)/dy = 2·3)."""
    from oracle import run_plain_passes

    load_example(page, "chain_rule")
    run_and_wait(page)
    source = next(e.source for e in examples() if e.id == "chain_rule")
    plain = run_plain_passes(source)[0]
    k = [s.grad_fn for s in plain.steps].index("PowBackward0")
    for _ in range(k):
        page.page.locator("#graph").focus()
        page.page.keyboard.press("ArrowRight")
    card = page.page.inner_text("#card")
    assert "PowBackward0" in card, card
    lines = page.page.evaluate(
        "[...document.querySelectorAll('#card ol.arith li')].map(li => li.textContent)"
    )
    truth = plain.steps[k]
    up, down = truth.grad_outputs[0].tolist(), truth.grad_inputs[0].tolist()
    assert len(lines) == 3
    for i, line in enumerate(lines):
        assert line.endswith(f"{up[i]:g} × 6 = {down[i]:g}"), line
    assert [line.split(": ")[1] for line in lines] == ["1 × 6 = 6"] * 3


def test_the_program_follows_the_step_and_a_line_selects_its_node(page: GuardedPage) -> None:
    load_example(page, "chain_rule")
    run = run_and_wait(page)
    source = next(e.source for e in examples() if e.id == "chain_rule")
    lines = source.splitlines()

    def step_line() -> int:
        return page.page.evaluate("""() => { const l = document.querySelector('.cm-stepLine');
            return l ? [...document.querySelectorAll('.cm-content .cm-line')].indexOf(l) + 1 : 0; }""")

    page.page.locator("#graph").focus()
    page.page.keyboard.press("ArrowRight")
    card = page.page.inner_text("#card")
    node_line = int(re.search(r" line (\d+)", card).group(1))
    assert step_line() == node_line
    pow_line = next(i for i, text in enumerate(lines, 1) if "**2" in text.replace(" ", ""))
    page.page.locator(".cm-content .cm-line").nth(pow_line - 1).click()
    page.page.wait_for_function(
        f"document.querySelector('#card').innerText.includes(' line {pow_line}')"
    )
    assert step_line() == pow_line
    inspector = page.page.get_by_role("region", name="Inspector").inner_text()
    assert f"line\n{pow_line}" in inspector or f"line {pow_line}" in inspector, inspector
    assert run["items"] > 0


@pytest.mark.parametrize("width,height", [(1024, 768), (800, 1000)])
def test_a_projector_and_a_narrow_window_clip_nothing(
    chromium: object, base_url: str, width: int, height: int
) -> None:
    """At 1024×768 and 800 px wide: no horizontal scroll, and the chain-rule card can be
    read whole (scrolled into view, it lies inside the window's width)."""
    with chain_rule_at(chromium, base_url, width, height) as g:
        assert_nothing_clipped(g, width)
        assert "Step 1 of" in g.page.inner_text("#card")
        g.screenshot(f"layout_{width}x{height}")


@contextlib.contextmanager
def chain_rule_at(
    chromium: object, base_url: str, width: int, height: int
) -> Iterator[GuardedPage]:
    """A page of its own at this window size, the chain-rule example run; it must end
    with no foreign request and no page error."""
    context = chromium.new_context(viewport={"width": width, "height": height})  # type: ignore[attr-defined]
    g = GuardedPage(context)
    try:
        g.page.goto(base_url + "/")
        g.page.wait_for_function("document.querySelectorAll('#examples option').length > 1")
        load_example(g, "chain_rule")
        run_and_wait(g)
        yield g
        assert g.foreign == [] and g.errors == []
    finally:
        context.close()


def assert_nothing_clipped(g: GuardedPage, width: int) -> None:
    """No horizontal scroll, and the card, scrolled into view, lies inside the window."""
    assert g.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
        g.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    )
    card = g.page.locator("#card")
    card.scroll_into_view_if_needed()
    box = card.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, box


def _luminance(rgb: list[int]) -> float:
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG's contrast ratio of two CSS colours given as rgb(...)."""
    la, lb = (_luminance([int(c) for c in re.findall(r"\d+", x)[:3]]) for x in (a, b))
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_editor_is_readable_in_light_and_dark(
    chromium: object, base_url: str, scheme: str
) -> None:
    """Every kind of token the chain-rule example shows, and the gutter's line numbers, at
    WCAG AA contrast (4.5:1) on the editor's own background."""
    context = chromium.new_context(color_scheme=scheme, viewport={"width": 1280, "height": 720})  # type: ignore[attr-defined]
    g = GuardedPage(context)
    try:
        g.page.goto(base_url + "/")
        g.page.wait_for_function("document.querySelectorAll('#examples option').length > 1")
        load_example(g, "chain_rule")
        g.page.wait_for_function("document.querySelectorAll('.cm-line span').length > 3")
        pairs = g.page.evaluate("""() => {
            const bg = getComputedStyle(document.querySelector('.cm-editor')).backgroundColor;
            const gutter = document.querySelector('.cm-gutters');
            const out = [[getComputedStyle(document.querySelector('.cm-content')).color, bg, 'text'],
                         [getComputedStyle(gutter).color, getComputedStyle(gutter).backgroundColor, 'gutter']];
            for (const s of document.querySelectorAll('.cm-line span'))
                out.push([getComputedStyle(s).color, bg, s.textContent]);
            return out; }""")
        assert len(pairs) > 4
        for fg, bg, what in pairs:
            assert contrast(fg, bg) >= 4.5, (scheme, what, fg, bg, contrast(fg, bg))
        editor_bg = pairs[0][1]
        page_bg = g.page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert editor_bg == page_bg, (editor_bg, page_bg)  # a dark editor in dark mode
        g.screenshot(f"editor_{scheme}")
        assert g.foreign == [] and g.errors == []
    finally:
        context.close()


def test_tab_reaches_a_node_and_enter_selects_it(page: GuardedPage) -> None:
    """From the step controls, Tab reaches the Nodes table's rows, each named for its node;
    Enter selects one (the inspector shows it, the step moves to it); arrows move between rows."""
    load_example(page, "chain_rule")
    run_and_wait(page)
    page.page.locator("#last").focus()
    for _ in range(40):
        page.page.keyboard.press("Tab")
        if page.page.evaluate(
            "document.activeElement.closest('table[aria-label=Nodes] tbody') !== null"
        ):
            break
    focused = page.page.evaluate(
        "[document.activeElement.dataset.node, document.activeElement.getAttribute('aria-label')]"
    )
    assert focused[0] == "n1" and focused[1].startswith("n1 AccumulateGrad (x)"), focused
    page.page.keyboard.press("ArrowDown")
    page.page.keyboard.press("Enter")
    inspector = page.page.get_by_role("region", name="Inspector").inner_text()
    assert inspector.split("\n")[2].startswith("n2 "), inspector
    assert "AddBackward0" in page.page.inner_text("#card")


def test_nodes_carry_their_numbers_and_the_gradients_flowing_back(page: GuardedPage) -> None:
    """As micrograd's draw_dot does: each node shows its value; once its step has run,
    the gradient PyTorch computed for it, under it; the legend says which way they flow."""
    from oracle import run_plain_passes

    load_example(page, "chain_rule")
    run_and_wait(page)
    rows = {r["names"] or r["label"]: r["id"] for r in table_rows(page)}
    text = lambda name: page.page.evaluate(f"chainlens.text('{rows[name]}')")  # noqa: E731
    assert text("x")[1] == "[1, 1, 1]" and text("z")[1] == "[27, 27, 27]"
    assert text("x")[2] == ""  # not computed yet at step 1
    page.page.locator("#graph").focus()
    page.page.keyboard.press("End")
    page.page.wait_for_function(f"chainlens.text('{rows['x']}')[2] !== ''")
    source = next(e.source for e in examples() if e.id == "chain_rule")
    leaf = next(s for s in run_plain_passes(source)[0].steps if s.grad_fn == "AccumulateGrad")
    grad = [f"{v:g}" for v in leaf.grad_outputs[0].tolist()]
    assert text("x")[2] == f"∇ [{', '.join(grad)}]", text("x")
    legend = page.page.get_by_label("Legend").inner_text()
    assert "gradient, flowing back" in legend and "a mistake" in legend


def test_a_long_sum_of_contributions_is_folded(page: GuardedPage) -> None:
    """A weight an unrolled loop uses 40 times: the card writes g1 + g2 + … + g40 (40 terms),
    lists the first two and the last contributions, and says how many it left out."""
    type_program(
        page,
        [
            "import torch",
            "w = torch.tensor(0.9, requires_grad=True)",
            "h = torch.tensor(1.0)",
            "for t in range(40):",
            "    h = torch.tanh(w * h)",
            "h.backward()",
        ],
    )
    run_and_wait(page)
    rows = table_rows(page)
    w_row = next(r for r in rows if r["names"] == "w")
    page.page.locator(f"table[aria-label=Nodes] tr[data-node={w_row['id']}]").click()
    card = page.page.inner_text("#card").replace("\xa0", " ")  # (KaTeX's spaces in \text)
    assert "(40 terms)" in card, card
    items = page.page.evaluate(
        "[...document.querySelectorAll('#card ol.contributions li')].map(li => li.textContent)"
    )
    assert len(items) == 4 and items[2] == "… 37 more terms", items


def test_the_search_box_finds_a_node_by_name(page: GuardedPage) -> None:
    load_example(page, "lenet")
    run_and_wait(page)
    search = page.page.get_by_label("Find a node by name, op or id")
    search.fill("net.fc2.weight")
    search.press("Enter")
    inspector = page.page.get_by_role("region", name="Inspector").inner_text()
    assert "net.fc2.weight" in inspector, inspector
    search.fill("nothing-like-this")
    search.press("Enter")
    assert 'no node matches "nothing-like-this"' in page.page.inner_text("#status")


def test_the_loss_curve_has_axes_values_and_a_log_scale(page: GuardedPage, base_url: str) -> None:
    source = next(e.source for e in examples() if e.id == "two_layer_nn")
    run = httpx.post(base_url + "/api/v1/runs", json={"source": source}, timeout=60).json()
    losses = [v for v in run["losses"] if isinstance(v, float)]
    load_example(page, "two_layer_nn")
    run_and_wait(page)
    ticks = page.page.evaluate(
        "[...document.querySelectorAll('#losses text')].map(t => t.textContent)"
    )
    assert f"pass {len(run['losses'])}" in ticks and "pass 1" in ticks, ticks
    assert numbers(ticks[0]) == pytest.approx([max(losses)], rel=1e-3)
    assert numbers(ticks[1]) == pytest.approx([min(losses)], rel=1e-3)
    page.page.get_by_label("log scale").check()
    assert "loss (log)" in page.page.evaluate(
        "[...document.querySelectorAll('#losses text')].map(t => t.textContent)"
    )
    titles = page.page.evaluate(
        "[...document.querySelectorAll('#losses circle title')].map(t => t.textContent)"
    )
    assert titles[2].startswith("pass 3: loss "), titles


def test_a_failed_backward_says_how_far_it_got(page: GuardedPage, base_url: str) -> None:
    """y.backward() on a non-scalar: the card says backward stopped, with PyTorch's error,
    instead of asking for a program with a backward call."""
    source = next(e.source for e in examples() if e.id == "pitfall_non_scalar")
    truth = httpx.post(base_url + "/api/v1/runs", json={"source": source}, timeout=60).json()
    load_example(page, "pitfall_non_scalar")
    run_and_wait(page)
    card = page.page.inner_text("#card")
    assert "Run a program with a backward call" not in card
    assert "stopped" in card and truth["error"]["message"] in card, card
    assert truth["error"]["type"] == "RuntimeError" and "RuntimeError" in card


def local_formula(g: GuardedPage) -> tuple[str, str]:
    """The card's local derivative as TeX (KaTeX keeps the source) and as a person reads it."""
    return g.page.evaluate("""() => { const h = [...document.querySelectorAll('#card h3')]
        .find(h => h.textContent === 'Local derivative');
        const tex = h.parentElement.querySelector('.tex');
        return [tex.querySelector('annotation').textContent, tex.querySelector('.katex-html').textContent]; }""")


def test_the_formula_is_written_in_the_programs_names(page: GuardedPage) -> None:
    """The pow step of the chain-rule example: its input is the program's y, its output is
    unnamed (written pow); the slope is 2·y, not the 2x¹ whose x would be the leaf."""
    load_example(page, "chain_rule")
    run_and_wait(page)
    page.page.locator("#graph").focus()
    while "PowBackward0" not in page.page.inner_text("#card"):
        page.page.keyboard.press("ArrowRight")
    tex, shown = local_formula(page)
    assert (
        tex
        == r"\frac{\partial L}{\partial {y}} = \frac{\partial L}{\partial {\text{pow}}} \odot 2\cdot {y}"
    ), tex
    assert shown.endswith("2⋅y") and "x" not in shown, shown
    while "AddBackward0" not in page.page.inner_text("#card"):
        page.page.keyboard.press("ArrowRight")
    tex, _ = local_formula(page)  # y = x + 2: a is the leaf x, b the constant, the output y
    assert (
        r"{y} = {x} + {\text{const}}" in tex
        and r"\partial {x}} = \frac{\partial L}{\partial {y}}" in tex
    ), tex


def test_the_sqrt_pitfall_reads_in_its_own_names(page: GuardedPage, base_url: str) -> None:
    source = next(e.source for e in examples() if e.id == "pitfall_sqrt_nan")
    run = httpx.post(base_url + "/api/v1/runs", json={"source": source}, timeout=60).json()
    sqrt = next(n for n in run["nodes"] if n["grad_fn"] == "SqrtBackward0")
    src = next(n for n in run["nodes"] if n["id"] == sqrt["inputs"][0])
    name = lambda n: (n["names"] or [n["label"]])[-1]  # noqa: E731
    load_example(page, "pitfall_sqrt_nan")
    run_and_wait(page)
    page.page.locator(f"table[aria-label=Nodes] tr[data-node={sqrt['id']}]").click()
    page.page.wait_for_function(
        "document.querySelector('#card').innerText.includes('SqrtBackward0')"
    )
    tex, _ = local_formula(page)
    term = lambda n: n if len(n) == 1 else rf"\text{{{n}}}"  # noqa: E731
    assert rf"\sqrt{{{{{term(name(src))}}}}}" in tex and rf"2{{{term(name(sqrt))}}}" in tex, tex


def test_the_edges_into_a_step_carry_the_gradient_flowing_back(
    page: GuardedPage, base_url: str
) -> None:
    """At each step, the edge from each input into the node shown carries ∇ of what
    PyTorch sent back along it (the step's grad_inputs); no other edge carries a number."""
    from oracle import run_plain_passes

    load_example(page, "chain_rule")
    run = run_and_wait(page)
    assert run["items"] > 0
    source = next(e.source for e in examples() if e.id == "chain_rule")
    plain = run_plain_passes(source)[0]
    nodes = httpx.get(f"{base_url}/api/v1/runs/{page.page.evaluate('chainlens.painted')}").json()[
        "nodes"
    ]
    by_fn = {n["grad_fn"]: n for n in nodes}
    page.page.locator("#graph").focus()
    written = []
    for k, truth in enumerate(plain.steps):
        node = by_fn[truth.grad_fn]
        expected = {
            f"{src}->{node['id']}": g
            for src, g in zip(node["inputs"], truth.grad_inputs, strict=False)
            if src is not None
        }
        shown = page.page.evaluate("chainlens.edgeText()")
        written += shown.values()
        assert set(shown) == set(expected), (k, truth.grad_fn, shown)
        for key, text in shown.items():  # the numbers when they fit on the edge, else the shape
            g = expected[key]
            if "[" in text:
                assert numbers(text) == pytest.approx(g.reshape(-1).tolist(), rel=1e-3), text
            else:
                assert text == "∇ " + "×".join(map(str, g.shape)), text
        page.page.keyboard.press("ArrowRight")
    add = next(s for s in plain.steps if s.grad_fn == "AddBackward0")  # sends [6, 6, 6] to x
    assert "∇ [" + ", ".join(f"{v:g}" for v in add.grad_inputs[0].tolist()) + "]" in written


def test_a_second_backward_marks_the_freed_nodes(page: GuardedPage, base_url: str) -> None:
    source = next(e.source for e in examples() if e.id == "pitfall_backward_twice")
    run = httpx.post(base_url + "/api/v1/runs", json={"source": source}, timeout=60).json()
    freed = [n["id"] for n in run["nodes"] if n["freed_by"] is not None]
    assert freed
    load_example(page, "pitfall_backward_twice")
    run_and_wait(page)
    assert set(freed) <= set(page.page.evaluate("chainlens.flagged()"))
    page.page.locator(f"table[aria-label=Nodes] tr[data-node={freed[0]}]").click()
    inspector = page.page.get_by_role("region", name="Inspector").inner_text()
    assert "freed by backward() of pass 1" in inspector, inspector
    page.screenshot("backward_twice_freed")


def test_images_for_images_with_every_value_under_the_pointer(
    page: GuardedPage, base_url: str
) -> None:
    """LeNet's first convolution: its saved 32×32 input is an image, its 6×28×28 output six
    images; the value read under the pointer is PyTorch's, element for element."""
    from oracle import run_plain_passes

    source = next(e.source for e in examples() if e.id == "lenet")
    truth = next(
        s
        for s in run_plain_passes(source)[0].steps
        if s.grad_fn == "ConvolutionBackward0" and s.saved["input"].shape[-1] == 32
    )
    load_example(page, "lenet")
    run_and_wait(page)
    run = httpx.get(f"{base_url}/api/v1/runs/{page.page.evaluate('chainlens.painted')}").json()
    conv = next(
        n
        for n in run["nodes"]
        if n["grad_fn"] == "ConvolutionBackward0" and n["value"]["shape"] == list(truth.value.shape)
    )
    page.page.locator(f"table[aria-label=Nodes] tr[data-node={conv['id']}]").click()
    page.page.wait_for_function(f"chainlens.imagesOf === '{conv['id']}'")
    inspector = page.page.get_by_role("region", name="Inspector")

    def read(
        label: str, count: int, hw: int, picks: list[tuple[int, int, int]]
    ) -> list[tuple[str, float]]:
        images = inspector.get_by_role(
            "img", name=re.compile(rf"^{re.escape(label)}\[.*: {hw}×{hw}$")
        )
        assert images.count() == count
        out = []
        for k, i, j in picks:
            point_at(page, images.nth(k), (i, j), (hw, hw))
            text = images.nth(k).locator("xpath=../..").locator("output").inner_text()
            where, value = text.split(" = ")
            out.append((where, float(value)))
        return out

    picks = [(0, 0, 0), (0, 13, 7), (0, 31, 31)]
    for (where, v), (_, i, j) in zip(read("input", 1, 32, picks), picks, strict=True):
        assert where == f"input[0, 0, {i}, {j}]"
        assert torch.tensor(v, dtype=torch.float32) == truth.saved["input"][0, 0, i, j]
    name = (conv["names"] or [conv["label"]])[-1]
    picks = [(0, 0, 0), (2, 13, 7), (5, 27, 27)]
    for (where, v), (c, i, j) in zip(read(name, 6, 28, picks), picks, strict=True):
        assert where == f"{name}[0, {c}, {i}, {j}]"
        assert torch.tensor(v, dtype=torch.float32) == truth.value[0, c, i, j]
    page.screenshot("lenet_conv1_images")


def test_presentation_mode_reads_from_the_back_of_a_room(chromium: object, base_url: str) -> None:
    """At a projector's 1024×768: Present (or P) sets the program, the card and the graph
    larger, clips nothing, and a second press puts them back."""
    with chain_rule_at(chromium, base_url, 1024, 768) as g:

        def size(sel: str) -> float:
            return g.page.evaluate(
                f"parseFloat(getComputedStyle(document.querySelector('{sel}')).fontSize)"
            )

        def zoom() -> float:
            return g.page.evaluate("chainlens.view.k")

        before = {s: size(s) for s in (".cm-content", "#card", "#card .katex")}
        k = zoom()
        g.page.get_by_role("button", name="Present").click()
        assert g.page.get_by_role("button", name="Present").get_attribute("aria-pressed") == "true"
        after = {s: size(s) for s in before}
        assert after[".cm-content"] >= 18 and after["#card"] >= 18, after
        assert all(after[s] >= 1.3 * before[s] for s in before), (before, after)
        assert zoom() == pytest.approx(1.4 * k)
        assert_nothing_clipped(g, 1024)
        g.screenshot("present_1024x768")
        g.page.locator("#graph").focus()
        g.page.keyboard.press("p")
        assert {s: size(s) for s in before} == before and zoom() == pytest.approx(k)


def typed_and_stepped_to(g: GuardedPage, lines: list[str], grad_fn: str):  # noqa: ANN201
    """Types and runs the program, steps the page to its first ``grad_fn`` step, and
    answers that step as plain PyTorch ran it (the oracle)."""
    from oracle import run_plain_passes

    type_program(g, lines)
    run_and_wait(g)
    truth = next(s for s in run_plain_passes("\n".join(lines))[0].steps if s.grad_fn == grad_fn)
    g.page.locator("#graph").focus()
    while grad_fn not in g.page.inner_text("#card"):
        g.page.keyboard.press("ArrowRight")
    return truth


def sum_lines(g: GuardedPage, name: str) -> list[str]:
    return g.page.evaluate(
        f"[...document.querySelectorAll('#card ol.sum[aria-label^=\"{name},\"] li')].map(li => li.textContent)"
    )


def point_at(g: GuardedPage, image, index: tuple[int, int], hw: tuple[int, int]) -> None:
    image.scroll_into_view_if_needed()
    box = image.bounding_box()
    g.page.mouse.move(
        box["x"] + (index[1] + 0.5) * box["width"] / hw[1],
        box["y"] + (index[0] + 0.5) * box["height"] / hw[0],
    )


def test_a_matrix_product_shows_its_shapes_and_each_elements_sum(page: GuardedPage) -> None:
    """Y = X @ W (in the style of d2l.ai's linear regression from scratch): the MmBackward0
    step writes ∂L/∂W = Xᵀ · ∂L/∂Y with the shapes, and for the element under the pointer
    its sum of products with PyTorch's numbers, ending in PyTorch's own value."""
    lines = [
        "import torch",
        "torch.manual_seed(0)",
        "X = torch.randn(4, 8)",
        "W = torch.randn(8, 2, requires_grad=True)",
        "Y = X @ W",
        "loss = (Y * Y).sum()",
        "loss.backward()",
    ]
    mm = typed_and_stepped_to(page, lines, "MmBackward0")
    X, gY, gW = mm.saved["self"], mm.grad_outputs[0], mm.grad_inputs[1]
    card = page.page.inner_text("#card")
    assert "∂L/∂W = Xᵀ · ∂L/∂Y: [4,8]ᵀ·[4,2] → [8,2]" in card, card
    page.page.wait_for_function("document.querySelectorAll('#card ol.sum li').length === 3")

    def check(i: int, j: int) -> None:
        text = sum_lines(page, "∂L/∂W")
        terms = " + ".join(f"X[{k},{i}]·∂L/∂Y[{k},{j}]" for k in range(4))
        assert text[0] == f"∂L/∂W[{i}, {j}] = {terms}", text
        shown = numbers(text[1])  # (x)(g) for each of the four terms
        assert shown == pytest.approx(
            [v for k in range(4) for v in (X[k, i].item(), gY[k, j].item())], rel=1e-3
        )
        total, pytorch = text[2].removeprefix("= ").split(" · PyTorch: ")
        assert torch.tensor(float(pytorch), dtype=torch.float32) == gW[i, j]
        assert float(total) == pytest.approx(gW[i, j].item(), rel=1e-3)

    check(0, 0)
    image = page.page.locator("#card").get_by_role("img", name=re.compile(r"^∂L\/∂W\["))
    point_at(page, image, (5, 1), (8, 2))
    check(5, 1)
    page.screenshot("mm_drill_down")


def test_a_convolution_opens_into_its_sum_of_products(page: GuardedPage) -> None:
    """LeNet's first convolution: ∂L/∂W for one kernel weight is a sum over the 28×28
    positions it slid over; the card says so, with the first products, and PyTorch's value."""
    from oracle import run_plain_passes

    source = next(e.source for e in examples() if e.id == "lenet")
    steps = run_plain_passes(source)[0].steps
    k = next(
        i
        for i, s in enumerate(steps)
        if s.grad_fn == "ConvolutionBackward0" and s.saved["input"].shape[-1] == 32
    )
    conv = steps[k]
    load_example(page, "lenet")
    run_and_wait(page)
    page.page.locator("#graph").focus()
    for _ in range(k):
        page.page.keyboard.press("ArrowRight")
    card = page.page.inner_text("#card")
    assert "ConvolutionBackward0" in card
    assert (
        "⋆ ∂L/∂Conv2d (correlation, summed over the batch): [1,1,32,32] ⋆ [1,6,28,28] → [6,1,5,5]"
        in card
    ), card
    kernels = page.page.locator("#card").get_by_role(
        "img", name=re.compile(r"^∂L\/∂net\.conv1\.weight\[2, 0,")
    )
    kernels.wait_for()
    point_at(page, kernels, (3, 1), (5, 5))
    text = sum_lines(page, "∂L/∂net.conv1.weight")
    assert text[0].startswith(
        "∂L/∂net.conv1.weight[2, 0, 3, 1] = input[0,0,3,1]·∂L/∂Conv2d[0,2,0,0] + "
    )
    assert text[0].endswith("+ … (784 terms)")
    X, gY = conv.saved["input"], conv.grad_outputs[0]
    assert numbers(text[1])[:4] == pytest.approx(
        [X[0, 0, 3, 1].item(), gY[0, 2, 0, 0].item(), X[0, 0, 3, 2].item(), gY[0, 2, 0, 1].item()],
        rel=1e-3,
    )
    total, pytorch = text[2].removeprefix("= ").split(" · PyTorch: ")
    assert torch.tensor(float(pytorch), dtype=torch.float32) == conv.grad_inputs[1][2, 0, 3, 1]
    assert float(total) == pytest.approx(conv.grad_inputs[1][2, 0, 3, 1].item(), rel=1e-3, abs=1e-6)
    page.screenshot("conv_drill_down")


def test_a_broadcast_operand_sums_its_gradient_where_it_was_copied(page: GuardedPage) -> None:
    """A bias added to every row (in the style of the PyTorch tutorial's tensors-and-autograd
    linear layer): ∂L/∂b sums the upstream over the rows it was copied to; the card names
    the dimension and writes one element's sum with PyTorch's numbers."""
    lines = [
        "import torch",
        "x = torch.linspace(-1, 1, 12).reshape(4, 3)",
        "b = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)",
        "y = x * 2 + b",
        "loss = (y ** 2).sum()",
        "loss.backward()",
    ]
    add = typed_and_stepped_to(page, lines, "AddBackward0")
    card = page.page.inner_text("#card")
    assert (
        "∂L/∂b = Σ over dimension 0 of ∂L/∂y: [4,3] → [3] (b was copied along it forward)" in card
    ), card
    image = page.page.locator("#card").get_by_role("img", name=re.compile(r"^∂L\/∂b\["))
    image.wait_for()
    point_at(page, image, (0, 1), (1, 3))
    text = sum_lines(page, "∂L/∂b")
    assert text[0] == "∂L/∂b[1] = " + " + ".join(f"∂L/∂y[{k},1]" for k in range(4)), text
    g = add.grad_outputs[0]
    assert numbers(text[1]) == pytest.approx([g[k, 1].item() for k in range(4)], rel=1e-3)
    total, pytorch = text[2].removeprefix("= ").split(" · PyTorch: ")
    assert torch.tensor(float(pytorch), dtype=torch.float32) == add.grad_inputs[1][1]
    assert float(total) == pytest.approx(add.grad_inputs[1][1].item(), rel=1e-3)


RNN_40 = [
    "import torch",
    "import torch.nn as nn",
    "class Cell(nn.Module):",
    "    def __init__(self):",
    "        super().__init__()",
    "        self.ih = nn.Linear(3, 4)",
    "        self.hh = nn.Linear(4, 4)",
    "    def forward(self, x, h):",
    "        return torch.tanh(self.ih(x) + self.hh(h))",
    "cell = Cell()",
    "xs = torch.randn(40, 1, 3)",
    "h = torch.zeros(1, 4)",
    "for t in range(40):",
    "    h = cell(xs[t], h)",
    "loss = (h ** 2).sum()",
    "loss.backward()",
]


def test_a_module_called_40_times_is_one_box_with_a_call_selector(
    page: GuardedPage, base_url: str
) -> None:
    """An RNN cell unrolled 40 times (in the style of the PyTorch char-RNN tutorial): one box
    "cell ×40", even after Expand groups; the call selector opens call 7 node by node
    between "×6" and "×33", its numbers the run's; clicking the later fold opens call 8."""
    page.page.evaluate("chainlens.load(" + repr("\n".join(RNN_40)) + ")")
    run_and_wait(page)

    def labels() -> list[str]:
        groups = page.page.evaluate("chainlens.groups()")
        return sorted(g["label"] for g in groups if g["id"].startswith("f:"))

    assert labels() == ["cell ×40"]
    page.page.click("#expand-all")
    page.page.wait_for_function("chainlens.items < 12")
    assert labels() == ["cell ×40"]
    options = page.page.evaluate(
        "[...document.querySelectorAll('#calls option')].map(o => o.textContent)"
    )
    assert options[:3] == ["cell: all 40 calls folded", "cell: call 1 of 40", "cell: call 2 of 40"]
    assert len([o for o in options if o.startswith("cell: call ")]) == 40
    page.page.get_by_label("Call shown").select_option("cell#7")
    page.page.wait_for_function("chainlens.groups().some(g => g.label === 'cell (call 7)')")
    assert labels() == ["cell ×33 (calls 8–40)", "cell ×6 (calls 1–6)"]
    run = httpx.get(f"{base_url}/api/v1/runs/{page.page.evaluate('chainlens.painted')}").json()
    tanh = next(n for n in run["nodes"] if n["grad_fn"] == "TanhBackward0" and n["call"] == 7)
    drawn = page.page.evaluate(f"chainlens.text('{tanh['id']}')")
    assert drawn[:2] == ["tanh → h", "×".join(map(str, tanh["value"]["shape"]))], (
        drawn
    )  # drawn itself
    page.screenshot("rnn_call_7")
    page.page.click("#fit")
    after = next(g for g in page.page.evaluate("chainlens.groups()") if g["id"].endswith(":after"))
    canvas = page.page.locator("#graph").bounding_box()
    page.page.mouse.click(canvas["x"] + after["x"], canvas["y"] + after["y"])
    page.page.wait_for_function("chainlens.groups().some(g => g.label === 'cell (call 8)')")
    assert page.page.get_by_label("Call shown").input_value() == "cell#8"


def test_the_keyboard_walks_the_graph_itself(page: GuardedPage, base_url: str) -> None:
    """On the focused graph, ↓ and ↑ walk its nodes (each read out by its grad_fn and
    names, and inspected as it is reached) and Enter selects one: backward steps to it. On
    a module called 40 times, Enter on its fold opens a call."""
    load_example(page, "chain_rule")
    run_and_wait(page)
    run = httpx.get(f"{base_url}/api/v1/runs/{page.page.evaluate('chainlens.painted')}").json()
    page.page.locator("#graph").focus()
    said = []
    for _ in range(page.page.evaluate("chainlens.items")):
        page.page.keyboard.press("ArrowDown")
        said.append(page.page.inner_text("#graph-said"))
        if not said[-1].startswith("const"):
            inspector = page.page.get_by_role("region", name="Inspector").inner_text()
            assert said[-1].split(" ")[0] in inspector, (said[-1], inspector)
    assert sorted(s.split(" ")[0] for s in said if s != "const") == sorted(
        n["grad_fn"] for n in run["nodes"]
    )
    for _ in range(len(said)):
        if page.page.inner_text("#graph-said").startswith("PowBackward0"):
            break
        page.page.keyboard.press("ArrowUp")
    page.page.keyboard.press("Enter")
    assert page.page.inner_text("#step-label").endswith(": PowBackward0")
    assert "PowBackward0" in page.page.inner_text("#card")

    page.page.evaluate("chainlens.load(" + repr("\n".join(RNN_40)) + ")")
    run_and_wait(page)
    page.page.locator("#graph").focus()
    for _ in range(page.page.evaluate("chainlens.items")):
        page.page.keyboard.press("ArrowDown")
        if page.page.inner_text("#graph-said").startswith("module cell ×40"):
            break
    page.page.keyboard.press("Enter")
    page.page.wait_for_function("chainlens.groups().some(g => g.label === 'cell (call 40)')")


def test_any_element_of_a_large_elementwise_step_under_the_pointer(page: GuardedPage) -> None:
    """tanh over 48 elements: the card writes the first eight as upstream × local =
    downstream, and the element under the pointer the same way, with PyTorch's numbers
    (local = 1 − tanh² x)."""
    lines = [
        "import torch",
        "x = torch.linspace(-2, 2, 48).reshape(6, 8).requires_grad_()",
        "y = torch.tanh(x)",
        "loss = (y * torch.arange(48.0).reshape(6, 8)).sum()",
        "loss.backward()",
    ]
    tanh = typed_and_stepped_to(page, lines, "TanhBackward0")
    arith = page.page.evaluate(
        "[...document.querySelectorAll('#card ol.arith li')].map(li => li.textContent)"
    )
    assert len(arith) == 9 and arith[-1] == "… and 40 more elements of ∂L/∂x, each the same product"
    image = page.page.locator("#card").get_by_role("img", name=re.compile(r"^∂L\/∂x\["))
    image.wait_for()
    point_at(page, image, (4, 5), (6, 8))
    line = page.page.get_by_label("∂L/∂x under the pointer").inner_text()
    assert line.startswith("∂L/∂x[4, 5]: "), line
    up, local, down = numbers(line.split(": ")[1])
    truth_up, truth_down = tanh.grad_outputs[0][4, 5].item(), tanh.grad_inputs[0][4, 5].item()
    x = torch.linspace(-2, 2, 48).reshape(6, 8)[4, 5]
    assert up == pytest.approx(truth_up, rel=1e-3) and down == pytest.approx(truth_down, rel=1e-3)
    assert local == pytest.approx(1 - torch.tanh(x).item() ** 2, rel=1e-3)
