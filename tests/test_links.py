"""Every relative link of the Markdown pages and the notebooks reaches its file and its heading."""

import functools
import os
import re
from html import unescape
from pathlib import Path
from urllib.parse import unquote, urlsplit

import mistune
import pytest
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from tests.pages import markdown_of
from tools.paths import ROOT

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


def html_attributes(html: str, names: str) -> list[str]:
    """The values of the attributes ``names`` (a regex: ``href|src``) in a piece of HTML."""
    return [unescape(v) for v in re.findall(rf"\s(?:{names})\s*=\s*[\"']([^\"']+)[\"']", html)]


def markdown_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file, and its HTML ids and names."""
    html = mistune.html(markdown)
    anchors, seen = set(html_attributes(html, "id|name")), {}
    for heading in re.findall(r"<h[1-6]>(.*?)</h[1-6]>", html, re.DOTALL):
        text = unescape(re.sub(r"<[^>]+>", "", heading)).strip().lower()
        anchor = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        repeats = seen[anchor] = seen.get(anchor, -1) + 1
        anchors.add(f"{anchor}-{repeats}" if repeats else anchor)
    return anchors


@functools.cache
def anchors(path: Path) -> set[str]:
    """A page's anchors: GitHub's for Markdown, nbconvert's ids for a notebook."""
    if path.suffix != ".ipynb":
        return markdown_anchors(path.read_text())
    return {unquote(a) for a in html_attributes(markdown2html_mistune(markdown_of(path)), "id")}


def broken_links(page: Path, root: Path) -> list[str]:
    """Each relative link of ``page`` whose file, or heading in that file, does not exist."""
    broken = []
    for target in html_attributes(mistune.html(markdown_of(page)), "href|src"):
        if EXTERNAL.match(target):
            continue
        parts = urlsplit(target)
        path, fragment = unquote(parts.path), unquote(parts.fragment)
        file = (root / path.lstrip("/") if path.startswith("/") else page.parent / path).resolve()
        file = file if path else page.resolve()
        if not file.is_relative_to(root.resolve()) or not file.exists():
            broken.append(f"{target}: no such file in the checkout")
        elif fragment and file.suffix in {".md", ".ipynb"} and fragment not in anchors(file):
            broken.append(f"{target}: {file.name} has no heading with the anchor #{fragment}")
        elif fragment and file.suffix not in {".md", ".ipynb"} and not LINE_ANCHOR.match(fragment):
            broken.append(f"{target}: {file.name} has no headings to link to")
    return broken


@pytest.mark.parametrize("page", pages(ROOT), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_reaches_its_file_and_heading(page: Path) -> None:
    """Each relative link and picture names a file, and a heading, that exist."""
    broken = broken_links(page, ROOT)
    assert not broken, f"{page.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)


def test_broken_links_are_found_and_named(tmp_path: Path) -> None:
    """A missing file or heading is reported; a heading that exists, by GitHub's anchor, is not."""
    (tmp_path / "a.md").write_text("# A\n\n## Précision & rappel, *here*\n")
    (tmp_path / "README.md").write_text("[x](a.md#précision--rappel-here) [y](a.md#no) [z](b.md)")
    broken = [line.split(":")[0] for line in broken_links(tmp_path / "README.md", tmp_path)]
    assert broken == ["a.md#no", "b.md"]
