"""The committed, executed notebooks: clean, numbered, the source of every number a page states."""

import base64
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from mnist_study.book import NUMBERS as BOOK
from tests.pages import NOTEBOOKS, PAGES, markdown_of, output_text, prose
from tools.paths import ROOT, SCRATCH_FIGURE_DIR
from tools.screenshot import DRAWING, EXPLORER, SCREENSHOT

# The bench record; its cold section (`make bench-cold`) is what the README's first-run needs quote.
BENCH_RECORD = ROOT / "benchmarks" / "RESULTS.md"
README = ROOT / "README.md"
# The one book comparison that does not agree to the last digit, and why (notebook 01 explains it):
# today's scikit-learn computes F1 from the counts, the book's from precision and recall.
EXPECTED_DISAGREEMENTS = {"01_is_it_a_5.ipynb": 1}
# Numbers a page may state that no notebook prints: Python's and scikit-learn's versions.
VERSIONS = {"3.11", "3.12", "3.13", "3.14", "1.8"}
NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?\s?%|\d+\.\d+")


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=name)
def test_notebook_is_executed_in_order_and_renders_cleanly(path: Path) -> None:
    """Numbered; every cell run once in order, cleanly; no run metadata; parameters as make sets."""
    raw = path.read_text()
    notebook = nbformat.reads(raw, as_version=4)
    nbformat.validate(notebook)
    assert int(path.name[:2]) == NOTEBOOKS.index(path) + 1 and len(NOTEBOOKS) >= 5, "no gap"
    assert path.stat().st_size < 1_000_000, "GitHub renders large notebooks poorly"
    assert "widgets" not in notebook.metadata and notebook.cells[0].cell_type == "markdown"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    outputs = [output for cell in code for output in cell.outputs]
    assert [o for o in outputs if o.output_type == "error" or o.get("name") == "stderr"] == []
    data = [output.get("data", {}) for output in outputs]
    assert not any("sk-estimator" in d.get("text/html", "") for d in data)
    pngs = [base64.b64decode(d["image/png"]) for d in data if "image/png" in d]
    assert pngs and not [png for png in pngs if b"Software" in png or b"Matplotlib" in png]
    for leak in ("/work/", "/home/", "/tmp/", "0x7f", "papermill"):
        assert leak not in raw, f"{leak!r}: paths, addresses or run metadata"
    (cell,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    defaults: dict[str, object] = {}
    exec(cell.source, {}, defaults)
    assert defaults == {"sample": None, "fixture": None, "figure_dir": "../build/figures"}
    assert (path.parent / "../build/figures").resolve() == SCRATCH_FIGURE_DIR
    assert "load_mnist(sample, fixture=fixture)" in "".join(c.source for c in notebook.cells)


def test_every_book_number_is_printed_and_compared() -> None:
    """Each book.py value is printed; every 'same as the book' is True but notebook 01's one."""
    shown = " ".join(" ".join(map(output_text, NOTEBOOKS)).split())

    def printed(value: object) -> bool:
        forms = [value, np.array(value), np.array([value])] if isinstance(value, list) else [value]
        return any(not unprinted({" ".join(str(form).split())}, shown) for form in forms)

    assert [key for key, value in BOOK.items() if not printed(value)] == []
    verdicts = {p.name: re.findall(r"same as the book: (\w+)", output_text(p)) for p in NOTEBOOKS}
    assert any("True" in v for v in verdicts.values())
    assert {n: v.count("False") for n, v in verdicts.items() if "False" in v} == (
        EXPECTED_DISAGREEMENTS
    )


def unprinted(numbers: set[str], shown: str) -> list[str]:
    """The numbers that do not stand, as numbers, in the text ``shown``."""
    return sorted(n for n in numbers if not re.search(rf"(?<![\d.,]){re.escape(n)}(?!\d)", shown))


@pytest.mark.parametrize("path", PAGES + NOTEBOOKS, ids=name)
def test_every_number_of_the_prose_is_printed(path: Path) -> None:
    """A page's numbers appear in a notebook's outputs (or the bench's records)."""
    shown = output_text(path) if path.suffix == ".ipynb" else "\n".join(map(output_text, NOTEBOOKS))
    if path.suffix == ".md":
        shown += BENCH_RECORD.read_text()
    numbers = set(NUMBER.findall(prose(markdown_of(path)))) - VERSIONS
    assert unprinted(numbers, shown) == [], f"{path.name}: numbers that no output prints"


def test_the_number_check_catches_a_number_no_output_prints() -> None:
    """A missing number, or one only rounded, is caught; the README states many numbers."""
    assert unprinted({"12.5%", "1,234", "0.25"}, "share 12.5%\n[0.125 0.25 ]") == ["1,234"]
    assert unprinted({"0.96"}, "0.9604") == ["0.96"], "a rounded number is not the number printed"
    assert NUMBER.findall("16,716.6 and 2,164") == ["16,716.6", "2,164"]
    assert len(set(NUMBER.findall(prose(README.read_text()))) - VERSIONS) > 20


def test_readme_states_what_the_first_run_needs_as_the_bench_measured() -> None:
    """The paragraph beside the two commands quotes the cold section of the bench record."""
    record, readme = BENCH_RECORD.read_text(), README.read_text()
    needs = prose(readme[readme.index("What the first run needs") : readme.index("## The study")])
    times = re.search(r"the main job: ([\d,]+) s wall, ([\d,]+) s of CPU", record).groups()
    wall, cpu = (float(value.replace(",", "")) for value in times)
    assert f"about {wall / 60:.0f} minutes" in needs
    assert f"{cpu / 60:.0f} minutes of processor time" in needs
    for measure in ("the main job's peak", "largest notebook peak"):
        assert re.search(rf"{measure} ([\d.]+ GB)", record).group(1) in needs, measure
    for size in re.search(r"disk after the run: (.*)", record).group(1).split(", "):
        assert re.sub(r"^the (\w+ )*", "", size) in needs, size


def test_readme_shows_every_exported_figure() -> None:
    """Each picture of readme_images/ is in the README and, but the screenshots, a notebook's."""
    readme = README.read_text()
    sources = "\n".join(path.read_text() for path in NOTEBOOKS)
    screenshots = {picture.name for picture in (SCREENSHOT, DRAWING, EXPLORER)}
    for figure in (ROOT / "readme_images").glob("*.png"):
        assert f"readme_images/{figure.name}" in readme, figure.name
        assert figure.name in screenshots or figure.name in sources, f"no notebook writes {figure}"
