"""What a reader reads: the notebooks, the README and the pages beside it, and what they print."""

import re
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


def output_text(path: Path) -> str:
    """All text a reader sees in a notebook's outputs (streams, plain text and markdown)."""
    parts = []
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts += [output.get("data", {}).get(k, "") for k in ("text/plain", "text/markdown")]
    return "\n".join(parts)


def prose(markdown: str) -> str:
    """Markdown as a reader reads it: no code blocks, inline code, image or link targets."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.DOTALL)
    text = re.sub(r"`[^`]*`", "", text)
    return re.sub(r"\]\([^)]*\)", "]", text)
