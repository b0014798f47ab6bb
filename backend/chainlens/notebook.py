"""A Run shown where the user is: inline in a notebook, else in the browser.

In a Jupyter kernel (JupyterLab, Notebook 7, VS Code) the Run displays itself
(``Run._repr_mimebundle_``: the standalone viewer in an iframe of its own). Anywhere
else (a script, a terminal) it is saved as one HTML file and opened in the browser.
"""

from __future__ import annotations

import tempfile
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .schema import Run


def in_notebook() -> bool:
    """Whether this process is a notebook's kernel (IPython with a kernel attached)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def display(run: Run) -> Path | None:
    """Show ``run``: inline in a notebook; otherwise saved to a temporary HTML file and
    opened in the browser (that file's path)."""
    if in_notebook():
        from IPython.display import display as show

        show(run)
        return None
    path = Path(tempfile.mkdtemp(prefix="chainlens-")) / f"run-{run.id}.html"
    run.save(path)
    webbrowser.open(path.resolve().as_uri())
    return path
