"""Execute notebooks with nbclient, a few at a time in threads of the runner, and end their kernels.

jupyter_client starts each kernel in a process group of its own. When a notebook ends, however it
ends, or the run stops, its kernel's whole group is ended: SIGTERM first, so that joblib's resource
tracker (which ignores it) removes what the kernel's workers left in /dev/shm, then SIGKILL for
what is left after a few seconds; then whatever is still in /dev/shm under the kernel's PID is
removed (hand-written: loky and joblib clean up only after their own process, and name their
files after its PID). A kernel outlives the runner only if the runner itself is SIGKILLed: then
ipykernel notices its parent is gone and exits.
"""

from __future__ import annotations

import os
import queue
import shutil
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from pathlib import Path
from signal import SIGKILL, SIGTERM
from typing import Any

import nbformat
import psutil
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook
from tqdm import tqdm

from tools.normalise import INJECTED_TAG, normalise_notebook

__all__ = ["NotebookFailedError", "end_groups", "progress", "run_notebooks"]

STOP_SECONDS = 5  # how long a kernel's processes may take to exit after SIGTERM
SHARED_MEMORY = Path("/dev/shm")
# No estimate of the time left: a notebook's cells differ in length by orders of magnitude.
BAR_FORMAT = "{desc}: {n_fmt}/{total_fmt} cells done, {elapsed}{postfix}"


class NotebookFailedError(RuntimeError):
    """A notebook failed; the message names it, and the cell if the failure is a cell's."""

    def __init__(self, message: str, in_cell: bool) -> None:
        super().__init__(message)
        self.in_cell = in_cell


class Abandoned(Exception):
    """The run is stopping: a notebook's thread gives up before its next cell."""


def progress(message: str) -> None:
    """Progress lines go to stderr, above the progress bars; a closed terminal is no error."""
    with suppress(OSError):
        tqdm.write(message, file=sys.stderr)


class GroupedKernelManager(AsyncKernelManager):
    """A kernel manager that remembers its kernel's process group, also after the kernel ended."""

    group: int | None = None

    async def start_kernel(self, **kw: Any) -> None:
        await super().start_kernel(**kw)
        self.group = self.provisioner.pgid if self.provisioner else None


def living(groups: set[int]) -> list[psutil.Process]:
    """The processes of ``groups`` that have not ended (a zombie has)."""
    found = []
    for process in psutil.process_iter(["status"]):
        with suppress(OSError, psutil.Error):
            if os.getpgid(process.pid) in groups and process.info["status"] != "zombie":
                found.append(process)
    return found


def end_groups(groups: set[int]) -> None:
    """End every process of the process ``groups`` and what their leaders left in /dev/shm."""
    groups = {group for group in groups if group > 1}  # 0 and 1 are never a kernel's
    for signum in (SIGTERM, SIGKILL):
        for group in groups:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signum)
        deadline = time.monotonic() + STOP_SECONDS
        while living(groups) and time.monotonic() < deadline:
            time.sleep(0.1)
    for group in groups:
        for left in (
            *SHARED_MEMORY.glob(f"sem.loky-{group}-*"),
            *SHARED_MEMORY.glob(f"joblib_memmapping_folder_{group}_*"),
        ):
            shutil.rmtree(left, ignore_errors=True) if left.is_dir() else left.unlink(True)


def first_line(text: str) -> str:
    """The first line of ``text`` that is not blank, without a comment's or heading's ``#``."""
    return next((line.strip().lstrip("# ") for line in text.splitlines() if line.strip()), "")


class NotebookRun:
    """One notebook's execution in a thread: its kernel, its progress bar, the cell it runs."""

    def __init__(self, notebook: Path, stage: Path, stopping: threading.Event) -> None:
        self.notebook, self.stopping = notebook, stopping
        self.output = stage / "notebooks" / notebook.name
        self.log = stage / f"{notebook.stem}.kernel.log"
        self.client: NotebookClient | None = None
        self.bar: tqdm | None = None
        self.cell: nbformat.NotebookNode | None = None  # the cell running, once one is
        self.since = time.monotonic()
        self.numbers: dict[int, int] = {}  # each code cell's number in a reader's run
        self.headings: dict[int, str] = {}  # and the heading of its section

    @property
    def group(self) -> int | None:
        """The kernel's process group, once it has started."""
        return getattr(self.client and self.client.km, "group", None)

    def start_cell(self, cell: nbformat.NotebookNode, **_: Any) -> None:
        """nbclient's hook: a cell starts; say which (and stop here if the run is stopping)."""
        if self.stopping.is_set():
            raise Abandoned
        if id(cell) in self.numbers:
            self.cell, self.since = cell, time.monotonic()

    def end_cell(self, cell: nbformat.NotebookNode, **_: Any) -> None:
        """nbclient's hook: a cell has run."""
        if self.bar is not None and id(cell) in self.numbers:
            self.bar.update(1)

    def tick(self) -> None:
        """Show on the bar what runs and for how long, so a long cell is seen to be alive."""
        if self.bar is not None:
            cell, seconds = self.cell, time.monotonic() - self.since
            doing = "starting its kernel"
            if cell is not None:
                doing = f"in cell {self.numbers[id(cell)]} for {seconds:.0f} s: "
                doing += self.headings[id(cell)] + first_line(cell.source)
            self.bar.set_postfix_str(doing, refresh=False)
            self.bar.update(0)

    def execute(
        self, parameters: dict[str, Any], environment: Mapping[str, str], slots: queue.SimpleQueue
    ) -> float:
        """Execute the notebook and write it normalised; its seconds, or NotebookFailedError."""
        started, slot = time.perf_counter(), slots.get()
        try:
            notebook = parameterize_notebook(load_notebook_node(str(self.notebook)), parameters)
            self.number_cells(notebook)
            self.bar = tqdm(
                total=len(self.numbers), desc=self.notebook.stem, position=slot, leave=False,
                bar_format=BAR_FORMAT, file=sys.stderr, miniters=0, dynamic_ncols=True,
                disable=not sys.stderr.isatty(),  # a log gets the lines "done" only
            )  # fmt: skip
            self.client = NotebookClient(
                notebook, kernel_name="python3", kernel_manager_class=GroupedKernelManager,
                resources={"metadata": {"path": str(self.notebook.parent)}}, record_timing=False,
                on_cell_execute=self.start_cell, on_cell_executed=self.end_cell,
            )  # fmt: skip
            with open(self.log, "ab") as log:
                self.client.execute(env={**os.environ, **environment}, stdout=log, stderr=log)
            normalise_notebook(notebook, self.output)
        except CellExecutionError as error:
            with suppress(Exception):
                nbformat.write(notebook, self.output)  # kept in the staging folder for a look
            cell = self.cell or notebook.cells[0]  # set: a cell raised
            raise NotebookFailedError(
                f"{self.notebook.name} failed in cell [{self.numbers.get(id(cell), 0)}] "
                f"(`{first_line(cell.source)[:60]}`): "
                f"{error.ename}: {error.evalue}",
                in_cell=True,
            ) from None
        except Exception as error:  # the kernel died or never answered, the file is no notebook …
            raise NotebookFailedError(
                f"{self.notebook.name} failed outside its cells: {type(error).__name__}: {error} "
                f"(the kernel's own messages are in {self.log})",
                in_cell=False,
            ) from None
        finally:
            if self.group is not None:
                end_groups({self.group})
            if self.bar is not None:
                self.bar.close()
            slots.put(slot)
        return time.perf_counter() - started

    def number_cells(self, notebook: nbformat.NotebookNode) -> None:
        """Number the code cells as a reader's run does, and note each one's section heading."""
        heading = ""
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                titles = [line for line in cell.source.splitlines() if line.startswith("#")]
                heading = f"{first_line(titles[-1])} › " if titles else heading
            elif INJECTED_TAG not in cell.metadata.get("tags", []):
                self.numbers[id(cell)] = len(self.numbers) + 1
                self.headings[id(cell)] = heading


def run_notebooks(
    notebooks: Sequence[Path],
    stage: Path,
    parameters: dict[str, Any],
    jobs: int,
    environment: Mapping[str, str],
) -> dict[str, float]:
    """Execute and normalise ``notebooks`` into ``stage/notebooks``; each one's seconds, by name.

    Up to ``jobs`` run at a time, started in the given order, their kernels with ``environment``
    added to this process's. The first failure, or an exception in this thread (a signal's),
    stops the others and ends their kernels; a failure is raised as :class:`NotebookFailedError`.
    """
    (stage / "notebooks").mkdir(parents=True, exist_ok=True)
    stopping, slots = threading.Event(), queue.SimpleQueue()
    for slot in range(jobs):
        slots.put(slot)
    runs = [NotebookRun(notebook, stage, stopping) for notebook in notebooks]
    pool = ThreadPoolExecutor(max_workers=max(1, min(jobs, len(runs))))
    futures: dict[Future[float], NotebookRun] = {
        pool.submit(run.execute, parameters, environment, slots): run for run in runs
    }
    seconds: dict[str, float] = {}
    try:
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=1, return_when=FIRST_COMPLETED)
            for future in finished:
                run = futures[future]
                seconds[run.notebook.stem] = future.result()
                progress(
                    f"[{len(seconds)}/{len(runs)}] {run.notebook.name} done "
                    f"in {seconds[run.notebook.stem]:.0f} s"
                )
            for run in runs:
                run.tick()
    except BaseException:
        stopping.set()
        pool.shutdown(wait=False, cancel_futures=True)
        end_groups({run.group for run in runs if run.group is not None})
        wait(futures, timeout=STOP_SECONDS)  # their threads end once their kernels have
        raise
    pool.shutdown()
    return seconds
