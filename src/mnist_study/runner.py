"""Execute the study's notebooks in order, normalise them, and put them and their figures in place.

Every notebook runs with papermill into a staging folder under ``build/``, writing its README
figures there too. The notebooks are independent of each other (each loads the data itself and
shares expensive results only through the disk cache), so two of them run at a time, in their
numbered order, one process each. Only when all of them have succeeded are the executed notebooks
normalised and moved over ``notebooks/`` and the figures over ``readme_images/``; a failing cell
or an interrupt stops the others and leaves the committed files untouched. ``--check`` compares
the staged files with the committed ones instead of moving them, and ``--smoke`` runs on the small
test fixture into a scratch folder.

    python -m mnist_study.runner            # the main job (make figures)
    python -m mnist_study.runner --check    # regenerate and compare (make verify)
    python -m mnist_study.runner --smoke    # fixture run into build/smoke (make smoke)
    python -m mnist_study.runner --jobs 1   # one notebook at a time
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NotebookFailedError", "main", "normalise_notebook", "run_notebooks"]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
FIGURE_DIR = ROOT / "readme_images"
BUILD_DIR = ROOT / "build"
FIXTURE = ROOT / "tests" / "fixtures" / "mnist_784_fixture.npz"
STRIPPED_KEYS = (
    "metadata.papermill",
    "metadata.widgets",
    "metadata.language_info.version",
    "cell.metadata.papermill",
    "cell.metadata.execution",
)
# Notebooks run side by side: one per core, at most two (each also uses both cores in its fits).
DEFAULT_JOBS = max(1, min(2, os.cpu_count() or 1))
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


def execute_notebook(spec: dict[str, object]) -> int:
    """Worker side: execute one notebook as ``spec`` describes; 1 and a failure file if it fails.

    ``spec`` holds ``input`` and ``output`` (notebook paths), ``parameters``, ``log`` (where the
    kernel's own messages go) and ``failure`` (where the description of a failing cell is written).
    """
    import papermill

    notebook = Path(str(spec["input"]))
    try:
        papermill.execute_notebook(
            str(notebook),
            str(spec["output"]),
            parameters=dict(spec["parameters"]),  # type: ignore[call-overload]
            cwd=str(notebook.parent),
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
            kernel_manager_class=logged_kernel_manager(Path(str(spec["log"]))),
        )
    except papermill.PapermillExecutionError as error:
        Path(str(spec["failure"])).write_text(describe_failure(notebook, error), encoding="utf-8")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


@dataclass
class Job:
    """One notebook executing in its own process."""

    number: int
    notebook: Path
    output: Path
    failure: Path
    process: subprocess.Popen[bytes]
    started: float

    def executed_cells(self) -> str:
        """``done/total`` code cells of the partly written output notebook, or ``""``."""
        try:
            cells = json.loads(self.output.read_text(encoding="utf-8"))["cells"]
        except (OSError, ValueError, KeyError):
            return ""
        code = [cell for cell in cells if cell.get("cell_type") == "code"]
        done = sum(1 for cell in code if cell.get("execution_count") is not None)
        return f"{done}/{len(code)} cells"


def start_job(number: int, notebook: Path, stage: Path, parameters: dict[str, object]) -> Job:
    """Start executing ``notebook`` into ``stage/notebooks`` in a new process."""
    output = stage / "notebooks" / notebook.name
    failure = stage / f"{notebook.stem}.failure"
    spec = {
        "input": str(notebook),
        "output": str(output),
        "parameters": parameters,
        "log": str(stage / f"{notebook.stem}.kernel.log"),
        "failure": str(failure),
    }
    # A session of its own: Ctrl-C reaches the runner only, which then stops each job once.
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_study.runner", "--worker", json.dumps(spec)],
        start_new_session=True,
    )
    return Job(number, notebook, output, failure, process, time.perf_counter())


def stop_jobs(jobs: Sequence[Job]) -> None:
    """Interrupt running jobs (their kernels shut down cleanly), killing any that linger."""
    for job in jobs:
        if job.process.poll() is None:
            job.process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_SECONDS
    for job in jobs:
        try:
            job.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            job.process.kill()
            job.process.wait()


def run_notebooks(
    notebooks: Sequence[Path],
    stage: Path,
    parameters: dict[str, object] | None = None,
    jobs: int = DEFAULT_JOBS,
) -> None:
    """Execute the notebooks into ``stage/notebooks`` (figures into ``stage/readme_images``).

    Up to ``jobs`` notebooks run at a time, started in the given order. The first failure stops
    the others and raises :class:`NotebookFailedError` naming the notebook and the cell.
    """
    (stage / "notebooks").mkdir(parents=True, exist_ok=True)
    figure_dir = stage / "readme_images"
    figure_dir.mkdir(parents=True, exist_ok=True)
    parameters = {"figure_dir": str(figure_dir), **(parameters or {})}
    total = len(notebooks)
    waiting = list(enumerate(notebooks, start=1))
    running: list[Job] = []
    last_report = time.monotonic()
    try:
        while waiting or running:
            while waiting and len(running) < max(1, jobs):
                number, notebook = waiting.pop(0)
                progress(f"[{number}/{total}] running {notebook.name} …")
                running.append(start_job(number, notebook, stage, parameters))
            time.sleep(0.1)
            for job in [job for job in running if job.process.poll() is not None]:
                running.remove(job)
                if job.process.returncode != 0:
                    raise NotebookFailedError(job_failure(job))
                seconds = time.perf_counter() - job.started
                progress(f"[{job.number}/{total}] {job.notebook.name} done in {seconds:.0f} s")
                last_report = time.monotonic()
            if running and time.monotonic() - last_report >= HEARTBEAT_SECONDS:
                for job in running:
                    seconds = time.perf_counter() - job.started
                    cells = job.executed_cells()
                    progress(
                        f"      {job.notebook.name}: {cells + ', ' if cells else ''}"
                        f"{seconds:.0f} s so far"
                    )
                last_report = time.monotonic()
    finally:
        stop_jobs(running)


def job_failure(job: Job) -> str:
    """What went wrong in a job: the failing cell if a cell failed, else the exit status."""
    if job.failure.exists():
        return job.failure.read_text(encoding="utf-8")
    log = job.output.parent.parent / f"{job.notebook.stem}.kernel.log"
    return (
        f"{job.notebook.name} failed outside its cells (exit status {job.process.returncode}); "
        f"see the messages above and the kernel's log, {log}"
    )


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
    """Make an executed notebook what a reader's own run gives: no injected cell, no timings."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    notebook["cells"] = [
        cell
        for cell in notebook["cells"]
        if "injected-parameters" not in cell.get("metadata", {}).get("tags", [])
    ]
    count = 0
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        count += 1
        cell["execution_count"] = count
        cell["outputs"] = merge_streams(cell.get("outputs", []))
        for output in cell["outputs"]:
            if "execution_count" in output:
                output["execution_count"] = count
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "nbstripout",
            "--keep-output",
            "--keep-count",
            "--extra-keys",
            " ".join(STRIPPED_KEYS),
            str(path),
        ],
        check=True,
    )


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
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("notebooks", nargs="*", help="names of notebooks to run (default: all)")
    args = parser.parse_args(argv)
    if args.worker:
        return execute_notebook(json.loads(args.worker))

    notebooks = study_notebooks(args.notebooks)
    stage = BUILD_DIR / ("smoke" if args.smoke else "staging")
    shutil.rmtree(stage, ignore_errors=True)
    if args.smoke:
        os.environ["MNIST_STUDY_FIXTURE"] = str(FIXTURE)
        os.environ["MNIST_STUDY_CACHE_DIR"] = str(BUILD_DIR / "smoke-cache")
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
    for path in sorted((stage / "notebooks").iterdir()):
        normalise_notebook(path)
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
