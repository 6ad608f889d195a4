"""Short sentences and a short README: the measure CONTRIBUTING.md states, held for every page."""

import re
from pathlib import Path

import pytest

from tests.pages import NOTEBOOKS, PAGES, markdown_of
from tools.paths import ROOT

LONGEST, MEAN = 40, 20
README_WORDS, STORY_WORDS = 2800, 2000
# A sentence ends at . ! or ? (after any closing bracket, quote or emphasis) before a space or the
# end of its paragraph; a paragraph, a list item and a table row end one too.
SENTENCE_END = re.compile(r"(?<=[.!?])[)\]*_\"”’]*(?=\s|$)")
WORD = re.compile(r"[\w’'−–-]*\w[\w’'.,/×−–-]*")


def readable(markdown: str) -> str:
    """The text a reader reads: no code, HTML, headings, pictures or link targets."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.DOTALL)
    text = re.sub(r"<!--.*?-->|</?[A-Za-z][^<>\n]*>", "", text, flags=re.DOTALL)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"`[^`]+`", "code", text)
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def sentences(markdown: str, tables: bool = False) -> list[str]:
    """The sentences of a page, tables left out unless asked for (their cells are not sentences)."""
    blocks = re.split(r"\n\s*\n|\n(?=\s*(?:[-*+]|\d+\.)\s)", readable(markdown))
    found = []
    for block in blocks:
        rows = [row for row in block.splitlines() if tables or not row.lstrip().startswith("|")]
        parts = SENTENCE_END.split(" ".join(rows))
        found += [" ".join(part.split()) for part in parts if WORD.search(part)]
    return found


def words(text: str) -> int:
    return len(WORD.findall(text))


@pytest.mark.parametrize("path", PAGES + NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_sentences_are_short(path: Path) -> None:
    """No sentence over 40 words, 20 on average; percentages written 97%, not 97 %."""
    found = sentences(markdown_of(path))
    assert found, f"{path.name} has no prose"
    long = [f"({words(s)} words) {s}" for s in found if words(s) > LONGEST]
    assert long == [], f"{path.name}: sentences over {LONGEST} words:\n" + "\n".join(long)
    mean = sum(map(words, found)) / len(found)
    assert mean <= MEAN, f"{path.name}: sentences of {mean:.1f} words on average (at most {MEAN})"
    assert not re.search(r"\d %", readable(markdown_of(path))), "write 97%, not 97 %"


def test_the_readme_is_read_in_one_sitting() -> None:
    """The story, title to 'What was learned', and the whole README stay within their words."""
    readme = (ROOT / "README.md").read_text()
    story = readme[: readme.index("\n## ", readme.index("## What was learned"))]
    count = words(" ".join(sentences(story, tables=True)))
    assert count <= STORY_WORDS, f"the story, title to 'What was learned': {count} words"
    count = words(" ".join(sentences(readme, tables=True)))
    assert count <= README_WORDS, f"the README: {count} words"


def test_the_measure_counts_what_a_reader_reads() -> None:
    """Headings, code blocks, pictures, HTML and link targets are not read; tables only if asked."""
    page = (
        "# A heading. Not counted.\n\nOne two three. Four, five: 0.25 and 12.5% [six](a.md#b).\n"
        "- Seven `code(x=1)` eight\n- nine?\n\n```python\nnot = counted\n```\n"
        "![alt text](x.png)\n\n| ten | eleven |\n|---|---|\n"
        "<img src='x.png'>\np < 0.05 and q > 1.\n"
    )
    assert sentences(page) == [
        "One two three.",
        "Four, five: 0.25 and 12.5% [six].",
        "- Seven code eight",
        "- nine?",
        "p < 0.05 and q > 1.",
    ]
    assert [words(s) for s in sentences(page)] == [3, 6, 3, 1, 5]
    assert words(" ".join(sentences(page, tables=True))) == 20
