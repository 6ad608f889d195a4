"""The README's pictures of JupyterLab, of the drawing widget and of the threshold explorer, taken
in headless Chromium by the browser tests' driver (``tests/browser/driver.py``).

    python -m tools.screenshot [lab] [drawing] [threshold]    # make screenshot; default: all three
"""

from __future__ import annotations

import platform
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
from playwright.sync_api import Locator, Page

from mnist_study.drawing import FIVE
from tests.browser.driver import (
    VIEWPORT,
    chromium_page,
    click_menu,
    draw,
    open_notebook,
    wait_for_reading,
    wait_for_threshold,
)
from tools.lab import running_lab
from tools.paths import NOTEBOOK_DIR, README_FIGURE_DIR

SCREENSHOT = README_FIGURE_DIR / "jupyter_notebook_location.png"
DRAWING = README_FIGURE_DIR / "draw_a_digit.png"
EXPLORER = README_FIGURE_DIR / "threshold_explorer.png"
# The JupyterLab picture is as wide as the README shows it, so its text keeps the browser's size;
# long code lines wrap (JupyterLab's lineWrap) instead of running off the narrow notebook.
LAB_VIEWPORT = {"width": 800, "height": 640}
LAB_SETTINGS = {"@jupyterlab/notebook-extension:tracker": {"codeCellConfig": {"lineWrap": True}}}
LAB_FIRST_CODE = "some_digit = X_train[0]"  # the picture starts at the text above this cell
# Rasterised in one thread, whole, without animation: otherwise the picture's icons come out in one
# of three antialiasings (2 of 5 openings alike without these flags, 13 of 13 with them).
LAB_FLAGS = ["--num-raster-threads=1", "--disable-partial-raster", "--disable-checker-imaging"]
LAB_FLAGS += ["--disable-threaded-animation", "--disable-threaded-scrolling"]


def notebooks_as_the_kernel_sees_them(root: Path) -> None:
    """Copy ``notebooks/`` into ``root`` with the language version a kernel of this Python reports.

    The committed notebooks leave it out (it would differ between Pythons); JupyterLab adds it when
    the kernel connects, which would mark the open notebook as changed in the picture.
    """
    (root / "notebooks").mkdir()
    for path in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        notebook.metadata.setdefault("language_info", {})["version"] = platform.python_version()
        nbformat.write(notebook, root / "notebooks" / path.name)


@contextmanager
def lab_showing(
    notebook: str,
    viewport: dict[str, int] = VIEWPORT,
    settings: dict[str, Any] | None = None,
    flags: Sequence[str] = (),
) -> Iterator[Page]:
    """A browser page on a JupyterLab of the notebooks that saves nothing, ``notebook`` open."""
    with (
        tempfile.TemporaryDirectory(prefix="mnist-screenshot-") as root,
        running_lab(Path(root), save_hook="refuse_save", settings=settings) as server,
        chromium_page(viewport, flags) as page,
    ):
        notebooks_as_the_kernel_sees_them(Path(root))
        open_notebook(page, server, f"notebooks/{notebook}")
        yield page


def shown_alone(page: Page, widget_class: str) -> Locator:
    """The widget of class ``widget_class`` in a panel of its own ("Create New View for Output"):
    in the notebook its pixels would depend, by fractions of a pixel, on the cells above it."""
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 1400})  # room for it below
    page.locator(f".{widget_class}").click(button="right", position={"x": 2, "y": 2})
    page.locator('.lm-Menu-item[data-command="notebook:create-output-view"]').click()
    return page.locator(f".jp-LinkedOutputView .{widget_class}")


def screenshot(output: Path = SCREENSHOT) -> None:
    """Save a picture of JupyterLab: ``notebooks/`` listed, the first notebook's first cells."""
    with lab_showing("01_is_it_a_5.ipynb", LAB_VIEWPORT, LAB_SETTINGS, LAB_FLAGS) as page:
        page.locator(".jp-DirListing-item", has_text="08_draw_a_digit.ipynb").wait_for()
        cell = page.locator(".jp-CodeCell", has_text=LAB_FIRST_CODE).first
        cell.evaluate("(cell) => cell.previousElementSibling.scrollIntoView({block: 'start'})")
        page.wait_for_function("[...document.images].every((image) => image.complete)")
        page.evaluate("document.fonts.ready")
        if page.locator(".jp-mod-dirty").count():
            raise RuntimeError(
                "JupyterLab marks the notebook as changed; the picture would show it"
            )
        page.screenshot(path=output)
    print(f"wrote {output}")


def threshold_explorer(output: Path = EXPLORER, timeout_s: float = 600) -> None:
    """Save a picture of the threshold explorer (stage 2, full data) at the 90%-precision preset."""
    with lab_showing("02_precision_recall_tradeoff.ipynb") as page:
        click_menu(page, "Run", "runmenu:run-all")
        page.locator(".threshold-explorer-measure").first.wait_for(timeout=timeout_s * 1000)
        widget = shown_alone(page, "threshold-explorer")
        before = widget.get_attribute("data-threshold")
        widget.locator(".threshold-explorer-preset", has_text="90% precision").click()
        wait_for_threshold(page, before)
        page.wait_for_function(
            """() => [...document.querySelectorAll(".threshold-explorer")].every(
                (root) => root.dataset.threshold === document.querySelector(
                    ".threshold-explorer").dataset.threshold)"""
        )
        page.evaluate("document.fonts.ready")
        widget.screenshot(path=output)
    print(f"wrote {output}")


def draw_a_digit(output: Path = DRAWING, timeout_s: float = 600) -> None:
    """Save a picture of the drawing widget (stage 8, full data) after a 5 is drawn on it."""
    with lab_showing("08_draw_a_digit.ipynb") as page:
        click_menu(page, "Run", "runmenu:run-all")
        page.locator(".digit-pad-canvas").first.wait_for(timeout=timeout_s * 1000)
        wait_for_reading(page, "Draw a digit")
        draw(page, FIVE)
        wait_for_reading(page, "reads a 5")
        widget = shown_alone(page, "digit-pad")
        widget.locator(".digit-pad-message", has_text="reads a 5").wait_for()
        page.evaluate("document.fonts.ready")
        widget.screenshot(path=output)
    print(f"wrote {output}")


PICTURES = {"lab": screenshot, "drawing": draw_a_digit, "threshold": threshold_explorer}


if __name__ == "__main__":
    asked = sys.argv[1:] or list(PICTURES)
    if unknown := set(asked) - set(PICTURES):
        sys.exit(f"unknown picture {', '.join(sorted(unknown))}: choose lab, drawing or threshold")
    for name in (name for name in PICTURES if name in asked):
        PICTURES[name]()
