"""The browser tests' fixtures: JupyterLab on a scratch copy of the notebooks, a headless Chromium
page, and a ``run_all`` that runs a notebook from the menus as a person does."""

from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest
from papermill.parameterize import parameterize_notebook
from playwright.sync_api import Page

from mnist_study import settings
from tests.browser.driver import chromium_page, run_all_cells
from tools.lab import LabServer, running_lab
from tools.paths import FIXTURE_FILE, NOTEBOOK_DIR


@pytest.fixture(scope="session")
def lab_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of ``notebooks/`` set to read the fixture (papermill's cell after the parameters)."""
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
    env = {settings.CACHE_DIR_ENV: str(lab_tree / "cache")}
    env[settings.DATA_DIR_ENV] = str(lab_tree / "data")
    with running_lab(lab_tree, env=env, log=lab_tree / "jupyterlab.log") as server:
        yield server


@pytest.fixture
def lab(lab_server: LabServer) -> Iterator[LabServer]:
    """The session's server; the sessions a test opened are closed after it, kernels too."""
    yield lab_server
    for session in lab_server.api("GET", "sessions"):
        lab_server.api("DELETE", f"sessions/{session['id']}")


@pytest.fixture(scope="session")
def page() -> Iterator[Page]:
    """One headless Chromium page for the whole session."""
    with chromium_page() as page:
        yield page


@pytest.fixture
def run_all(page: Page, lab: LabServer) -> Callable[[str], None]:
    """Run All on a notebook of the scratch tree (a path relative to it), then save it."""
    return lambda path: run_all_cells(page, lab, path)
