"""Where a run stages its files and how they are put in place: one run at a time, all or nothing."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tools.stop_signals import ignore_stop_signals

__all__ = ["PlacingError", "move_into_place", "one_run_at_a_time", "run_folder", "unwritable"]


class PlacingError(RuntimeError):
    """Files could not be moved into place; ``restored``: every target is as it was before."""

    def __init__(self, message: str, restored: bool) -> None:
        super().__init__(message)
        self.restored = restored


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


def try_lock(folder: Path) -> int | None:
    """An open descriptor of ``folder`` holding its lock, or None if another process holds it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except FileNotFoundError:  # removed meanwhile
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    return descriptor


@contextmanager
def run_folder(build: Path) -> Iterator[Path]:
    """A staging folder of this run's own, ``build/runs/<time>-<random>``, locked while it lasts.

    Runs never share a folder, so one cannot delete or move another's files. Folders whose lock
    is free belong to runs that have ended (a failed run keeps its folder for inspection) and
    are removed first.
    """
    runs = build / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    for old in runs.iterdir():
        descriptor = try_lock(old)
        if descriptor is not None:
            shutil.rmtree(old, ignore_errors=True)
            os.close(descriptor)
    stage = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=runs))
    descriptor = try_lock(stage)
    try:
        yield stage
    finally:
        if descriptor is not None:
            os.close(descriptor)


def unwritable(pairs: Sequence[tuple[Path, Path]], root: Path) -> list[str]:
    """What keeps the staged files from replacing their targets, one line each (checked first)."""
    problems = []
    for folder in sorted({target.parent for _, target in pairs}):
        name = folder.relative_to(root)
        if folder.exists() and not folder.is_dir():
            problems.append(f"{name}/ is a file, not a folder")
        elif folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            problems.append(f"{name}/ is not writable")
    for _, target in pairs:
        if target.is_dir():
            problems.append(f"{target.relative_to(root)} is a folder")
    return problems


def move_into_place(pairs: Sequence[tuple[Path, Path]], backup: Path, root: Path) -> None:
    """Move each staged file over its target, all or nothing.

    Each target that exists is first hard-linked into ``backup`` (so it is never missing). If a
    move fails, or a signal interrupts them, the targets already replaced are put back and the
    new ones removed; a failed move becomes :class:`PlacingError`, as does a target that could
    not be put back (whatever the cause), and a signal's exception otherwise goes on.
    """
    backup.mkdir(parents=True, exist_ok=True)
    done: list[tuple[Path, Path | None]] = []
    target = root
    try:
        for index, (staged, target) in enumerate(pairs):
            target.parent.mkdir(exist_ok=True)
            saved = None
            if target.exists():
                saved = backup / str(index)
                os.link(target, saved)
            os.replace(staged, target)
            done.append((target, saved))
    except BaseException as error:
        ignore_stop_signals()
        not_restored = restore(done)
        if isinstance(error, OSError):
            cause = f"could not write {target.relative_to(root)}: {error.strerror or error}"
        elif not_restored:
            cause = f"interrupted ({error}) while moving files into place"
        else:
            raise
        if not_restored:
            cause += (
                f"; and could not put back {', '.join(not_restored)} "
                f"(their previous versions are in {backup})"
            )
        raise PlacingError(cause, restored=not not_restored) from error


def restore(done: Sequence[tuple[Path, Path | None]]) -> list[str]:
    """Put back the previous version of each replaced target, remove new ones; the failures."""
    failed = []
    for target, saved in reversed(done):
        try:
            if saved is None:
                target.unlink()
            else:
                os.replace(saved, target)
        except OSError:
            failed.append(target.name)
    return failed
