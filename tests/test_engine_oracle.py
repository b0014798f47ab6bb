"""Every example and every corpus program, compared with the same code in plain PyTorch."""

from __future__ import annotations

import pytest

import chainlens
from chainlens.examples.catalog import examples
from oracle import assert_matches, run_plain
from programs import PROGRAMS


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program_matches_pytorch(name: str) -> None:
    source = PROGRAMS[name]
    run = chainlens.run(source)
    assert_matches(run, run_plain(source))


@pytest.mark.parametrize("ex", examples(), ids=lambda e: e.id)
def test_example_matches_pytorch(ex) -> None:
    run = chainlens.run(ex.source)
    assert_matches(run, run_plain(ex.source))


def test_at_least_twelve_examples_with_titles() -> None:
    exs = examples()
    assert len(exs) >= 12
    assert all(e.title and e.description and e.source for e in exs)
    assert len({e.id for e in exs}) == len(exs)


@pytest.mark.parametrize("seed", [0, 7])
def test_seed_gives_pytorch_numbers(seed: int) -> None:
    source = "import torch\nx = torch.randn(5, requires_grad=True)\ny = (x * torch.rand(5)).sum()\ny.backward()\n"
    assert_matches(chainlens.run(source, seed=seed), run_plain(source, seed=seed))
