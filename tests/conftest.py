"""Shared fixtures: one thread for torch, as on the 2-core CI machine."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(1)


import pytest  # noqa: E402

from server import serve  # noqa: E402


@pytest.fixture(scope="session")
def base_url():
    """One real server for the whole session (4 workers, generous rate limit)."""
    with serve(workers=2, rate_limit_per_minute=100000, max_concurrent_per_client=64,
               queue_size=128) as url:
        yield url
