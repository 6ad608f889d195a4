"""The README's pictures of JupyterLab, of the drawing widget and of the threshold explorer,
taken in Debian's headless Chromium through playwright.

``chromium_page``, ``open_notebook``, ``draw`` and ``explorer_shown`` are also the browser tests'
way in (``tests/browser/``).

    python -m tools.screenshot              # make screenshot: every picture
    python -m tools.screenshot drawing      # only the drawing widget's
    python -m tools.screenshot threshold    # only the threshold explorer's
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import nbformat
from playwright.sync_api import Page, sync_playwright

from mnist_study.drawing import FIVE
from tools.lab import LabServer, running_lab
from tools.paths import NOTEBOOK_DIR, README_FIGURE_DIR

__all__ = [
    "chromium_page",
    "draw",
    "draw_a_digit",
    "explorer_shown",
    "main",
    "open_notebook",
    "screenshot",
    "threshold_explorer",
    "wait_for_reading",
    "wait_for_threshold",
]

SCREENSHOT = README_FIGURE_DIR / "jupyter_notebook_location.png"
FIRST_NOTEBOOK = "notebooks/01_is_it_a_5.ipynb"
DRAWING = README_FIGURE_DIR / "draw_a_digit.png"
DRAWING_NOTEBOOK = "notebooks/08_draw_a_digit.ipynb"
EXPLORER = README_FIGURE_DIR / "threshold_explorer.png"
EXPLORER_NOTEBOOK = "notebooks/02_precision_recall_tradeoff.ipynb"
EXPLORER_PRESET = "90% precision"
PICTURES = ("lab", "drawing", "threshold")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}


@contextmanager
def chromium_page() -> Iterator[Page]:
    """A page of Debian's headless Chromium, driven by playwright, closed after use."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: install Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield browser.new_page(viewport=VIEWPORT)
        finally:
            browser.close()


def open_notebook(page: Page, server: LabServer, path: str, timeout_s: float = 60) -> None:
    """Open ``path`` alone in JupyterLab and wait until its kernel is connected and idle."""
    page.goto(server.lab_url(path, reset=True))
    kernel_status = page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$"))
    kernel_status.wait_for(timeout=timeout_s * 1000)


def widen_file_browser(page: Page, width: int) -> None:
    """Drag the file browser's right edge to ``width`` pixels, so that long file names fit."""
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle:visible").first
    box = handle.bounding_box()
    if box is None:
        raise RuntimeError("the file browser's edge is not on the page")
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(width, y, steps=10)
    page.mouse.up()


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
def lab_showing(notebook: str) -> Iterator[Page]:
    """A browser page on a read-only JupyterLab of the notebooks, with ``notebook`` open."""
    with (
        tempfile.TemporaryDirectory(prefix="mnist-screenshot-") as root,
        running_lab(Path(root), read_only=True) as server,
        chromium_page() as page,
    ):
        notebooks_as_the_kernel_sees_them(Path(root))
        open_notebook(page, server, notebook)
        yield page


def screenshot(output: Path = SCREENSHOT) -> None:
    """Save a picture of JupyterLab listing ``notebooks/`` with the first notebook's outputs."""
    with lab_showing(FIRST_NOTEBOOK) as page:
        widen_file_browser(page, 360)
        page.locator(".jp-DirListing-item", has_text=Path(FIRST_NOTEBOOK).name).wait_for()
        first_figure = page.locator(".jp-NotebookPanel .jp-RenderedImage img").first
        first_figure.evaluate("(image) => image.scrollIntoView({block: 'center'})")
        page.wait_for_function("[...document.images].every((image) => image.complete)")
        page.evaluate("document.fonts.ready")
        if page.locator(".jp-mod-dirty").count():
            raise RuntimeError(
                "JupyterLab marks the notebook as changed; the picture would show it"
            )
        page.screenshot(path=output)
    print(f"wrote {output}")


def draw(page: Page, strokes: Sequence[Sequence[tuple[float, float]]]) -> None:
    """Draw pen strokes with the mouse on the drawing widget's canvas (in canvas pixels)."""
    canvas = page.locator(".digit-pad-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    if box is None:
        raise RuntimeError("the drawing widget's canvas is not on the page")
    for (x, y), *rest in strokes:
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=4)
        page.mouse.up()


def wait_for_reading(page: Page, text: str, timeout_s: float = 30) -> None:
    """Wait until the drawing widget's message contains ``text``."""
    page.locator(".digit-pad-message", has_text=text).wait_for(timeout=timeout_s * 1000)


def run_all_and_wait_for(page: Page, selector: str, timeout_s: float) -> None:
    """Run All from the menu, as a person does, and wait until ``selector`` is on the page."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
    page.locator(selector).first.wait_for(timeout=timeout_s * 1000)


def shown_alone(page: Page, widget_class: str):
    """The widget of class ``widget_class`` shown alone in a panel of its own ("Create New View
    for Cell Output"): in the notebook its pixels would depend, by fractions of a pixel, on the
    cells above it."""
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 1400})  # room for it below
    page.locator(f".{widget_class}").click(button="right", position={"x": 2, "y": 2})
    page.locator('.lm-Menu-item[data-command="notebook:create-output-view"]').click()
    return page.locator(f".jp-LinkedOutputView .{widget_class}")


# What the threshold explorer shows, read in the page: the threshold the kernel used, the
# measures and counts with their texts, and the scores under the images of the two strips.
EXPLORER_SHOWN_JS = """(root) => {
    const read = (selector) => [...root.querySelectorAll(selector)].map((node) => ({
        name: node.dataset.name, value: node.dataset.value, text: node.textContent,
    }));
    const scores = (name) => [...root.querySelectorAll(
        `.threshold-explorer-${name} .threshold-explorer-score`)].map((node) => node.textContent);
    const threshold = root.querySelector(".threshold-explorer-threshold");
    return {
        threshold: threshold.dataset.value,
        threshold_text: threshold.textContent,
        measures: read(".threshold-explorer-measure"),
        counts: read(".threshold-explorer-count"),
        missed: scores("missed"),
        accepted: scores("accepted"),
        message: root.querySelector(".threshold-explorer-message").textContent,
    };
}"""


def explorer_shown(page: Page, root: str = ".threshold-explorer") -> dict:
    """What the threshold explorer ``root`` shows, as the texts and exact values in the page."""
    return page.locator(root).first.evaluate(EXPLORER_SHOWN_JS)


def wait_for_threshold(page: Page, changed_from: str | None, timeout_s: float = 30) -> None:
    """Wait until the explorer shows an answer for a threshold other than ``changed_from``."""
    page.wait_for_function(
        """(old) => {
            const root = document.querySelector(".threshold-explorer");
            return root && root.dataset.threshold !== undefined && root.dataset.threshold !== old;
        }""",
        arg=changed_from,
        timeout=timeout_s * 1000,
    )


def threshold_explorer(output: Path = EXPLORER, timeout_s: float = 600) -> None:
    """Save a picture of the threshold explorer (stage 2, full data) at the 90%-precision preset."""
    with lab_showing(EXPLORER_NOTEBOOK) as page:
        run_all_and_wait_for(page, ".threshold-explorer-measure", timeout_s)
        widget = shown_alone(page, "threshold-explorer")
        before = widget.get_attribute("data-threshold")
        widget.locator(".threshold-explorer-preset", has_text=EXPLORER_PRESET).click()
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
    with lab_showing(DRAWING_NOTEBOOK) as page:
        run_all_and_wait_for(page, ".digit-pad-canvas", timeout_s)
        wait_for_reading(page, "Draw a digit")
        draw(page, FIVE)
        wait_for_reading(page, "reads a 5")
        widget = shown_alone(page, "digit-pad")
        widget.locator(".digit-pad-message", has_text="reads a 5").wait_for()
        page.evaluate("document.fonts.ready")
        widget.screenshot(path=output)
    print(f"wrote {output}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # No `choices=`: with nargs="*", Python 3.11's argparse rejects an empty list against them.
    parser.add_argument(
        "pictures", nargs="*", help="lab, drawing or threshold (default: all three)"
    )
    pictures = parser.parse_args(argv).pictures or list(PICTURES)
    unknown = set(pictures) - set(PICTURES)
    if unknown:
        parser.error(
            f"unknown picture {', '.join(sorted(unknown))}: choose lab, drawing or threshold"
        )
    if "lab" in pictures:
        screenshot()
    if "drawing" in pictures:
        draw_a_digit()
    if "threshold" in pictures:
        threshold_explorer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
