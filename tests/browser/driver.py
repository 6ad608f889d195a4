"""JupyterLab driven in Debian's headless Chromium through playwright, as a person uses it: open a
notebook, choose from the menus, run it all, draw with the mouse, read the widgets. The browser
tests use it, and so does ``make screenshot`` (``tools/screenshot.py``)."""

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from tools.lab import LabServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
CHROMIUM_FLAGS += " --disable-sync --disable-background-networking --disable-component-update"
VIEWPORT = {"width": 1400, "height": 900}

# The code cells' prompts and the kernel status of the notebook on show, read in the page.
RUN_STATE_JS = """() => {
    const panel = document.querySelector(".jp-NotebookPanel:not(.lm-mod-hidden)");
    if (!panel) return null;
    const prompts = [...panel.querySelectorAll(".jp-CodeCell .jp-InputArea-prompt")];
    const indicator = panel.querySelector(".jp-Notebook-ExecutionIndicator");
    return {
        prompts: prompts.map((prompt) => prompt.textContent.trim()),
        status: indicator ? indicator.dataset.status : null,
    };
}"""

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


@contextmanager
def chromium_page(viewport: dict[str, int] = VIEWPORT, flags: Sequence[str] = ()) -> Iterator[Page]:
    """A page of Debian's headless Chromium (with ``flags`` added), closed after use."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: install Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_FLAGS.split(), *flags]
        )
        try:
            yield browser.new_page(viewport=viewport)
        finally:
            browser.close()


def open_notebook(page: Page, server: LabServer, path: str, timeout_s: float = 60) -> None:
    """Open ``path`` alone in JupyterLab and wait until its kernel is connected and idle."""
    page.goto(server.url(path, reset=True))
    kernel_status = page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$"))
    kernel_status.wait_for(timeout=timeout_s * 1000)


def click_menu(page: Page, menu: str, command: str) -> None:
    """Choose a menu entry the way a person does: the menu bar title, then the item."""
    page.locator(".lm-MenuBar-itemLabel", has_text=menu).first.click()
    page.locator(f'.lm-Menu-item[data-command="{command}"]').click()


def wait_for_run(page: Page, timeout_s: float) -> None:
    """Wait until a Run All has finished: no cell queued or running, the kernel idle, twice."""
    deadline, settled = time.monotonic() + timeout_s, 0
    while settled < 2:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the notebook was still running after {timeout_s:.0f} s")
        state = page.evaluate(RUN_STATE_JS)
        started = state and any(prompt != "[ ]:" for prompt in state["prompts"])
        done = started and "[*]:" not in state["prompts"] and state["status"] == "idle"
        settled = settled + 1 if done else 0
        page.wait_for_timeout(500)


def run_all_cells(page: Page, server: LabServer, path: str, timeout_s: float = 600) -> None:
    """Open the notebook ``path``, clear its outputs, run all cells from the menu, and save it."""
    open_notebook(page, server, path)
    click_menu(page, "Edit", "editmenu:clear-all")
    click_menu(page, "Run", "runmenu:run-all")
    wait_for_run(page, timeout_s)
    click_menu(page, "File", "docmanager:save")
    page.locator(".lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)").wait_for()


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


def explorer_shown(page: Page, root: str = ".threshold-explorer") -> dict:
    """What the threshold explorer ``root`` shows, as the texts and exact values in the page."""
    return page.locator(root).first.evaluate(EXPLORER_SHOWN_JS)


def wait_for_threshold(page: Page, changed_from: str | None, timeout_s: float = 30) -> None:
    """Wait until the threshold explorer answers for a threshold other than ``changed_from``."""
    page.wait_for_function(
        """(old) => {
            const root = document.querySelector(".threshold-explorer");
            return root && root.dataset.threshold !== undefined && root.dataset.threshold !== old;
        }""",
        arg=changed_from,
        timeout=timeout_s * 1000,
    )
