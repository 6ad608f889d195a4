"""Execute the study's notebooks in order, normalise them, and put them and their figures in place.

Every notebook runs with papermill into a staging folder under ``build/``, writing its README
figures there too. The notebooks are independent of each other (each loads the data itself and
shares expensive results only through the disk cache), so two of them run at a time, in their
numbered order, in a process pool. Only when all of them have succeeded are the executed notebooks
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
import fcntl
import filecmp
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from tqdm import tqdm

from mnist_study import settings

__all__ = ["NotebookFailedError", "main", "normalise_notebook", "run_notebooks"]

# Stripped on top of nbstripout's own defaults: what papermill and the kernel's version add.
EXTRA_KEYS = "metadata.papermill cell.metadata.papermill metadata.language_info.version"
INJECTED_TAG = "injected-parameters"
# Notebooks run side by side: one per core, at most two (each also uses both cores in its fits).
DEFAULT_JOBS = min(2, settings.CORES)
# How long an interrupted notebook may take to shut its kernel down before it is killed.
STOP_SECONDS = 20
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# In a worker: its number, which is the line of its progress bar.
worker_slot = 0


class NotebookFailedError(RuntimeError):
    """A notebook failed; the message names the notebook and the cell."""


class Stopped(BaseException):
    """The run received ``signum`` (Ctrl-C, a ``kill``, a closed terminal)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass(frozen=True)
class Project:
    """The folders of a checkout the runner reads and writes."""

    root: Path

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    @property
    def figures(self) -> Path:
        return self.root / "readme_images"

    @property
    def build(self) -> Path:
        return self.root / "build"


def progress(message: str) -> None:
    """Progress lines go to stderr (above any progress bar), so that stdout stays clean."""
    tqdm.write(message, file=sys.stderr)


def study_notebooks(folder: Path, names: Sequence[str] = ()) -> list[Path]:
    """The notebooks to run, in their numbered order (all of them by default)."""
    notebooks = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
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
    """A kernel manager whose kernels write their own messages to ``log_path``, not the terminal.

    Notebook output (including warnings) still reaches the notebook; only the kernel process's
    start-up and shut-down messages are kept away from the progress bars.
    """
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:
            with open(log_path, "ab") as log:
                await super().start_kernel(stderr=log, **kw)

    return LoggedKernelManager


def start_worker(lock: Any, slots: Any) -> None:
    """Pool initializer: a session of its own, no interrupt while idle, a line for its bar.

    Its own session means a terminal's Ctrl-C or hang-up reaches the runner only, which then
    interrupts each worker once; a second interrupt could cut a kernel's shutdown short.
    """
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tqdm.set_lock(lock)
    with slots.get_lock():
        os.environ["TOOLS_RUNNER_SLOT"] = str(slots.value)
        slots.value += 1


def execute(
    notebook: Path, output: Path, parameters: dict[str, Any], log: Path
) -> tuple[str | None, float]:
    """Worker: execute and normalise one notebook; the failure's description (or None), seconds.

    An interrupt (SIGINT from the runner) makes papermill shut the kernel down and returns.
    """
    import papermill

    started = time.perf_counter()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            cwd=str(notebook.parent),
            kernel_name="python3",
            progress_bar={
                "desc": notebook.stem,
                "position": worker_slot,
                "leave": False,
            },
            log_output=False,
            kernel_manager_class=logged_kernel_manager(log),
        )
        normalise_notebook(output)
    except papermill.PapermillExecutionError as error:
        failure: str | None = describe_failure(notebook, error)
    except KeyboardInterrupt:
        failure = f"{notebook.name} was interrupted"
    except Exception as error:  # the kernel died, would not start, the notebook is unreadable …
        failure = (
            f"{notebook.name} failed outside its cells: {type(error).__name__}: {error} "
            f"(the kernel's own messages are in {log})"
        )
    else:
        failure = None
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return failure, time.perf_counter() - started


def descendants(processes: Sequence[psutil.Process]) -> Iterator[psutil.Process]:
    """The processes and all their descendants that are still running."""
    for process in processes:
        try:
            yield from [process, *process.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue


def stop_pool(pool: ProcessPoolExecutor, others: set[psutil.Process]) -> None:
    """Cancel waiting notebooks, interrupt running ones (their kernels shut down), kill leftovers.

    The pool's workers are this process's children except ``others`` (those it had before); a
    worker's kernel and the kernel's own processes are found under it, and killed if the
    interrupt did not end them.
    """
    for signum in STOP_SIGNALS:  # a second Ctrl-C must not cut the stopping short
        signal.signal(signum, signal.SIG_IGN)
    workers = [child for child in psutil.Process().children() if child not in others]
    family = set(descendants(workers))
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        try:
            worker.send_signal(signal.SIGINT)
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(workers, timeout=STOP_SECONDS)
    for process in family | set(descendants(alive)):
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=5)


def run_notebooks(
    notebooks: Sequence[Path],
    stage: Path,
    parameters: dict[str, Any],
    jobs: int = DEFAULT_JOBS,
) -> None:
    """Execute and normalise the notebooks into ``stage/notebooks``, with ``parameters``.

    Up to ``jobs`` notebooks run at a time, started in the given order. The first failure stops
    the others and raises :class:`NotebookFailedError` naming the notebook and the cell.
    """
    (stage / "notebooks").mkdir(parents=True, exist_ok=True)
    total = len(notebooks)
    # spawn: forking a process that already runs threads (joblib's, a test session's) can deadlock
    context = multiprocessing.get_context("spawn")
    others = set(psutil.Process().children())
    pool = ProcessPoolExecutor(
        max_workers=max(1, min(jobs, total)),
        mp_context=context,
        initializer=start_worker,
        initargs=(context.RLock(), context.Value("i", 0)),
    )
    futures: dict[Future[tuple[str | None, float]], Path] = {}
    try:
        for notebook in notebooks:
            output = stage / "notebooks" / notebook.name
            log = stage / f"{notebook.stem}.kernel.log"
            futures[pool.submit(execute, notebook, output, parameters, log)] = notebook
        for done, future in enumerate(as_completed(futures), start=1):
            notebook = futures[future]
            try:
                failure, seconds = future.result()
            except Exception as error:  # the worker process died (killed, out of memory …)
                raise NotebookFailedError(
                    f"{notebook.name} failed outside its cells ({type(error).__name__}); see the "
                    f"messages above and the kernel's log, {stage / notebook.stem}.kernel.log"
                ) from error
            if failure is not None:
                raise NotebookFailedError(failure)
            progress(f"[{done}/{total}] {notebook.name} done in {seconds:.0f} s")
    except BaseException:
        stop_pool(pool, others)
        raise
    pool.shutdown()


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """While in the block, SIGINT, SIGTERM and SIGHUP raise :class:`Stopped`."""

    def stop(signum: int, _frame: object) -> None:
        raise Stopped(signum)

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def one_run_at_a_time(build: Path) -> Iterator[bool]:
    """Hold ``build/run.lock`` for the block; yields False if another run holds it.

    ``flock`` from the standard library: the system releases it however the run ends, so no
    stale lock is ever left behind.
    """
    build.mkdir(parents=True, exist_ok=True)
    with open(build / "run.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def normalise_notebook(path: Path) -> None:
    """Make an executed notebook what a reader's own run gives: no injected cell, no timings.

    Streams are joined as nbconvert does (the kernel sends them in varying chunks), execution
    counts renumbered without papermill's injected cell (a reader's run has none), then the
    ``nbstripout --keep-output --keep-count`` command strips its default keys and ``EXTRA_KEYS``.
    """
    import nbformat
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor

    notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    CoalesceStreamsPreprocessor().preprocess(notebook, {})
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    count = 0
    for cell in code:
        if INJECTED_TAG in cell.metadata.get("tags", []):
            continue
        count += 1
        cell.execution_count = count
        for output in cell.outputs:
            if "execution_count" in output:
                output["execution_count"] = count
    nbformat.write(notebook, path)
    # nbstripout adds keys from `git config`: an empty configuration keeps the result the same
    # on every machine.
    git_free = {"GIT_DIR": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    subprocess.run(
        [
            *(sys.executable, "-m", "nbstripout", "--keep-output", "--keep-count"),
            *("--drop-tagged-cells", INJECTED_TAG, "--extra-keys", EXTRA_KEYS, str(path)),
        ],
        env={**os.environ, **git_free},
        check=True,
        capture_output=True,
    )


def staged_files(stage: Path, project: Project) -> list[tuple[Path, Path]]:
    """Pairs of (staged file, committed location) for every notebook and figure produced."""
    pairs = [
        (path, project.notebooks / path.name) for path in sorted((stage / "notebooks").iterdir())
    ]
    pairs += [
        (path, project.figures / path.name) for path in sorted((stage / "readme_images").iterdir())
    ]
    return pairs


def differences(pairs: Sequence[tuple[Path, Path]], project: Project) -> list[str]:
    """The committed files that differ from (or lack) their regenerated version."""
    return [
        str(target.relative_to(project.root))
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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
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
    parser.add_argument(
        "--root", type=Path, default=settings.ROOT, help="the project folder (default: this one)"
    )
    parser.add_argument("notebooks", nargs="*", help="names of notebooks to run (default: all)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    args = parse_args(argv)
    project = Project(args.root.resolve())
    notebooks = study_notebooks(project.notebooks, args.notebooks)
    with one_run_at_a_time(project.build) as alone:
        if not alone:
            progress(
                f"error: the notebooks are already being run in {project.root} "
                f"({project.build / 'run.lock'} is held); wait for that run to end."
            )
            return 1
        return run(args, project, notebooks)


def run(args: argparse.Namespace, project: Project, notebooks: Sequence[Path]) -> int:
    """Run ``notebooks`` as ``args`` say, then check them or move them into place."""
    stage = project.build / ("smoke" if args.smoke else "staging")
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "readme_images").mkdir(parents=True)
    # Each notebook's parameters cell lists these, with the values of a run by hand.
    parameters = {
        "sample": None,
        "fixture": str(settings.FIXTURE_FILE) if args.smoke else None,
        "figure_dir": str(stage / "readme_images"),
    }
    if args.smoke:  # the kernels inherit it: the fixture's results stay out of .cache/
        os.environ[settings.CACHE_DIR_ENV] = str(project.build / "smoke-cache")
    started = time.perf_counter()
    try:
        with stop_signals_raise():
            run_notebooks(notebooks, stage, parameters, jobs=args.jobs)
    except NotebookFailedError as error:
        progress(f"error: {error}")
        progress("Nothing under notebooks/ or readme_images/ was changed. Fix the cell and re-run.")
        return 1
    except Stopped as stopped:
        shutil.rmtree(stage, ignore_errors=True)
        progress(
            f"interrupted ({stopped}): nothing under notebooks/ or readme_images/ was changed."
        )
        return 128 + stopped.signum
    elapsed = time.perf_counter() - started
    if args.smoke:
        progress(f"smoke run of {len(notebooks)} notebook(s) passed in {elapsed:.0f} s ({stage})")
        return 0
    pairs = staged_files(stage, project)
    if args.check:
        changed = differences(pairs, project)
        if changed:
            progress("error: regenerating changed these committed files:")
            for name in changed:
                progress(f"  {name}")
            progress("Run `make figures` and commit the result (or find what made them differ).")
            return 1
        progress(f"verified: {len(pairs)} committed files match their regeneration")
        return 0
    project.figures.mkdir(exist_ok=True)
    for staged, target in pairs:
        os.replace(staged, target)
    progress(f"wrote {len(pairs)} files into notebooks/ and readme_images/ in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
