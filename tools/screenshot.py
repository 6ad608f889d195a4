"""The README's pictures of JupyterLab, of the drawing widget and of the threshold explorer, taken
in headless Chromium through the browser tests' driver (``tests/browser/driver.py``).

    python -m tools.screenshot [lab] [drawing] [threshold]    # make screenshot: all three
"""

import platform
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat
from playwright.sync_api import Locator, Page

from mnist_study.drawing import FIVE
from tests.browser import driver
from tools.lab import running_lab
from tools.paths import NOTEBOOK_DIR, README_FIGURE_DIR

SCREENSHOT = README_FIGURE_DIR / "jupyter_notebook_location.png"
DRAWING = README_FIGURE_DIR / "draw_a_digit.png"
EXPLORER = README_FIGURE_DIR / "threshold_explorer.png"
# Rasterised in one thread, whole, without animation: otherwise the picture's icons come out in one
# of three antialiasings (2 of 5 openings alike without these flags, 13 of 13 with them).
LAB_FLAGS = ["--num-raster-threads=1", "--disable-partial-raster", "--disable-checker-imaging"]
LAB_FLAGS += ["--disable-threaded-animation", "--disable-threaded-scrolling"]
LAB_VIEW = {"viewport": {"width": 800, "height": 640}, "flags": LAB_FLAGS}


@contextmanager
def lab_showing(notebook: str, **lab: object) -> Iterator[Page]:
    """A page on a JupyterLab of a copy of the notebooks, ``notebook`` open."""
    with (
        tempfile.TemporaryDirectory(prefix="mnist-screenshot-") as root,
        running_lab(Path(root)) as server,
        driver.chromium_page(**lab) as page,
    ):
        (Path(root) / "notebooks").mkdir()
        for path in NOTEBOOK_DIR.glob("*.ipynb"):
            # with the Python version the kernel reports as it connects, else the notebook would
            # show as changed (the committed notebooks leave it out: it differs between Pythons)
            copy = nbformat.read(path, as_version=4)
            copy.metadata.setdefault("language_info", {})["version"] = platform.python_version()
            nbformat.write(copy, Path(root) / "notebooks" / path.name)
        driver.open_notebook(page, server, f"notebooks/{notebook}")
        yield page


def shown_alone(page: Page, widget: str) -> Locator:
    """The widget of class ``widget`` in a panel of its own (Create New View for Output): in the
    notebook its pixels would depend, by fractions of one, on the cells above it."""
    page.set_viewport_size({"width": driver.VIEWPORT["width"], "height": 1400})  # room for it below
    page.locator(f".{widget}").click(button="right", position={"x": 2, "y": 2})
    page.locator('.lm-Menu-item[data-command="notebook:create-output-view"]').click()
    return page.locator(f".jp-LinkedOutputView .{widget}")


def lab() -> None:
    """JupyterLab: ``notebooks/`` listed, the first notebook's first cells."""
    with lab_showing("01_is_it_a_5.ipynb", **LAB_VIEW) as page:  # as wide as the README shows it
        page.locator(".jp-DirListing-item", has_text="08_draw_a_digit.ipynb").wait_for()
        cell = page.locator(".jp-CodeCell", has_text="some_digit = X_train[0]").first
        cell.evaluate("(cell) => cell.previousElementSibling.scrollIntoView({block: 'start'})")
        page.wait_for_function("[...document.images].every((image) => image.complete)")
        page.evaluate("document.fonts.ready")
        if page.locator(".jp-mod-dirty").count():
            raise RuntimeError("JupyterLab shows the notebook as changed, as would the picture")
        page.screenshot(path=SCREENSHOT)


def threshold() -> None:
    """The threshold explorer (stage 2, full data) at the 90%-precision preset."""
    with lab_showing("02_precision_recall_tradeoff.ipynb") as page:
        driver.click_menu(page, "Run", "runmenu:run-all")
        page.locator(".threshold-explorer-measure").first.wait_for(timeout=600_000)
        widget = shown_alone(page, "threshold-explorer")
        before = widget.get_attribute("data-threshold")
        widget.locator(".threshold-explorer-preset", has_text="90% precision").click()
        page.wait_for_function(  # both views answered for the preset's threshold
            """(old) => [...document.querySelectorAll(".threshold-explorer")].every(
                (root) => root.dataset.threshold !== old && root.dataset.threshold ===
                document.querySelector(".threshold-explorer").dataset.threshold)""",
            arg=before,
        )
        page.evaluate("document.fonts.ready")
        widget.screenshot(path=EXPLORER)


def drawing() -> None:
    """The drawing widget (stage 8, full data) after a 5 is drawn on it."""
    with lab_showing("08_draw_a_digit.ipynb") as page:
        driver.click_menu(page, "Run", "runmenu:run-all")
        page.locator(".digit-pad-canvas").first.wait_for(timeout=600_000)
        driver.wait_for_reading(page, "Draw a digit")
        driver.draw(page, FIVE)
        driver.wait_for_reading(page, "reads a 5")
        widget = shown_alone(page, "digit-pad")
        widget.locator(".digit-pad-message", has_text="reads a 5").wait_for()
        page.evaluate("document.fonts.ready")
        widget.screenshot(path=DRAWING)


if __name__ == "__main__":
    PICTURES = {"lab": (lab, SCREENSHOT), "drawing": (drawing, DRAWING)}
    PICTURES["threshold"] = (threshold, EXPLORER)
    if unknown := set(sys.argv[1:]) - set(PICTURES):
        sys.exit(f"unknown picture {', '.join(sorted(unknown))}: choose lab, drawing or threshold")
    for take, output in (PICTURES[name] for name in sys.argv[1:] or PICTURES):
        take()
        print(f"wrote {output}")
