"""Shared fixtures: one thread for torch, as on the 2-core CI machine; the server; the
browser and a page on it (for the page and gradient-check tests)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(1)


import pytest  # noqa: E402

from browser import GuardedPage, browser  # noqa: E402
from server import serve  # noqa: E402


@pytest.fixture(scope="session")
def base_url():
    """One real server for the whole session (4 workers, generous rate limit)."""
    with serve(
        workers=2, rate_limit_per_minute=100000, max_concurrent_per_client=64, queue_size=128
    ) as url:
        yield url


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    with browser() as b:
        yield b


@pytest.fixture
def page(chromium: object, base_url: str, request: pytest.FixtureRequest) -> Iterator[GuardedPage]:
    context = chromium.new_context(viewport={"width": 1280, "height": 720})  # type: ignore[attr-defined]
    guarded = GuardedPage(context)
    guarded.page.goto(base_url + "/")
    guarded.page.wait_for_function("document.querySelectorAll('#examples option').length > 1")
    yield guarded
    guarded.screenshot(request.node.name)
    context.close()
    assert guarded.foreign == [], f"requests not to localhost: {guarded.foreign}"
    assert guarded.errors == [], f"errors on the page: {guarded.errors}"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--rewrite-golden",
        action="store_true",
        help="write tests/golden/*.json from the engine's current Runs (test_golden.py)",
    )
