"""The tutorial corpus (tutorial_corpus.py): each program as chainlens runs it and as
plain Python + torch runs it, compared value for value, gradient for gradient (retained
ones included), error for error and line for line of what it printed."""

from __future__ import annotations

import pytest

import chainlens

from oracle import assert_matches, run_plain
from tutorial_corpus import TUTORIALS


def test_the_corpus_has_the_programs_it_promises() -> None:
    assert len(TUTORIALS) >= 30


@pytest.mark.parametrize("name", sorted(TUTORIALS))
def test_tutorial_program_matches_pytorch(name: str) -> None:
    source = TUTORIALS[name]
    assert_matches(chainlens.run(source), run_plain(source))
