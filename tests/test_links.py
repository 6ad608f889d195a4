"""Every relative link of the Markdown pages and the notebooks reaches its file and its heading.

A Markdown file's anchors are GitHub's: the heading's text lowercased, all but letters, digits,
spaces, '-' and '_' dropped, each space made '-', and -1, -2… after a repeated one.
A notebook's anchors are the ids nbconvert gives its headings (as nbviewer and JupyterLab do): the
heading's text with each space made '-', case and punctuation kept.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import mistune
import nbformat
import pytest
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from tools.paths import ROOT

PARSE = mistune.create_markdown(renderer=None, plugins=["table", "strikethrough", "url"])
# Folders that hold no page a reader follows a link from: environments, caches, scratch, data.
SKIPPED = {"build", "data", "node_modules"}
# A link that names its scheme (https:, mailto:) or its host (//…) leaves the checkout.
EXTERNAL = re.compile(r"^([a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)
# GitHub's anchors of a line or lines of a file it shows as code: #L10, #L10-L20.
LINE_ANCHOR = re.compile(r"^L\d+(-L\d+)?$")


def pages(root: Path) -> list[Path]:
    """The Markdown files and the notebooks of the checkout, outside hidden and skipped folders."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [n for n in subfolders if not (n.startswith(".") or n in SKIPPED)]
        found += [Path(folder, name) for name in files if name.endswith((".md", ".ipynb"))]
    return sorted(found)


def markdown_texts(path: Path) -> list[str]:
    """The Markdown of ``path``: the file, or each Markdown cell of a notebook."""
    if path.suffix != ".ipynb":
        return [path.read_text(encoding="utf-8")]
    notebook = nbformat.read(path, as_version=4)
    return [cell.source for cell in notebook.cells if cell.cell_type == "markdown"]


def tokens(children: list[dict]) -> Iterator[dict]:
    """Every token of a mistune syntax tree, depth first."""
    for token in children:
        yield token
        yield from tokens(token.get("children", []))


class Attributes(HTMLParser):
    """The values of some attributes in a piece of HTML, in order."""

    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self.names, self.values = names, []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.values += [value for name, value in attrs if name in self.names and value]


def html_attributes(html: str, names: set[str]) -> list[str]:
    parser = Attributes(names)
    parser.feed(html)
    return parser.values


def link_targets(markdown: str) -> list[str]:
    """The targets of the links and images of ``markdown``, HTML ones included, code left out."""
    targets = []
    for token in tokens(PARSE(markdown)):
        if token["type"] in {"link", "image"}:
            targets.append(token["attrs"]["url"])
        elif token["type"] in {"inline_html", "block_html"}:
            targets += html_attributes(token["raw"], {"href", "src"})
    return targets


def plain_text(children: list[dict]) -> str:
    """A heading's text as a browser shows it: the Markdown marks and HTML tags removed."""
    parts = []
    for token in children:
        if token["type"] in {"text", "codespan"}:
            parts.append(token["raw"])
        elif token["type"] in {"softbreak", "linebreak"}:
            parts.append(" ")
        elif token["type"] != "image":
            parts.append(plain_text(token.get("children", [])))
    return "".join(parts)


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading (before the suffix of a repeated one)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def markdown_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file, and its HTML ids and names."""
    anchors, seen = set(), {}
    for token in tokens(PARSE(markdown)):
        if token["type"] == "heading":
            anchor = github_anchor(plain_text(token["children"]))
            repeats = seen[anchor] = seen.get(anchor, -1) + 1
            anchors.add(f"{anchor}-{repeats}" if repeats else anchor)
        elif token["type"] in {"inline_html", "block_html"}:
            anchors |= set(html_attributes(token["raw"], {"id", "name"}))
    return anchors


def notebook_anchors(cells: list[str]) -> set[str]:
    """The ids nbconvert gives a notebook's headings (and other elements), one cell at a time."""
    return {
        unquote(anchor)
        for cell in cells
        for anchor in html_attributes(markdown2html_mistune(cell), {"id", "name"})
    }


@functools.cache
def anchors(path: Path) -> set[str]:
    texts = markdown_texts(path)
    return notebook_anchors(texts) if path.suffix == ".ipynb" else markdown_anchors(texts[0])


def broken_links(page: Path, root: Path) -> list[str]:
    """Each relative link of ``page`` whose file, or heading in that file, does not exist."""
    broken = []
    for target in (t for text in markdown_texts(page) for t in link_targets(text)):
        if EXTERNAL.match(target):
            continue
        parts = urlsplit(target)
        path = unquote(parts.path)
        file = (root / path.lstrip("/") if path.startswith("/") else page.parent / path).resolve()
        file = file if path else page.resolve()
        fragment = unquote(parts.fragment)
        if not file.is_relative_to(root.resolve()) or not file.exists():
            broken.append(f"{target}: no such file in the checkout")
        elif not fragment:
            continue
        elif file.suffix in {".md", ".ipynb"}:
            if fragment not in anchors(file):
                broken.append(f"{target}: {file.name} has no heading with the anchor #{fragment}")
        elif not LINE_ANCHOR.match(fragment):
            broken.append(f"{target}: {file.name} has no headings to link to")
    return broken


@pytest.mark.parametrize("page", pages(ROOT), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_reaches_its_file_and_heading(page: Path) -> None:
    broken = broken_links(page, ROOT)
    assert not broken, f"{page.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)


def test_the_anchors_are_githubs_in_markdown_and_nbconverts_in_notebooks() -> None:
    markdown = (
        "# Is it a 5? — a study\n\n## 1 · Is it a 5? ([notebook](n.ipynb))\n\n"
        "## Results at a glance\n\n## Results at a glance\n\n### What `cross_val_score` does\n\n"
        "## Précision & rappel, *in French*\n\n<a name='kept'></a>\n\n```\n# not a heading\n```\n"
    )
    assert markdown_anchors(markdown) == {
        "is-it-a-5--a-study",
        "1--is-it-a-5-notebook",
        "results-at-a-glance",
        "results-at-a-glance-1",
        "what-cross_val_score-does",
        "précision--rappel-in-french",
        "kept",
    }
    cells = [
        "# 1 · Is it a 5?\n\n## The disk cache",
        "### What `cross_val_score` does, written out",
    ]
    assert notebook_anchors(cells) == {
        "1-·-Is-it-a-5?",
        "The-disk-cache",
        "What-cross_val_score-does,-written-out",
    }


def test_broken_links_are_found_and_named(tmp_path: Path) -> None:
    """A link to a missing file, a missing heading, or out of the checkout is reported; others
    (a heading in the same file, a notebook's heading, a folder, a web page, code) are not."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "glossary.md").write_text("# Glossary\n\n## Precision (quality)\n")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("## The disk cache")])
    nbformat.write(notebook, tmp_path / "01.ipynb")
    (tmp_path / "README.md").write_text(
        "# Title\n\n## Run it\n\n[a](#run-it) [b](docs/glossary.md#precision-quality) "
        "[c](01.ipynb#The-disk-cache) [d](docs/) [e](https://example.org/x.md#nowhere)\n"
        "`[f](missing.md)`\n\n"
        "[g](docs/missing.md) [h](docs/glossary.md#recall) [i](#Run-it) [j](../outside.md) "
        "[k](01.ipynb#the-disk-cache) [l][ref] <a href='docs/gone.md'>m</a>\n\n"
        "[ref]: 01.ipynb#The-data\n"
    )
    broken = broken_links(tmp_path / "README.md", tmp_path)
    assert [line.split(":")[0] for line in broken] == [
        "docs/missing.md",
        "docs/glossary.md#recall",
        "#Run-it",
        "../outside.md",
        "01.ipynb#the-disk-cache",
        "01.ipynb#The-data",
        "docs/gone.md",
    ]
