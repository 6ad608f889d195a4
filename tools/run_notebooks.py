"""Execute the study's notebooks in order, normalise them, and put them and their figures in place.

Every notebook runs with papermill into a staging folder under ``build/``, writing its README
figures there too. The notebooks are independent of each other (each loads the data itself and
shares expensive results only through the disk cache), so two of them run at a time, in their
numbered order, one process each. Only when all of them have succeeded are the executed notebooks
normalised and moved over ``notebooks/`` and the figures over ``readme_images/``; a failing cell
or an interrupt stops the others and leaves the committed files untouched. ``--check`` compares
the staged files with the committed ones instead of moving them, and ``--smoke`` runs on the small
test fixture into a scratch folder.

    python -m tools.run_notebooks            # the main job (make figures)
    python -m tools.run_notebooks --check    # regenerate and compare (make verify)
    python -m tools.run_notebooks --smoke    # fixture run into build/smoke (make smoke)
    python -m tools.run_notebooks --jobs 1   # one notebook at a time
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnist_study import settings

__all__ = ["NotebookFailedError", "main", "normalise_notebook", "run_notebooks"]

ROOT = settings.ROOT
NOTEBOOK_DIR = settings.NOTEBOOK_DIR
FIGURE_DIR = settings.README_FIGURE_DIR
BUILD_DIR = settings.BUILD_DIR
# The keys the nbstripout command strips by default, then those papermill and Jupyter add.
NBSTRIPOUT_DEFAULT_KEYS = (
    "metadata.signature",
    "metadata.widgets",
    "cell.metadata.collapsed",
    "cell.metadata.ExecuteTime",
    "cell.metadata.execution",
    "cell.metadata.heading_collapsed",
    "cell.metadata.hidden",
    "cell.metadata.scrolled",
)
STRIPPED_KEYS = (
    "metadata.papermill",
    "metadata.language_info.version",
    "cell.metadata.papermill",
)
# Notebooks run side by side: one per core, at most two (each also uses both cores in its fits).
DEFAULT_JOBS = min(2, settings.CORES)
# How often a long notebook's progress (cells executed so far) is reported.
HEARTBEAT_SECONDS = 30
# How long an interrupted notebook may take to shut its kernel down before it is killed.
STOP_SECONDS = 20


class NotebookFailedError(RuntimeError):
    """A notebook raised during execution; the message names the notebook and the cell."""


def progress(message: str) -> None:
    """Progress lines go to stderr, so that stdout stays machine-readable."""
    print(message, file=sys.stderr, flush=True)


def study_notebooks(names: Sequence[str] = ()) -> list[Path]:
    """The notebooks to run, in their numbered order (all of them by default)."""
    notebooks = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if names:
        chosen = [path for path in notebooks if path.name in names or path.stem in names]
        unknown = set(names) - {p.name for p in chosen} - {p.stem for p in chosen}
        if unknown:
            known = ", ".join(p.name for p in notebooks)
            raise SystemExit(
                f"error: no such notebook: {', '.join(sorted(unknown))} (known: {known})"
            )
        return chosen
    return notebooks


def is_injected(cell: dict[str, Any]) -> bool:
    """Whether ``cell`` is the parameters cell papermill inserts (a reader's run has none)."""
    return "injected-parameters" in cell.get("metadata", {}).get("tags", [])


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


def logged_kernel_manager(log_path: Path) -> type:
    """A kernel manager whose kernels write their own log lines to ``log_path``, not the terminal.

    Notebook output (including warnings) still reaches the notebook; only the kernel process's
    start-up and shut-down messages are kept out of the progress report.
    """
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: object) -> None:
            with open(log_path, "ab") as log:
                await super()._async_start_kernel(stderr=log, **kw)

    return LoggedKernelManager


def execute_notebook(spec: dict[str, Any]) -> int:
    """Worker side: execute and normalise one notebook as ``spec`` describes; 0 on success.

    ``spec`` holds ``input`` and ``output`` (notebook paths), ``parameters``, ``log`` (where the
    kernel's own messages go) and ``failure`` (where the description of a failing cell goes, with
    the status 1). An interrupt returns 130 after papermill has shut the kernel down.
    """
    import papermill

    notebook = Path(spec["input"])
    try:
        papermill.execute_notebook(
            str(notebook),
            spec["output"],
            parameters=spec["parameters"],
            cwd=str(notebook.parent),
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
            kernel_manager_class=logged_kernel_manager(Path(spec["log"])),
        )
        normalise_notebook(Path(spec["output"]))
    except papermill.PapermillExecutionError as error:
        failure = describe_failure(notebook, error)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # the kernel died, would not start, the notebook is unreadable …
        failure = (
            f"{notebook.name} failed outside its cells: {type(error).__name__}: {error} "
            f"(the kernel's own messages are in {spec['log']})"
        )
    else:
        return 0
    Path(spec["failure"]).write_text(failure, encoding="utf-8")
    return 1


def serve_as_worker() -> int:
    """Execute the notebooks described by the JSON lines on stdin; one status line each on stdout.

    A worker serves several notebooks in turn, so papermill and nbformat are imported once per
    worker rather than once per notebook. Anything else printed goes to stderr.
    """
    statuses = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        for line in sys.stdin:
            statuses.write(f"{execute_notebook(json.loads(line))}\n")
    except KeyboardInterrupt:
        return 130
    return 0


@dataclass
class Job:
    """One notebook given to a worker."""

    number: int
    notebook: Path
    output: Path
    failure: Path
    log: Path
    started: float = field(default_factory=time.perf_counter)

    def executed_cells(self) -> str:
        """How many code cells of the partly written output notebook have run, or ``""``."""
        try:
            cells = json.loads(self.output.read_text(encoding="utf-8"))["cells"]
        except (OSError, ValueError, KeyError):
            return ""
        code = [cell for cell in cells if cell.get("cell_type") == "code" and not is_injected(cell)]
        done = sum(1 for cell in code if cell.get("execution_count") is not None)
        return f"{done} of {len(code)} cells run, "

    def failure_message(self, status: int | None) -> str:
        """The failing cell if a cell failed, else what happened to the worker."""
        if self.failure.exists():
            return self.failure.read_text(encoding="utf-8")
        how = "its worker process ended" if status is None else f"status {status}"
        return (
            f"{self.notebook.name} failed outside its cells ({how}); see the messages above "
            f"and the kernel's log, {self.log}"
        )


class Worker:
    """A process (a session of its own) that executes the notebooks it is given, one at a time.

    Its own session means Ctrl-C reaches the runner only, which then interrupts each worker once.
    Statuses are read by a thread and put on the shared ``events`` queue.
    """

    def __init__(self, events: queue.Queue[tuple[Worker, int | None]]) -> None:
        self.job: Job | None = None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tools.run_notebooks", "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self.read_statuses, args=(events,), daemon=True).start()

    def read_statuses(self, events: queue.Queue[tuple[Worker, int | None]]) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            events.put((self, int(line)))
        events.put((self, None))

    def give(self, job: Job, parameters: dict[str, object]) -> None:
        """Start executing ``job``'s notebook."""
        spec = {
            "input": str(job.notebook),
            "output": str(job.output),
            "parameters": parameters,
            "log": str(job.log),
            "failure": str(job.failure),
        }
        assert self.process.stdin is not None
        self.job = job
        try:
            self.process.stdin.write(json.dumps(spec) + "\n")
            self.process.stdin.flush()
        except OSError as error:  # the worker has already ended
            raise NotebookFailedError(job.failure_message(None)) from error


def stop_workers(workers: Sequence[Worker]) -> None:
    """Interrupt busy workers (their kernels shut down cleanly), end idle ones, kill stragglers."""
    for worker in workers:
        if worker.job is not None and worker.process.poll() is None:
            worker.process.send_signal(signal.SIGINT)
        with contextlib.suppress(OSError):
            worker.process.stdin.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + STOP_SECONDS
    for worker in workers:
        try:
            worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()


def run_notebooks(
    notebooks: Sequence[Path],
    stage: Path,
    parameters: dict[str, object] | None = None,
    jobs: int = DEFAULT_JOBS,
) -> None:
    """Execute and normalise the notebooks into ``stage/notebooks`` (figures into
    ``stage/readme_images``).

    Up to ``jobs`` notebooks run at a time, started in the given order. The first failure stops
    the others and raises :class:`NotebookFailedError` naming the notebook and the cell.
    """
    (stage / "notebooks").mkdir(parents=True, exist_ok=True)
    figure_dir = stage / "readme_images"
    figure_dir.mkdir(parents=True, exist_ok=True)
    parameters = {"figure_dir": str(figure_dir), **(parameters or {})}
    total = len(notebooks)
    waiting = [
        Job(
            number,
            notebook,
            output=stage / "notebooks" / notebook.name,
            failure=stage / f"{notebook.stem}.failure",
            log=stage / f"{notebook.stem}.kernel.log",
        )
        for number, notebook in enumerate(notebooks, start=1)
    ]
    events: queue.Queue[tuple[Worker, int | None]] = queue.Queue()
    workers: list[Worker] = []
    last_report = time.monotonic()
    try:
        while waiting or any(worker.job for worker in workers):
            while waiting:
                idle = [worker for worker in workers if worker.job is None]
                if not idle and len(workers) < max(1, jobs):
                    workers.append(Worker(events))
                    continue
                if not idle:
                    break
                job = waiting.pop(0)
                progress(f"[{job.number}/{total}] running {job.notebook.name} …")
                job.started = time.perf_counter()
                idle[0].give(job, parameters)
            try:
                worker, status = events.get(
                    timeout=max(0.1, last_report + HEARTBEAT_SECONDS - time.monotonic())
                )
            except queue.Empty:
                for job in [worker.job for worker in workers if worker.job]:
                    seconds = time.perf_counter() - job.started
                    progress(
                        f"      {job.notebook.name}: {job.executed_cells()}{seconds:.0f} s so far"
                    )
                last_report = time.monotonic()
                continue
            job, worker.job = worker.job, None
            if job is None:  # an idle worker ended: its start-up failed (see its messages)
                raise NotebookFailedError(
                    f"a worker process ended before it was given a notebook (exit status "
                    f"{worker.process.wait()}); see the messages above"
                )
            if status != 0:
                raise NotebookFailedError(job.failure_message(status))
            seconds = time.perf_counter() - job.started
            progress(f"[{job.number}/{total}] {job.notebook.name} done in {seconds:.0f} s")
            last_report = time.monotonic()
    finally:
        stop_workers(workers)


def merge_streams(outputs: list[dict]) -> list[dict]:
    """Join consecutive outputs of the same stream, which the kernel may send in varying chunks."""
    merged: list[dict] = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            output["output_type"] == "stream"
            and previous is not None
            and previous["output_type"] == "stream"
            and previous["name"] == output["name"]
        ):
            previous["text"] = "".join(previous["text"]) + "".join(output["text"])
        else:
            merged.append(output)
    return merged


def normalise_notebook(path: Path) -> None:
    """Make an executed notebook what a reader's own run gives: no injected cell, no timings.

    Then strip it as the ``nbstripout --keep-output --keep-count`` command does with its default
    keys plus ``STRIPPED_KEYS``, but independent of any ``git config`` of the user's.
    """
    import nbformat
    from nbstripout import strip_output

    notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    notebook.cells = [cell for cell in notebook.cells if not is_injected(cell)]
    count = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        count += 1
        cell.execution_count = count
        cell.outputs = merge_streams(cell.get("outputs", []))
        for output in cell.outputs:
            if "execution_count" in output:
                output["execution_count"] = count
    strip_output(
        notebook,
        keep_output=True,
        keep_count=True,
        keep_id=False,
        extra_keys=[*NBSTRIPOUT_DEFAULT_KEYS, *STRIPPED_KEYS],
    )
    nbformat.write(notebook, path)


def staged_files(stage: Path) -> list[tuple[Path, Path]]:
    """Pairs of (staged file, committed location) for every notebook and figure produced."""
    pairs = [(path, NOTEBOOK_DIR / path.name) for path in sorted((stage / "notebooks").iterdir())]
    pairs += [
        (path, FIGURE_DIR / path.name) for path in sorted((stage / "readme_images").iterdir())
    ]
    return pairs


def differences(pairs: Sequence[tuple[Path, Path]]) -> list[str]:
    """The committed files that differ from (or lack) their regenerated version."""
    return [
        str(target.relative_to(ROOT))
        for staged, target in pairs
        if not target.exists() or not filecmp.cmp(staged, target, shallow=False)
    ]


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="compare with committed files")
    mode.add_argument("--smoke", action="store_true", help="run on the test fixture")
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=DEFAULT_JOBS,
        help=f"notebooks to run at a time (default: {DEFAULT_JOBS})",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("notebooks", nargs="*", help="names of notebooks to run (default: all)")
    args = parser.parse_args(argv)
    if args.worker:
        return serve_as_worker()

    notebooks = study_notebooks(args.notebooks)
    stage = BUILD_DIR / ("smoke" if args.smoke else "staging")
    shutil.rmtree(stage, ignore_errors=True)
    if args.smoke:
        os.environ[settings.FIXTURE_ENV] = str(settings.FIXTURE_FILE)
        os.environ[settings.CACHE_DIR_ENV] = str(BUILD_DIR / "smoke-cache")
    started = time.perf_counter()
    try:
        run_notebooks(notebooks, stage, jobs=args.jobs)
    except NotebookFailedError as error:
        progress(f"error: {error}")
        progress("Nothing under notebooks/ or readme_images/ was changed. Fix the cell and re-run.")
        return 1
    except KeyboardInterrupt:
        progress("interrupted: nothing under notebooks/ or readme_images/ was changed.")
        shutil.rmtree(stage, ignore_errors=True)
        return 130
    elapsed = time.perf_counter() - started
    if args.smoke:
        progress(f"smoke run of {len(notebooks)} notebook(s) passed in {elapsed:.0f} s ({stage})")
        return 0
    pairs = staged_files(stage)
    if args.check:
        changed = differences(pairs)
        if changed:
            progress("error: regenerating changed these committed files:")
            for name in changed:
                progress(f"  {name}")
            progress("Run `make figures` and commit the result (or find what made them differ).")
            return 1
        progress(f"verified: {len(pairs)} committed files match their regeneration")
        return 0
    FIGURE_DIR.mkdir(exist_ok=True)
    for staged, target in pairs:
        os.replace(staged, target)
    progress(f"wrote {len(pairs)} files into notebooks/ and readme_images/ in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
