"""The built-in example programs: ``programs/NN_id.py``, each with a title and description header."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from ..schema import Example


def _parse(name: str, text: str) -> Example:
    lines = text.splitlines()
    title = lines[0].removeprefix("# title:").strip()
    description = lines[1].removeprefix("# description:").strip()
    source = "\n".join(lines[2:]).lstrip("\n")
    return Example(
        id=name.removesuffix(".py").split("_", 1)[1],
        title=title,
        description=description,
        source=source,
    )


@lru_cache(maxsize=1)
def examples() -> tuple[Example, ...]:
    """Every example, in file order."""
    folder = resources.files("chainlens.examples") / "programs"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".py")), key=lambda f: f.name)
    return tuple(_parse(f.name, f.read_text(encoding="utf-8")) for f in files)


def example(example_id: str) -> Example:
    for ex in examples():
        if ex.id == example_id:
            return ex
    raise KeyError(example_id)
