"""The notebooks as a person runs them (``make browser-test``): Run All in JupyterLab in headless
Chromium, on a copy of the notebooks and the fixture; ``make lab``'s server on a copy of 01."""

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Page

from tests.browser.driver import click_menu, open_notebook
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
    sources = ["import sys\nimport mnist_study\nprint(sys.prefix)", "1 / 0", "print('unreachable')"]
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(notebook, raises)
    run_all("scratch/raises.ipynb")
    problems = ["code cell 2: ZeroDivisionError: division by zero", "code cell 3: not executed"]
    assert notebook_problems(raises) == problems
    first_output = nbformat.read(raises, as_version=4).cells[0].outputs[0].text
    assert first_output.strip() == sys.prefix, "the kernel is not this environment's Python"


def test_make_lab_never_writes_over_a_committed_notebook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page: Page
) -> None:
    """A reader runs a cell, autosave's interval passes, they press Save: the file stays as is."""
    committed = NOTEBOOK_DIR / "01_is_it_a_5.ipynb"
    notebook = tmp_path / "notebooks" / committed.name
    notebook.parent.mkdir()
    shutil.copyfile(committed, notebook)
    # the reader's own JupyterLab settings: autosave every 2 seconds (JupyterLab's default is 120)
    docmanager = tmp_path / "settings" / "@jupyterlab" / "docmanager-extension"
    docmanager.mkdir(parents=True)
    (docmanager / "plugin.jupyterlab-settings").write_text('{"autosaveInterval": 2}')
    monkeypatch.setenv("JUPYTERLAB_SETTINGS_DIR", str(tmp_path / "settings"))
    monkeypatch.setenv("JUPYTERLAB_WORKSPACES_DIR", str(tmp_path / "workspaces"))
    reader = page.context.browser.new_page()  # closed without asking about the unsaved notebook
    lab = running_lab(tmp_path, log=tmp_path / "log", people=True, save_hook="keep_the_study")
    with lab as server:
        open_notebook(reader, server, f"notebooks/{notebook.name}")
        reader.locator(".jp-CodeCell .jp-InputArea-editor").first.click()
        reader.keyboard.press("Shift+Enter")
        reader.locator(".jp-CodeCell .jp-InputArea-prompt", has_text="[1]:").wait_for()
        reader.wait_for_timeout(6_000)  # three autosave intervals
        assert notebook.read_bytes() == committed.read_bytes()
        assert reader.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty").count() == 1, "saved"
        click_menu(reader, "File", "docmanager:save")
        refusal = reader.locator(".jp-Dialog", has_text="Save Notebook As")
        refusal.wait_for()
        assert notebook.name in refusal.inner_text()
        assert notebook.read_bytes() == committed.read_bytes()
        reader.close()
