"""The browser-test harness: JupyterLab on a scratch copy of the notebooks, a headless Chromium
page, and a ``run_all`` that runs a notebook from the menus as a person does."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest
from papermill.parameterize import parameterize_notebook
from playwright.sync_api import Page

from mnist_study import settings
from tools.lab import LabServer, running_lab
from tools.paths import FIXTURE_FILE, NOTEBOOK_DIR
from tools.screenshot import chromium_page, open_notebook

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


def click_menu(page: Page, menu: str, command: str) -> None:
    """Choose a menu entry the way a person does: the menu bar title, then the item."""
    page.locator(".lm-MenuBar-itemLabel", has_text=menu).first.click()
    page.locator(f'.lm-Menu-item[data-command="{command}"]').click()


def wait_for_run(page: Page, timeout_s: float) -> None:
    """Wait until a Run All has finished: no cell queued or running, the kernel idle, twice."""
    deadline = time.monotonic() + timeout_s
    settled = 0
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


@pytest.fixture(scope="session")
def lab_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of ``notebooks/`` set to read the fixture, with an empty ``readme_images/`` beside it.

    papermill adds to each copy the cell a run on the fixture starts with (after its parameters).
    """
    tree = tmp_path_factory.mktemp("lab")
    (tree / "notebooks").mkdir()
    for path in sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        notebook.metadata["papermill"] = nbformat.from_dict({})  # where papermill records its run
        notebook = parameterize_notebook(notebook, {"fixture": str(FIXTURE_FILE)})
        nbformat.write(notebook, tree / "notebooks" / path.name)
    (tree / "readme_images").mkdir()
    (tree / "scratch").mkdir()
    return tree


@pytest.fixture(scope="session")
def lab_server(lab_tree: Path) -> Iterator[LabServer]:
    """JupyterLab on the scratch tree; its kernels cache their results into the tree."""
    env = {
        settings.CACHE_DIR_ENV: str(lab_tree / "cache"),
        settings.DATA_DIR_ENV: str(lab_tree / "data"),
    }
    with running_lab(lab_tree, env=env, log=lab_tree / "jupyterlab.log") as server:
        yield server


@pytest.fixture
def lab(lab_server: LabServer) -> Iterator[LabServer]:
    """The session's server, with the kernels a test started shut down after it."""
    yield lab_server
    lab_server.shutdown_kernels()


@pytest.fixture(scope="session")
def page() -> Iterator[Page]:
    """One headless Chromium page for the whole session."""
    with chromium_page() as page:
        yield page


@pytest.fixture
def run_all(page: Page, lab: LabServer) -> Callable[[str], None]:
    """Run All on a notebook of the scratch tree (a path relative to it), then save it."""
    return lambda path: run_all_cells(page, lab, path)
