"""What a reader reads: the notebooks, the README and the pages beside it, as Markdown."""

from __future__ import annotations

from pathlib import Path

import nbformat

from tools.paths import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# The README and the reference pages it links to.
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


def markdown_of(path: Path) -> str:
    """A page's Markdown, or a notebook's Markdown cells one after the other."""
    if path.suffix == ".ipynb":
        notebook = nbformat.read(path, as_version=4)
        return "\n\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    return path.read_text()
