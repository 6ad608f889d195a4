"""The committed, executed notebooks: they render on GitHub and show the book's numbers."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from mnist_study.book import NUMBERS as BOOK
from tests.pages import NOTEBOOKS, PAGES, markdown_of
from tools.paths import ROOT, SCRATCH_FIGURE_DIR
from tools.screenshot import DRAWING, EXPLORER, SCREENSHOT

# What the last cold ``make bench-memory`` measured: the README's first-run needs quote it.
MEMORY_RECORD = ROOT / "benchmarks" / "MEMORY.md"
SPEED_RECORD = ROOT / "benchmarks" / "RESULTS.md"
STUDY = {path.name[:2]: path for path in NOTEBOOKS}
# The README pictures `make screenshot` takes in the browser, not a notebook
SCREENSHOTS = {picture.name for picture in (SCREENSHOT, DRAWING, EXPLORER)}

# The one book comparison that does not agree to the last digit, and why (notebook 01 explains it):
# today's scikit-learn computes F1 from the counts, the book's from precision and recall.
EXPECTED_DISAGREEMENTS = {"01": 1}


def output_text(path: Path) -> str:
    """All text a reader sees in a notebook's outputs (streams, plain text and markdown)."""
    notebook = nbformat.read(path, as_version=4)
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            for kind in ("text/plain", "text/markdown"):
                if kind in output.get("data", {}):
                    parts.append(output.data[kind])
    return "\n".join(parts)


def test_the_notebooks_are_numbered_without_a_gap() -> None:
    assert list(STUDY) == [f"{number:02d}" for number in range(1, len(STUDY) + 1)]
    assert len(STUDY) >= 5, "stages 1 to 5 at least"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_renders_cleanly(path: Path) -> None:
    assert path.stat().st_size < 1_000_000, "GitHub renders large notebooks poorly"
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert "widgets" not in notebook.metadata
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), (
        "executed top to bottom, every cell once"
    )
    assert any("parameters" in cell.metadata.get("tags", []) for cell in code)
    assert notebook.cells[0].cell_type == "markdown", "starts with an introduction"
    for cell in code:
        for output in cell.outputs:
            assert output.output_type != "error", cell.source
            assert output.get("name") != "stderr", f"warning or log output in: {cell.source}"
            assert "sk-estimator" not in output.get("data", {}).get("text/html", "")
    raw = path.read_text()
    for leak in ("/work/", "/home/", "/tmp/", "0x7f", "papermill"):
        assert leak not in raw, f"{leak!r} in {path.name}: paths, addresses or run metadata"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_figures_carry_no_software_metadata(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    images = [
        base64.b64decode(output.data["image/png"])
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    assert images, f"{path.name} shows no figure"
    assert not [image for image in images if b"Software" in image or b"Matplotlib" in image]


def printed_forms(value: object) -> set[str]:
    """How a notebook may print a book value: as Python prints it, or as a NumPy array."""
    forms = {str(value)}
    if isinstance(value, list):
        forms |= {str(np.array(value)), str(np.array([value]))}
    return {" ".join(form.split()) for form in forms}


def test_every_book_number_is_printed_beside_the_studys() -> None:
    """Each value of book.py is printed by some notebook, next to the study's own."""
    shown = " ".join(" ".join(output_text(path) for path in NOTEBOOKS).split())
    missing = [
        key for key, value in BOOK.items() if not printed_forms(value) & {*shown.split("\n")}
    ]
    missing = [
        key for key in missing if not any(form in shown for form in printed_forms(BOOK[key]))
    ]
    assert missing == [], f"book numbers no notebook prints: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_book_comparisons_agree_but_the_one_explained(path: Path) -> None:
    verdicts = re.findall(r"same as the book: (True|False)", output_text(path))
    assert verdicts.count("False") == EXPECTED_DISAGREEMENTS.get(path.name[:2], 0)


# Numbers a page may state that no notebook prints: Python's and scikit-learn's versions.
README_NUMBER_EXCEPTIONS = {"3.11", "3.12", "3.13", "3.14", "1.8"}
NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?\s?%|\d+\.\d+")


def prose(markdown: str) -> str:
    """Markdown as a reader reads it: no code blocks, inline code, image or link targets."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.DOTALL)
    text = re.sub(r"`[^`]*`", "", text)
    return re.sub(r"\]\([^)]*\)", "]", text)


def unprinted(numbers: set[str], shown: str) -> list[str]:
    """The numbers that do not stand, as numbers, in the text ``shown``."""
    return sorted(
        number
        for number in numbers
        if not re.search(rf"(?<![\d.,]){re.escape(number)}(?![\d])", shown)
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_number_of_a_page_is_printed_by_a_notebook(page: Path) -> None:
    """Every decimal, percentage and large count of the README and of docs/ appears in a
    notebook's output, or, for speed and memory, in the bench's records."""
    records = MEMORY_RECORD.read_text() + SPEED_RECORD.read_text()
    shown = "\n".join(output_text(path) for path in NOTEBOOKS) + records
    numbers = set(NUMBER.findall(prose(page.read_text()))) - README_NUMBER_EXCEPTIONS
    missing = unprinted(numbers, shown)
    assert missing == [], f"{page.name}: numbers that no notebook prints: {missing}"


def test_the_readme_quotes_the_notebooks() -> None:
    numbers = set(NUMBER.findall(prose((ROOT / "README.md").read_text())))
    assert len(numbers - README_NUMBER_EXCEPTIONS) > 20


def test_readme_states_what_the_first_run_needs_as_the_bench_measured() -> None:
    """The paragraph beside the two commands quotes the last cold run of ``make bench-memory``."""
    record = MEMORY_RECORD.read_text()
    readme = (ROOT / "README.md").read_text()
    needs = prose(readme[readme.index("What the first run needs") : readme.index("## The study")])
    wall, cpu = (
        float(value.replace(",", ""))
        for value in re.search(r"the main job: ([\d,]+) s wall, ([\d,]+) s of CPU", record).groups()
    )
    assert f"about {wall / 60:.0f} minutes" in needs
    assert f"{cpu / 60:.0f} minutes of processor time" in needs
    for measure in ("the main job's peak", "largest notebook peak"):
        assert re.search(rf"{measure} ([\d.]+ GB)", record).group(1) in needs, measure
    for size in re.search(r"disk after the run: (.*)", record).group(1).split(", "):
        assert re.sub(r"^the (\w+ )*", "", size) in needs, size


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_number_of_a_notebooks_prose_is_printed_by_that_notebook(path: Path) -> None:
    """The Markdown cells state only numbers the notebook's outputs print, so they cannot drift."""
    numbers = set(NUMBER.findall(prose(markdown_of(path))))
    missing = unprinted(numbers, output_text(path))
    assert missing == [], f"{path.name}: numbers in its Markdown that no output prints: {missing}"


def test_the_prose_check_catches_a_number_no_output_prints() -> None:
    assert unprinted(
        {"97.05%", "1,891", "0.9604"}, "accuracy 97.05%\n[0.95035 0.96035 0.9604 ]"
    ) == ["1,891"]
    assert unprinted({"0.96"}, "0.9604") == ["0.96"], "a rounded number is not the number printed"
    assert NUMBER.findall("16,716.6 and 2,164") == ["16,716.6", "2,164"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_write_percentages_one_way(page: Path) -> None:
    assert not re.search(r"\d %", prose(page.read_text())), "write 97%, not 97 %"


def test_readme_shows_every_exported_figure() -> None:
    readme = (ROOT / "README.md").read_text()
    for figure in (ROOT / "readme_images").glob("*.png"):
        assert f"readme_images/{figure.name}" in readme, figure.name
    sources = "\n".join(json.dumps(nbformat.read(p, as_version=4).cells) for p in NOTEBOOKS)
    for figure in (ROOT / "readme_images").glob("*.png"):
        if figure.name not in SCREENSHOTS:
            assert figure.name in sources, f"{figure.name} is written by no notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_run_by_hand_writes_figures_to_the_scratch_folder(path: Path) -> None:
    """The parameters cell names everything a run depends on; its figures go to build/figures/."""
    notebook = nbformat.read(path, as_version=4)
    (cell,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    defaults: dict[str, object] = {}
    exec(cell.source, {}, defaults)
    assert defaults == {"sample": None, "fixture": None, "figure_dir": "../build/figures"}
    assert (path.parent / "../build/figures").resolve() == SCRATCH_FIGURE_DIR
    assert "load_mnist(sample, fixture=fixture)" in "".join(c.source for c in notebook.cells)
