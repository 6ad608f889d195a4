"""Execute notebooks with nbclient, a few at a time in threads; their progress; end their kernels.

Each kernel has a process group of its own (jupyter_client's) and a guard in it that SIGKILLs the
group once the kernel's stdin, a pipe from the runner, closes: if the runner dies, even by
SIGKILL. When a notebook ends, however, or the run stops, the runner ends the group itself:
SIGTERM first, so that joblib's resource tracker (which ignores it) removes what the workers left
in /dev/shm, then SIGKILL, then what is still in /dev/shm under the kernel's PID (hand-written:
loky and joblib name their files after it, and clean up only after themselves).
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import suppress
from pathlib import Path
from signal import SIGKILL, SIGTERM
from typing import Any

import nbformat
import psutil
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert.preprocessors import CoalesceStreamsPreprocessor
from nbstripout import strip_output
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook
from tqdm import tqdm

__all__ = ["NotebookFailedError", "end_groups", "normalise_notebook", "progress", "run_notebooks"]

STOP_SECONDS = 5  # how long a kernel's processes may take to exit after SIGTERM
# The guard, hand-written in one line of sh: Linux's parent-death signal needs ctypes, and would
# end the kernel alone, not its children. The kernel itself gets /dev/null as its stdin.
GUARD = 'exec 3<&0; { cat <&3 >/dev/null; kill -KILL 0; } & exec "$@" </dev/null 3<&-'
INJECTED_TAG = "injected-parameters"
# What nbstripout's command strips by default, and what papermill and the kernel's version add.
EXTRA_KEYS = [
    *("metadata.signature", "metadata.widgets", "cell.metadata.collapsed"),
    *("cell.metadata.ExecuteTime", "cell.metadata.execution", "cell.metadata.heading_collapsed"),
    *("cell.metadata.hidden", "cell.metadata.scrolled", "metadata.papermill"),
    *("cell.metadata.papermill", "metadata.language_info.version"),
]
# No estimate of the time left: a notebook's cells differ in length by orders of magnitude.
BAR_FORMAT = "{desc}: {n_fmt}/{total_fmt} cells done, {elapsed}{postfix}"


class NotebookFailedError(RuntimeError):
    """A notebook failed; the message names it, and the cell if the failure is a cell's."""

    def __init__(self, message: str, in_cell: bool) -> None:
        super().__init__(message)
        self.in_cell = in_cell


def progress(message: str) -> None:
    """Progress lines go to stderr, above the progress bars; a closed terminal is no error."""
    with suppress(OSError):
        tqdm.write(message, file=sys.stderr)


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


def injected(cell: nbformat.NotebookNode) -> bool:
    return INJECTED_TAG in cell.metadata.get("tags", [])


class GuardedKernelManager(AsyncKernelManager):
    """A kernel started under the guard, whose process group is remembered after it ended."""

    group: int | None = None

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        return ["sh", "-c", GUARD, "sh", *super().format_kernel_cmd(extra_arguments)]

    async def start_kernel(self, **kw: Any) -> None:
        await super().start_kernel(**kw)
        self.group = self.provisioner.pgid if self.provisioner else None


def end_groups(groups: set[int]) -> None:
    """End every process of the process ``groups`` and what their leaders left in /dev/shm."""
    groups = {group for group in groups if group > 1}  # 0 and 1 are never a kernel's

    def living() -> bool:  # a zombie has ended
        for process in psutil.process_iter(["status"]):
            with suppress(OSError, psutil.Error):
                if os.getpgid(process.pid) in groups and process.info["status"] != "zombie":
                    return True
        return False

    for signum in (SIGTERM, SIGKILL):
        for group in groups:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signum)
        deadline = time.monotonic() + STOP_SECONDS
        while living() and time.monotonic() < deadline:
            time.sleep(0.1)
    for group in groups:
        for left in (
            *Path("/dev/shm").glob(f"sem.loky-{group}-*"),
            *Path("/dev/shm").glob(f"joblib_memmapping_folder_{group}_*"),
        ):
            shutil.rmtree(left, ignore_errors=True) if left.is_dir() else left.unlink(True)


def first_line(text: str) -> str:
    """The first line of ``text`` that is not blank, without a comment's or heading's ``#``."""
    return next((line.strip().lstrip("# ") for line in text.splitlines() if line.strip()), "")


class NotebookRun:
    """One notebook's execution in a thread: its kernel, its progress bar, the cell it runs."""

    def __init__(self, notebook: Path, stage: Path, stopping: threading.Event) -> None:
        self.notebook, self.stage, self.stopping = notebook, stage, stopping
        self.client: NotebookClient | None = None
        self.bar: tqdm | None = None
        self.cell: nbformat.NotebookNode | None = None  # the cell running, once one is
        self.since = time.monotonic()
        self.labels: dict[int, tuple[int, str]] = {}  # a code cell's number and section heading

    @property
    def group(self) -> int | None:
        """The kernel's process group, once it has started."""
        return getattr(self.client and self.client.km, "group", None)

    def start_cell(self, cell: nbformat.NotebookNode, **_: Any) -> None:
        """nbclient's hook: a cell starts (none does once the run is stopping)."""
        if self.stopping.is_set():
            raise RuntimeError("the run is stopping")
        if id(cell) in self.labels:
            self.cell, self.since = cell, time.monotonic()

    def end_cell(self, cell: nbformat.NotebookNode, **_: Any) -> None:
        """nbclient's hook: a cell has run."""
        if self.bar is not None and id(cell) in self.labels:
            self.bar.update(1)

    def tick(self) -> None:
        """Show on the bar what runs and for how long, so a long cell is seen to be alive."""
        if self.bar is not None:
            doing = "starting its kernel"
            if self.cell is not None:
                number, heading = self.labels[id(self.cell)]
                doing = f"in cell {number} for {time.monotonic() - self.since:.0f} s: "
                doing += heading + first_line(self.cell.source)
            self.bar.set_postfix_str(doing, refresh=False)
            self.bar.update(0)

    def execute(self, parameters: dict[str, Any], environment: Mapping[str, str]) -> float:
        """Execute the notebook and write it normalised; its seconds, or NotebookFailedError."""
        started = time.perf_counter()
        log = self.stage / f"{self.notebook.stem}.kernel.log"
        output = self.stage / "notebooks" / self.notebook.name
        guard, lifeline = os.pipe()  # the guard's end, and the runner's
        try:
            notebook = parameterize_notebook(load_notebook_node(str(self.notebook)), parameters)
            heading = ""
            for cell in notebook.cells:  # numbered as in a reader's run, with their headings
                if cell.cell_type == "markdown":
                    titles = [line for line in cell.source.splitlines() if line.startswith("#")]
                    heading = f"{first_line(titles[-1])} › " if titles else heading
                elif not injected(cell):
                    self.labels[id(cell)] = (len(self.labels) + 1, heading)
            self.bar = tqdm(
                total=len(self.labels), desc=self.notebook.stem, leave=False,
                bar_format=BAR_FORMAT, file=sys.stderr, miniters=0, dynamic_ncols=True,
                disable=not sys.stderr.isatty(),  # a log gets the lines "done" only
            )  # fmt: skip
            self.client = NotebookClient(
                notebook, kernel_name="python3", kernel_manager_class=GuardedKernelManager,
                resources={"metadata": {"path": str(self.notebook.parent)}}, record_timing=False,
                on_cell_execute=self.start_cell, on_cell_executed=self.end_cell,
            )  # fmt: skip
            with open(log, "ab") as stream:
                self.client.execute(
                    env={**os.environ, **environment}, stdin=guard, stdout=stream, stderr=stream
                )
            normalise_notebook(notebook, output)
        except CellExecutionError as error:
            with suppress(Exception):
                nbformat.write(notebook, output)  # kept in the staging folder for a look
            cell = self.cell or notebook.cells[0]  # set: a cell raised
            raise NotebookFailedError(
                f"{self.notebook.name} failed in cell [{self.labels.get(id(cell), (0,))[0]}] "
                f"(`{first_line(cell.source)[:60]}`): {error.ename}: {error.evalue}",
                in_cell=True,
            ) from None
        except Exception as error:  # the kernel died or never answered, the file is no notebook …
            raise NotebookFailedError(
                f"{self.notebook.name} failed outside its cells: {type(error).__name__}: {error} "
                f"(the kernel's own messages are in {log})",
                in_cell=False,
            ) from None
        finally:
            if self.group is not None:
                end_groups({self.group})
            os.close(guard)
            os.close(lifeline)
            if self.bar is not None:
                self.bar.close()
        return time.perf_counter() - started


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
    stopping = threading.Event()
    runs = [NotebookRun(notebook, stage, stopping) for notebook in notebooks]
    pool = ThreadPoolExecutor(max_workers=max(1, min(jobs, len(runs))))
    futures = {pool.submit(run.execute, parameters, environment): run for run in runs}
    seconds: dict[str, float] = {}
    try:
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=1, return_when=FIRST_COMPLETED)
            for future in finished:
                name = futures[future].notebook
                seconds[name.stem] = future.result()
                progress(
                    f"[{len(seconds)}/{len(runs)}] {name.name} done in {seconds[name.stem]:.0f} s"
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
