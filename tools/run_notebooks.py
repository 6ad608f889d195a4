"""Execute the study's notebooks, normalise them, and put them and their figures in place.

They run (``tools/notebook_pool.py``) into a staging folder of the run's own, ``build/runs/…``,
the longest first by the longest time each has taken (``build/notebook-seconds.json``). Only
when all have succeeded are they moved over ``notebooks/`` and the figures over
``readme_images/`` (``--smoke``: ``build/smoke/``), all or nothing. One run per checkout: while
one holds ``build/run.lock`` a second run, and ``--clean``, are refused.

    python -m tools.run_notebooks [--smoke | --clean] [--jobs N] [NOTEBOOK …]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from filelock import FileLock, Timeout

from mnist_study.settings import CACHE_DIR_ENV, CORES
from tools.notebook_pool import NotebookFailedError, progress, run_notebooks
from tools.paths import FIXTURE_FILE, KERNEL_ENVIRONMENT, ROOT

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
NOT_A_CELLS = "The failure is not a cell's: see the message above, then re-run."


class Stopped(BaseException):
    """The run received ``signum``; the exit status is 128 + ``signum``, as a shell reports it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class PlacingError(RuntimeError):
    """Files could not be moved into place; ``restored``: every target is as it was before."""

    def __init__(self, message: str, restored: bool) -> None:
        super().__init__(message)
        self.restored = restored


def ignore_stop_signals() -> None:
    """Ignore further stop signals: stopping, or putting files back, is under way."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def raise_stopped(signum: int, _frame: object) -> None:
    ignore_stop_signals()
    raise Stopped(signum)


def study_notebooks(folder: Path, names: Sequence[str] = ()) -> list[Path]:
    """The notebooks to run, in their numbered order (all of them by default)."""
    notebooks = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    unknown = set(names) - {p.name for p in notebooks} - {p.stem for p in notebooks}
    if unknown:
        known = ", ".join(p.name for p in notebooks)
        raise SystemExit(f"error: no such notebook: {', '.join(sorted(unknown))} (known: {known})")
    return [p for p in notebooks if not names or p.name in names or p.stem in names]


def recorded_times(times: Path) -> dict[str, float]:
    """The longest time of each notebook kept in ``times``; none if it is missing or unreadable."""
    try:
        return {name: float(s) for name, s in json.loads(times.read_text()).items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


# Hand-written: neither make -j nor a process pool orders jobs by how long they took before.
def longest_first(notebooks: Sequence[Path], times: Path) -> list[Path]:
    """``notebooks`` by their recorded times, longest first; those never timed first."""
    seconds = recorded_times(times)
    return sorted(notebooks, key=lambda path: (path.stem in seconds, -seconds.get(path.stem, 0)))


def folder_problem(root: Path, destination: Path) -> str | None:
    """What keeps the run from writing where it writes, said before it starts; None if nothing."""
    build = root / "build"
    targets = (destination / "notebooks", destination / "readme_images")
    for folder in (build, build / "runs", destination, *targets):
        name = folder.relative_to(root)
        if folder.is_symlink() and folder.is_relative_to(build):
            return f"{name} is a symbolic link: the runner writes only into folders of its own"
        if folder.exists() and not folder.is_dir():
            return f"{name} is a file, not a folder: move it away"
        if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            return f"{name}/ is not writable"
    return None


# Hand-written: jupyter_client only times out ("Kernel didn't respond") after a minute.
def loopback_problem() -> str | None:
    """Whether 127.0.0.1 answers (a kernel talks to the runner through it); None if it does."""
    try:
        with socket.create_server(("127.0.0.1", 0)) as server:
            socket.create_connection(server.getsockname(), timeout=2).close()
    except OSError as error:
        return (
            f"127.0.0.1 does not answer ({error.strerror or error}), and the notebooks' kernels "
            "talk to the runner through it: is the loopback interface down? (`ip link set lo up`)"
        )
    return None


# Hand-written: no library moves a set of files all or nothing (git, rsync and shutil do not).
def move_into_place(pairs: Sequence[tuple[Path, Path]], backup: Path, root: Path) -> None:
    """Move each staged file over its target, all or nothing.

    Each target is first hard-linked into ``backup`` (so it is never missing). If a move fails,
    or a signal interrupts them, the targets already replaced are put back and the new ones
    removed; a failed move becomes :class:`PlacingError`, as does a target that could not be put
    back (whatever the cause), and a signal's exception otherwise goes on.
    """
    backup.mkdir(parents=True, exist_ok=True)
    done: list[tuple[Path, Path]] = []
    target = root
    try:
        for index, (staged, target) in enumerate(pairs):
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_file():
                os.link(target, backup / str(index))
            os.replace(staged, target)
            done.append((target, backup / str(index)))
    except BaseException as error:
        ignore_stop_signals()
        lost = []
        for replaced, saved in reversed(done):
            try:
                os.replace(saved, replaced) if saved.exists() else replaced.unlink()
            except OSError:
                lost.append(replaced.name)
        if isinstance(error, OSError):
            cause = f"could not write {target.relative_to(root)}: {error.strerror or error}"
        elif lost:
            cause = f"interrupted ({error}) while moving files into place"
        else:
            raise
        if lost:
            cause += f"; and could not put back {', '.join(lost)} (their previous versions are "
            cause += f"in {backup})"
        raise PlacingError(cause, restored=not lost) from error


def run(args: argparse.Namespace, root: Path, notebooks: Sequence[Path]) -> int:
    """Run ``notebooks`` into a staging folder, then move them into place; the exit status.

    The staging folder is removed, unless a notebook failed (its executed copy and its kernel's
    messages are kept there until the next run) or a file could not be put back.
    """
    destination = root / "build" / "smoke" if args.smoke else root
    where = "build/smoke" if args.smoke else "notebooks/ or readme_images/"
    runs = root / "build" / "runs"
    shutil.rmtree(runs, ignore_errors=True)  # ended runs' folders: this run holds the lock
    runs.mkdir()
    stage = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=runs))
    # Each notebook's parameters cell lists these, with the values of a run by hand.
    parameters = {
        "sample": None,
        "fixture": str(FIXTURE_FILE) if args.smoke else None,
        "figure_dir": str(stage / "readme_images"),
    }
    # the fixture's results stay out of .cache/
    environment = dict(KERNEL_ENVIRONMENT)
    if args.smoke:
        environment[CACHE_DIR_ENV] = str(root / "build" / "smoke-cache")
    times = root / "build" / ("smoke-seconds.json" if args.smoke else "notebook-seconds.json")
    keep = False
    try:
        (stage / "readme_images").mkdir()
        started = time.perf_counter()
        seconds = run_notebooks(
            longest_first(notebooks, times), stage, parameters, args.jobs, environment
        )
        pairs = [
            (path, destination / folder / path.name)
            for folder in ("notebooks", "readme_images")
            for path in sorted((stage / folder).iterdir())
        ]
        move_into_place(pairs, stage / "previous", root)
        longest = recorded_times(times)  # a run on a filled cache takes seconds, a cold one not
        for name, taken in seconds.items():
            longest[name] = round(max(taken, longest.get(name, 0.0)), 1)
        times.write_text(json.dumps(dict(sorted(longest.items()))))  # unreadable: none recorded
        elapsed = time.perf_counter() - started
        progress(
            f"wrote {len(pairs)} files into {where.replace(' or ', ' and ')} in {elapsed:.0f} s"
        )
        return 0
    except NotebookFailedError as error:
        keep = True
        progress(f"error: {error}")
        progress(
            f"Nothing under {where} was changed (what ran is kept in {stage.relative_to(root)}/ "
            "until the next run). " + ("Fix the cell and re-run." if error.in_cell else NOT_A_CELLS)
        )
        return 1
    except PlacingError as error:
        keep = not error.restored
        progress(f"error: the results could not be moved into place: {error}.")
        if error.restored:
            progress(f"Nothing under {where} was changed.")
        return 1
    finally:
        if not keep:
            shutil.rmtree(stage, ignore_errors=True)


def clean(root: Path) -> int:
    """Remove the results cache (``.cache/``) and ``build/`` but its lock; the exit status."""
    shutil.rmtree(root / ".cache", ignore_errors=True)
    for path in (root / "build").iterdir():
        if path.name != "run.lock":
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status (128 + a signal's number)."""
    jobs = min(2, CORES)  # each notebook also spreads its fits over the cores
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true", help="run on the test fixture")
    mode.add_argument("--clean", action="store_true", help="remove .cache/ and build/")
    parser.add_argument("--jobs", type=int, default=jobs, help=f"at a time (default: {jobs})")
    parser.add_argument("--root", type=Path, default=ROOT, help="the project (default: this one)")
    parser.add_argument("notebooks", nargs="*", help="names of notebooks to run (default: all)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs: expected a whole number of at least 1, got {args.jobs}")
    root = args.root.resolve()
    notebooks = study_notebooks(root / "notebooks", args.notebooks)
    destination = root / "build" / "smoke" if args.smoke else root
    problem = folder_problem(root, destination) or (None if args.clean else loopback_problem())
    if problem:
        progress(f"error: {problem}. Nothing was run.")
        return 1
    (root / "build").mkdir(exist_ok=True)
    # INT, TERM and HUP raise Stopped, unless ignored (nohup); the previous handlers come back.
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum, handler in previous.items():
        if handler != signal.SIG_IGN:
            signal.signal(signum, raise_stopped)
    try:
        with FileLock(root / "build" / "run.lock", timeout=0):
            return clean(root) if args.clean else run(args, root, notebooks)
    except Timeout:
        progress(
            f"error: the notebooks are being run in {root} (build/run.lock is held); "
            "wait for that run to end, or stop it."
        )
        return 1
    except Stopped as stopped:
        where = "build/smoke" if args.smoke else "notebooks/ or readme_images/"
        progress(f"interrupted ({stopped}): nothing under {where} was changed.")
        return 128 + stopped.signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    if sys.platform == "linux":  # make SIGKILLed: a hang-up for the runner (unless nohup'd)
        ctypes.CDLL(None).prctl(1, signal.SIGHUP)  # PR_SET_PDEATHSIG: one system call, no library
    sys.exit(main())
