"""Execute one notebook with papermill in a scratch folder, normalise it, place it and its figures.

``python -m tools.execute NOTEBOOK NOTEBOOKS FIGURES SCRATCH SECONDS [CACHE]``: make's rule for a
notebook. A line every SECONDS says a long cell still runs; with CACHE, it runs on the fixture.
"""

import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import nbformat
import papermill
from nbconvert.preprocessors import CoalesceStreamsPreprocessor
from nbstripout import strip_output

from mnist_study.settings import CACHE_DIR_ENV
from tools.paths import FIXTURE_FILE, KERNEL_ENVIRONMENT
from tools.run_notebooks import LINUX, STOP_SIGNALS, end_descendants, on_stop, say

INJECTED_TAG = "injected-parameters"
# What nbstripout's command strips by default, and what papermill and the kernel's version add.
EXTRA_KEYS = "metadata.signature metadata.widgets metadata.papermill metadata.language_info.version"
EXTRA_KEYS += " collapsed ExecuteTime execution heading_collapsed hidden scrolled papermill"
EXTRA_KEYS = [key if key[0] == "m" else f"cell.metadata.{key}" for key in EXTRA_KEYS.split()]


def first_line(text: str) -> str:
    """The first line of ``text`` that is not blank, without a comment's or heading's ``#``."""
    return next((line.strip().lstrip("# ") for line in text.splitlines() if line.strip()), "")


def normalise_notebook(notebook: nbformat.NotebookNode, path: Path) -> None:
    """Write ``notebook`` to ``path`` as a reader's own run gives it: no injected cell or timing."""
    # Hand-written: nbconvert joins streams (the kernel sends them in varying chunks), nbstripout
    # drops papermill's cell and EXTRA_KEYS, and nothing renumbers the cells without that one.
    CoalesceStreamsPreprocessor().preprocess(notebook, {})
    strip_output(notebook, keep_output=True, keep_count=True, keep_id=False,
                 extra_keys=EXTRA_KEYS, drop_tagged_cells=[INJECTED_TAG])  # fmt: skip
    for count, cell in enumerate((c for c in notebook.cells if c.cell_type == "code"), start=1):
        cell.execution_count = count
        for output in cell.outputs:
            if "execution_count" in output:
                output["execution_count"] = count
    nbformat.write(notebook, path)


class Progress:
    """Which cell starts (number, section heading, first line), and that a long one still runs."""

    def __init__(self, notebook: Path, seconds: float) -> None:
        self.labels, heading = {}, ""
        for cell in nbformat.read(notebook, as_version=4).cells:
            titles = [line for line in cell.source.splitlines() if line.startswith("#")]
            if cell.cell_type == "markdown" and titles:
                heading = f"{first_line(titles[-1])} › "
            elif cell.cell_type == "code":
                self.labels[cell.id] = f"{heading}{first_line(cell.source)}"[:100]
        self.name, self.number, self.since = notebook.stem, 0, time.monotonic()
        threading.Thread(target=self.beat, args=(seconds,), daemon=True).start()

    def at(self) -> str:
        return f"{self.name} [{self.number}/{len(self.labels)}]"

    def start(self, cell: nbformat.NotebookNode, **_: object) -> None:
        """papermill's hook as a cell starts (not its own parameters cell)."""
        if cell.get("id") in self.labels:
            self.number, self.since = list(self.labels).index(cell.id) + 1, time.monotonic()
            say(f"{self.at()} {self.labels[cell.id]}")

    def beat(self, seconds: float) -> None:
        """Hand-written (papermill logs cells only as they start): a long cell is alive."""
        while not time.sleep(seconds):
            if self.number and (running := time.monotonic() - self.since) >= seconds:
                say(f"{self.at()} still running, {running:.0f} s")


def place(scratch: Path, name: str, notebooks: Path, figures: Path) -> None:
    """Move the normalised notebook and its figures into place, stop signals held off."""
    moves = [(path, figures / path.name) for path in sorted((scratch / "readme_images").iterdir())]
    moves.append((scratch / "normalised.ipynb", notebooks / name))
    if folders := [str(target) for _, target in moves if target.is_dir()]:
        raise IsADirectoryError(f"{', '.join(folders)} is a folder")
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # delivered never: the process ends
    for source, target in moves:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)


def main(
    notebook: Path, notebooks: str, figures: str, folder: str, seconds: str, *cache: str
) -> int:
    """Run, normalise and place ``notebook``; the exit status (128 + a stop signal's number)."""
    scratch, name, started = Path(folder).resolve(), notebook.name, time.monotonic()
    shutil.rmtree(scratch, ignore_errors=True)  # an earlier failure's
    (scratch / "readme_images").mkdir(parents=True)
    os.environ.update(KERNEL_ENVIRONMENT, JUPYTER_RUNTIME_DIR=str(scratch))  # connection files
    if cache:  # the fixture's results kept apart
        os.environ[CACHE_DIR_ENV] = cache[0]
    LINUX(36, 1)  # PR_SET_CHILD_SUBREAPER: what the kernel's processes leave becomes this one's

    def stop(signum: int, _frame: object) -> None:
        for each in STOP_SIGNALS:
            signal.signal(each, signal.SIG_IGN)
        end_descendants()
        shutil.rmtree(scratch, ignore_errors=True)
        say(f"{notebook.stem}: stopped; nothing of it was placed.")
        os._exit(128 + signum)

    on_stop(stop)
    parameters = {"sample": None, "fixture": str(FIXTURE_FILE) if cache else None}
    try:
        progress = Progress(notebook, float(seconds))  # raises as papermill would on no notebook
        executed = papermill.execute_notebook(
            notebook, scratch / name, {**parameters, "figure_dir": str(scratch / "readme_images")},
            kernel_name="python3", progress_bar=False, cwd=notebook.parent,
            on_cell_execute=progress.start, extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )  # fmt: skip
        normalise_notebook(executed, scratch / "normalised.ipynb")
        place(scratch, name, Path(notebooks), Path(figures))
    except papermill.PapermillExecutionError as error:
        cell = f"cell [{progress.number}] (`{first_line(error.source)[:60]}`)"
        say(f"error: {name} failed in {cell}: {error.ename}: {error.evalue}\nNothing of it was "
            f"placed; what ran is kept in {scratch / name}. Fix the cell, re-run.")  # fmt: skip
        return 1
    except Exception as error:  # the kernel died or never answered, the file is no notebook …
        say(f"error: {name} failed outside its cells: {type(error).__name__}: {error}\nNothing "
            "of it was placed. This is not a cell's failure: see the message above.")  # fmt: skip
        return 1
    finally:
        end_descendants()  # whatever the kernel started and left
    shutil.rmtree(scratch, ignore_errors=True)
    say(f"{notebook.stem} done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), *sys.argv[2:]))
