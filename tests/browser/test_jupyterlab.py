"""The notebooks as a person runs them: JupyterLab in headless Chromium, Run All, on the fixture.

Run by ``make browser-test``. The notebooks are copied into a temporary tree (``notebooks/`` with
``readme_images/`` beside it), so Run All never writes over a committed figure.
"""

from __future__ import annotations

import shutil
import sys
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from conftest import FIXTURE_PATH, ROOT
from playwright.sync_api import Page

from mnist_study.lab import (
    LabServer,
    chromium_page,
    notebook_problems,
    run_all_cells,
    running_lab,
)

pytestmark = pytest.mark.browser

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="session")
def lab_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch copy of ``notebooks/`` with an empty ``readme_images/`` beside it."""
    tree = tmp_path_factory.mktemp("lab")
    shutil.copytree(
        ROOT / "notebooks",
        tree / "notebooks",
        ignore=shutil.ignore_patterns(".ipynb_checkpoints"),
    )
    (tree / "readme_images").mkdir()
    (tree / "scratch").mkdir()
    return tree


@pytest.fixture(scope="session")
def lab_server(lab_tree: Path) -> Iterator[LabServer]:
    """JupyterLab on the scratch tree; its kernels read the fixture and cache into the tree."""
    env = {
        "MNIST_STUDY_FIXTURE": str(FIXTURE_PATH),
        "MNIST_STUDY_CACHE_DIR": str(lab_tree / "cache"),
        "MNIST_STUDY_DATA_DIR": str(lab_tree / "data"),
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


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_run_all_cells_in_jupyterlab(
    notebook: Path, lab: LabServer, lab_tree: Path, page: Page
) -> None:
    run_all_cells(page, lab, f"notebooks/{notebook.name}")
    problems = notebook_problems(lab_tree / "notebooks" / notebook.name)
    assert not problems, f"Run All left in {notebook.name}:\n" + "\n".join(problems)


def test_a_raising_cell_fails_the_run(lab: LabServer, lab_tree: Path, page: Page) -> None:
    raises = lab_tree / "scratch" / "raises.ipynb"
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": kernelspec})
    notebook.cells = [
        nbformat.v4.new_code_cell("import sys\n\nimport mnist_study\n\nprint(sys.prefix)"),
        nbformat.v4.new_code_cell("1 / 0"),
        nbformat.v4.new_code_cell("print('unreachable')"),
    ]
    nbformat.write(notebook, raises)

    run_all_cells(page, lab, "scratch/raises.ipynb")

    assert notebook_problems(raises) == [
        "code cell 2: ZeroDivisionError: division by zero",
        "code cell 3: not executed",
    ]
    first_output = nbformat.read(raises, as_version=4).cells[0].outputs[0].text
    assert first_output.strip() == sys.prefix, "the kernel is not this environment's Python"


def test_the_screenshot_server_writes_nothing_next_to_the_notebooks(tmp_path: Path) -> None:
    notebook = tmp_path / "committed.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), notebook)
    committed = notebook.read_bytes()

    with running_lab(tmp_path, read_only=True) as server:
        server.api("POST", f"contents/{notebook.name}/checkpoints")
        model = server.api("GET", f"contents/{notebook.name}")
        with pytest.raises(urllib.error.HTTPError) as refused:
            server.api("PUT", f"contents/{notebook.name}", model)

    assert refused.value.code == 403
    assert notebook.read_bytes() == committed
    assert sorted(path.name for path in tmp_path.iterdir()) == [notebook.name]
