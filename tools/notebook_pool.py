"""Execute notebooks with papermill in a pool of worker processes that stop at once when told to.

Each worker runs in a session of its own (a terminal's Ctrl-C or hang-up reaches the runner only)
and its kernel in another (jupyter_client starts every kernel so). Stopping is done by the
runner: it sends SIGTERM to each worker, whose handler kills its kernel's whole process group
(the kernel and the processes it started, such as joblib's workers) and exits without a word;
whatever is left after a few seconds is killed. A worker also gets SIGTERM when the runner ends,
however it ends (Linux's parent-death signal), so no notebook outlives its run.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import suppress
from pathlib import Path
from typing import Any

import psutil
from tqdm import tqdm

from tools.normalise import normalise_notebook
from tools.stop_signals import ignore_stop_signals

__all__ = ["NotebookFailedError", "progress", "run_notebooks"]

# How long stopped workers may take to exit before they and their kernels are killed outright.
STOP_SECONDS = 5
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
KERNEL_GROUP_SUFFIX = ".kernel.pgid"
# In a worker: its number (the line of its progress bar), and the manager of its running kernel.
worker_slot = 0
running_kernel: Any = None


class NotebookFailedError(RuntimeError):
    """A notebook failed; the message names it, and the cell if the failure is a cell's."""

    def __init__(self, message: str, in_cell: bool) -> None:
        super().__init__(message)
        self.in_cell = in_cell


def progress(message: str) -> None:
    """Progress lines go to stderr (above any progress bar); a closed terminal is no error."""
    with suppress(OSError):
        tqdm.write(message, file=sys.stderr)


def clear_bars() -> None:
    """Remove the bars stopped workers left: cleared on a terminal, else their line ended."""
    with suppress(OSError):
        sys.stderr.write("\r\x1b[J" if sys.stderr.isatty() else "\n")
        sys.stderr.flush()


def describe_failure(notebook: Path, error: Exception) -> str:
    """Name the notebook, the failing cell (as numbered in a reader's run) and the exception."""
    count = getattr(error, "exec_count", None)
    source = (getattr(error, "source", "") or "").strip().splitlines()
    # papermill executes one injected parameters cell first, which a reader's run does not have
    where = f"cell [{count - 1}]" if count else "a cell"
    if source:
        where += f" (`{source[0][:60]}`)"
    name = getattr(error, "ename", type(error).__name__)
    value = getattr(error, "evalue", str(error))
    return f"{notebook.name} failed in {where}: {name}: {value}"


def kill_group(group: int | None) -> None:
    """Kill every process of the process group ``group`` (nothing if it is gone or unknown)."""
    if group is None or group <= 1:  # 0 would be this process's own group
        return
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)


def kernel_manager(log_path: Path) -> type:
    """A kernel manager that keeps the kernel's own output in ``log_path`` and its group known.

    Notebook output (warnings included) still reaches the notebook; only the kernel process's
    start-up and shut-down messages are kept away from the progress bars. The kernel's process
    group (``group``) is written beside the log, for the runner, and killed once the kernel has
    shut down: ipykernel ends its own children, this also ends those that have left its tree.
    """
    from jupyter_client.manager import AsyncKernelManager

    group_file = log_path.with_suffix(KERNEL_GROUP_SUFFIX)

    class RunnerKernelManager(AsyncKernelManager):
        group: int | None = None

        async def start_kernel(self, **kw: Any) -> None:
            global running_kernel
            with open(log_path, "ab") as log:
                await super().start_kernel(stdout=log, stderr=log, **kw)
            self.group = self.provisioner.pgid
            group_file.write_text(str(self.group))
            running_kernel = self

        async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
            global running_kernel
            await super().shutdown_kernel(now=now, restart=restart)
            running_kernel = None
            kill_group(self.group)
            group_file.unlink(missing_ok=True)

    return RunnerKernelManager


def stop_worker(signum: int, _frame: object) -> None:
    """SIGTERM in a worker: kill its kernel's process group, then exit at once, silently."""
    if running_kernel is not None:
        kill_group(running_kernel.group)
        running_kernel.cleanup_connection_file()
    os._exit(128 + signum)


def die_with_parent(parent: int) -> None:
    """Linux: have SIGTERM sent to this process when ``parent`` ends (``prctl`` via ctypes).

    No library offers the parent-death signal; it is one system call.
    """
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it ended before the call
        stop_worker(signal.SIGTERM, None)


def start_worker(parent: int, environment: Mapping[str, str], lock: Any, slots: Any) -> None:
    """Pool initializer: own session, stopped by SIGTERM (also when the runner ends), a bar line."""
    global worker_slot
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, stop_worker)
    die_with_parent(parent)
    os.environ.update(environment)
    tqdm.set_lock(lock)
    with slots.get_lock():
        worker_slot = slots.value
        slots.value += 1


def execute(
    notebook: Path, output: Path, parameters: dict[str, Any], log: Path
) -> tuple[str, bool] | float:
    """Worker: execute and normalise one notebook; seconds taken, or (failure, in a cell?)."""
    import papermill

    started = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            cwd=str(notebook.parent),
            kernel_name="python3",
            progress_bar={"desc": notebook.stem, "position": worker_slot, "leave": False},
            log_output=False,
            kernel_manager_class=kernel_manager(log),
        )
        normalise_notebook(output)
    except papermill.PapermillExecutionError as error:
        return describe_failure(notebook, error), True
    except Exception as error:  # the kernel died, would not start, the notebook is unreadable …
        return (
            f"{notebook.name} failed outside its cells: {type(error).__name__}: {error} "
            f"(the kernel's own messages are in {log})"
        ), False
    return time.perf_counter() - started


def descendants(workers: Sequence[multiprocessing.process.BaseProcess]) -> set[psutil.Process]:
    """The running descendants of the workers (their kernels and the kernels' processes)."""
    found = set()
    for worker in workers:
        with suppress(psutil.NoSuchProcess, ValueError):  # ValueError: the worker was closed
            found.update(psutil.Process(worker.pid).children(recursive=True))
    return found


def stop_pool(pool: ProcessPoolExecutor, stage: Path) -> None:
    """Cancel waiting notebooks, stop the workers and their kernels, and wait until all are gone.

    The workers are stopped and waited for through multiprocessing's own objects: a worker
    reaped by anything else would look alive to the pool for ever. A worker killed earlier (out
    of memory …) leaves its kernel's processes without a parent in this tree: their process
    group, recorded in ``stage``, finds them.
    """
    ignore_stop_signals()
    workers = multiprocessing.active_children()
    family = descendants(workers)
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        worker.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    alive = [worker for worker in workers if worker.is_alive()]
    family |= descendants(alive)
    for worker in alive:
        worker.kill()
        worker.join()
    for process in family:
        with suppress(psutil.NoSuchProcess):
            process.kill()
    for group_file in stage.glob(f"*{KERNEL_GROUP_SUFFIX}"):
        with suppress(ValueError):  # a file still being written
            kill_group(int(group_file.read_text()))
    psutil.wait_procs(family, timeout=STOP_SECONDS)  # not this process's children: not reaped
    clear_bars()


def run_notebooks(
    notebooks: Sequence[Path],
    stage: Path,
    parameters: dict[str, Any],
    jobs: int,
    environment: Mapping[str, str],
) -> dict[str, float]:
    """Execute and normalise the notebooks into ``stage/notebooks``; each one's seconds, by name.

    Up to ``jobs`` notebooks run at a time, started in the given order, their kernels with
    ``environment`` added to this process's. The first failure (or a signal's exception) stops
    the others; a failure raises :class:`NotebookFailedError` naming the notebook and the cell.
    """
    (stage / "notebooks").mkdir(parents=True, exist_ok=True)
    total = len(notebooks)
    # spawn: forking a process that already runs threads (joblib's, a test session's) can deadlock
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=max(1, min(jobs, total)),
        mp_context=context,
        initializer=start_worker,
        initargs=(os.getpid(), dict(environment), context.RLock(), context.Value("i", 0)),
    )
    futures: dict[Future[tuple[str, bool] | float], Path] = {}
    seconds = {}
    try:
        for notebook in notebooks:
            output = stage / "notebooks" / notebook.name
            log = stage / f"{notebook.stem}.kernel.log"
            futures[pool.submit(execute, notebook, output, parameters, log)] = notebook
        for done, future in enumerate(as_completed(futures), start=1):
            notebook = futures[future]
            try:
                result = future.result()
            except Exception as error:  # a worker process died (killed, out of memory …)
                raise NotebookFailedError(
                    f"{notebook.name} did not finish: a worker process ended abruptly "
                    f"({type(error).__name__}: killed, or out of memory?); the kernels' own "
                    f"messages are in {stage}",
                    in_cell=False,
                ) from error
            if isinstance(result, tuple):
                raise NotebookFailedError(*result)
            progress(f"[{done}/{total}] {notebook.name} done in {result:.0f} s")
            seconds[notebook.stem] = result
    except BaseException:
        stop_pool(pool, stage)
        raise
    pool.shutdown()
    return seconds
