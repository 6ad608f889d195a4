"""Execute one notebook with papermill, normalise it, then place it and its figures together.

make's rule for each notebook runs ``python -m tools.execute NOTEBOOK --into NOTEBOOKS FIGURES
--scratch DIR``. The notebook runs in ``DIR`` (its figures in ``DIR/readme_images``); only once it
has succeeded do it and its figures replace those in place, stop signals held off meanwhile. A
line says each cell as it starts, and every ``--progress`` seconds that a long one still runs.
"""

from __future__ import annotations

import argparse
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
from tools.run_notebooks import STOP_SIGNALS, adopt_orphans, end_descendants, say, watch_parent

INJECTED_TAG = "injected-parameters"
# What nbstripout's command strips by default, and what papermill and the kernel's version add.
EXTRA_KEYS = [
    *("metadata.signature", "metadata.widgets", "cell.metadata.collapsed"),
    *("cell.metadata.ExecuteTime", "cell.metadata.execution", "cell.metadata.heading_collapsed"),
    *("cell.metadata.hidden", "cell.metadata.scrolled", "metadata.papermill"),
    *("cell.metadata.papermill", "metadata.language_info.version"),
]


def first_line(text: str) -> str:
    """The first line of ``text`` that is not blank, without a comment's or heading's ``#``."""
    return next((line.strip().lstrip("# ") for line in text.splitlines() if line.strip()), "")


def injected(cell: nbformat.NotebookNode) -> bool:
    return INJECTED_TAG in cell.metadata.get("tags", [])


def normalise_notebook(notebook: nbformat.NotebookNode, path: Path) -> None:
    """Write ``notebook`` to ``path`` as a reader's own run gives it: no injected cell, no timings.

    Streams are joined as nbconvert does (the kernel sends them in varying chunks), execution
    counts renumbered without the injected parameters cell, then nbstripout drops it and EXTRA_KEYS.
    """
    CoalesceStreamsPreprocessor().preprocess(notebook, {})
    code = [c for c in notebook.cells if c.cell_type == "code" and not injected(c)]
    for count, cell in enumerate(code, start=1):
        cell.execution_count = count
        for output in cell.outputs:
            if "execution_count" in output:
                output["execution_count"] = count
    strip_output(notebook, keep_output=True, keep_count=True, keep_id=False,
                 extra_keys=EXTRA_KEYS, drop_tagged_cells=[INJECTED_TAG])  # fmt: skip
    nbformat.write(notebook, path)


class Progress:
    """nbclient's hook when a cell starts: a line naming it; and a line while it runs long."""

    def __init__(self, notebook: Path, every: float) -> None:
        self.name, self.every, self.labels, heading = notebook.stem, every, [], ""
        for cell in nbformat.read(notebook, as_version=4).cells:
            titles = [line for line in cell.source.splitlines() if line.startswith("#")]
            if cell.cell_type == "markdown" and titles:
                heading = f"{first_line(titles[-1])} › "
            elif cell.cell_type == "code":
                self.labels.append((cell.source, f"{heading}{first_line(cell.source)}"))
        self.number, self.since = 0, time.monotonic()
        threading.Thread(target=self.beat, daemon=True).start()

    def start(self, cell: nbformat.NotebookNode, **_: object) -> None:
        while not injected(cell) and self.number < len(self.labels):  # empty cells are skipped
            self.number += 1
            source, label = self.labels[self.number - 1]
            if source == cell.source:
                self.since = time.monotonic()
                return say(f"{self.name} [{self.number}/{len(self.labels)}] {label}")

    def beat(self) -> None:
        while True:
            time.sleep(self.every)
            if self.number and time.monotonic() - self.since >= self.every:
                running = time.monotonic() - self.since
                say(
                    f"{self.name} [{self.number}/{len(self.labels)}] still running, {running:.0f} s"
                )


def place(scratch: Path, name: str, notebooks: Path, figures: Path) -> None:
    """Move the normalised notebook and its figures into place, stop signals held off."""
    moves = [(path, figures / path.name) for path in sorted((scratch / "readme_images").iterdir())]
    moves.append((scratch / "normalised.ipynb", notebooks / name))
    for _, target in moves:
        if target.exists() and not target.is_file():
            raise IsADirectoryError(f"{target} is a folder")
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # delivered never: the process ends
    for source, target in moves:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (128 + a stop signal's number)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--into", type=Path, nargs=2, required=True, help="notebooks, figures")
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--smoke", action="store_true", help="run on the test fixture")
    parser.add_argument("--cache", help="the results cache (the fixture's stay out of .cache/)")
    parser.add_argument("--progress", type=float, default=30, help="seconds between lines")
    args = parser.parse_args(argv)
    notebook, scratch, name = args.notebook, args.scratch.resolve(), args.notebook.name
    shutil.rmtree(scratch, ignore_errors=True)  # an earlier failure's
    (scratch / "readme_images").mkdir(parents=True)
    os.environ.update(KERNEL_ENVIRONMENT, JUPYTER_RUNTIME_DIR=str(scratch))  # connection files
    if args.cache:
        os.environ[CACHE_DIR_ENV] = args.cache
    adopt_orphans()

    def stop(signum: int, _frame: object) -> None:
        for each in STOP_SIGNALS:
            signal.signal(each, signal.SIG_IGN)
        end_descendants()
        shutil.rmtree(scratch, ignore_errors=True)
        say(f"{notebook.stem}: stopped; nothing of it was placed.")
        os._exit(128 + signum)

    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) != signal.SIG_IGN:  # nohup's stays ignored
            signal.signal(signum, stop)
    watch_parent()
    started = time.monotonic()
    parameters = {"sample": None, "fixture": str(FIXTURE_FILE) if args.smoke else None}
    try:
        progress = Progress(notebook, args.progress)  # raises as papermill would on no notebook
        executed = papermill.execute_notebook(
            notebook, scratch / name, {**parameters, "figure_dir": str(scratch / "readme_images")},
            kernel_name="python3", progress_bar=False, cwd=notebook.parent,
            on_cell_execute=progress.start, extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )  # fmt: skip
        normalise_notebook(executed, scratch / "normalised.ipynb")
        place(scratch, name, *args.into)
    except papermill.PapermillExecutionError as error:
        say(
            f"error: {name} failed in cell [{progress.number}] (`{first_line(error.source)[:60]}`)"
            f": {error.ename}: {error.evalue}"
        )
        say(
            f"Nothing of it was placed; what ran is kept in {scratch / name}. Fix the cell, re-run."
        )
        return 1
    except Exception as error:  # the kernel died or never answered, the file is no notebook …
        say(f"error: {name} failed outside its cells: {type(error).__name__}: {error}")
        say("Nothing of it was placed. This is not a cell's failure: see the message above.")
        return 1
    finally:
        end_descendants()  # whatever the kernel started and left
    shutil.rmtree(scratch, ignore_errors=True)
    say(f"{notebook.stem} done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
