"""The notebooks as a person runs them: JupyterLab in headless Chromium, Run All, on the fixture.

Run by ``make browser-test``. The notebooks are copied into a temporary tree (``notebooks/`` with
``readme_images/`` beside it), so Run All never writes over a committed figure.
"""

from __future__ import annotations

import json
import sys
import urllib.error
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

from tools.lab import running_lab
from tools.paths import NOTEBOOK_DIR

pytestmark = pytest.mark.browser

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def notebook_problems(notebook: Path) -> list[str]:
    """What a run left wrong in a saved notebook: errors, and code cells that never ran."""
    cells = json.loads(notebook.read_text())["cells"]
    code_cells = [cell for cell in cells if cell["cell_type"] == "code"]
    problems = []
    for number, cell in enumerate(code_cells, start=1):
        errors = [output for output in cell["outputs"] if output["output_type"] == "error"]
        problems += [f"code cell {number}: {e['ename']}: {e['evalue']}" for e in errors]
        if cell["execution_count"] is None and "".join(cell["source"]).strip():
            problems.append(f"code cell {number}: not executed")
    return problems


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_run_all_cells_in_jupyterlab(
    notebook: Path, lab_tree: Path, run_all: Callable[[str], None]
) -> None:
    run_all(f"notebooks/{notebook.name}")
    problems = notebook_problems(lab_tree / "notebooks" / notebook.name)
    assert not problems, f"Run All left in {notebook.name}:\n" + "\n".join(problems)


def test_a_raising_cell_fails_the_run(lab_tree: Path, run_all: Callable[[str], None]) -> None:
    raises = lab_tree / "scratch" / "raises.ipynb"
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": kernelspec})
    notebook.cells = [
        nbformat.v4.new_code_cell("import sys\n\nimport mnist_study\n\nprint(sys.prefix)"),
        nbformat.v4.new_code_cell("1 / 0"),
        nbformat.v4.new_code_cell("print('unreachable')"),
    ]
    nbformat.write(notebook, raises)

    run_all("scratch/raises.ipynb")

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
