"""The dataset's files on disk: the verified cache, its lock, and the scratch folders of a fetch.

The cache is one compressed ``.npz``, written to a temporary file and renamed into place, so an
interrupted run never leaves a file a later run would read; a cache that cannot be written is
reported and skipped. Parallel first fetches into one folder take turns (``fetch_lock``), and
SIGTERM or SIGHUP during a fetch removes its scratch folder before the process ends.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mnist_study import settings
from mnist_study.digests import DatasetSpec, verify
from mnist_study.formats import ARRAY_NAMES, Arrays, SourceError, arrays_from_npz

__all__ = [
    "CACHE_NAME",
    "fetch_lock",
    "read_cache",
    "scratch_files_removed_on_termination",
    "scratch_folder",
    "store",
    "write_cache",
]

CACHE_NAME = "mnist_784.npz"
logger = logging.getLogger(__name__)


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived while fetching: unwind, removing scratch files, then end."""


@contextlib.contextmanager
def scratch_files_removed_on_termination() -> Iterator[None]:
    """Let SIGTERM and SIGHUP unwind the block (removing scratch files), then act as before."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread can receive signals
        return

    def unwind(signum: int, _frame: object) -> None:
        raise Terminated(signum)

    wanted = [signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])]
    # A signal the process was told to ignore (as `nohup` ignores SIGHUP) stays ignored.
    wanted = [signum for signum in wanted if signal.getsignal(signum) != signal.SIG_IGN]
    previous = {signum: signal.signal(signum, unwind) for signum in wanted}
    received = None
    try:
        yield
    except Terminated as terminated:
        received = terminated.args[0]
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
    if received is not None:
        signal.raise_signal(received)  # the previous handler: by default, the process ends here
        raise SystemExit(128 + received)


@contextlib.contextmanager
def fetch_lock(data_dir: Path) -> Iterator[bool]:
    """Hold a lock on ``data_dir`` so that one process fetches while others wait; yield if waited.

    The lock is ``flock`` on the folder itself, so no lock file is left behind; where the folder
    cannot be opened or the platform has no ``flock``, the block runs unlocked.
    """
    try:
        import fcntl

        data_dir.mkdir(parents=True, exist_ok=True)
        handle = os.open(data_dir, os.O_RDONLY)
    except (ImportError, OSError):
        yield False
        return
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            waited = False
        except BlockingIOError:
            logger.info(f"waiting for another process that is fetching MNIST into {data_dir} …")
            fcntl.flock(handle, fcntl.LOCK_EX)
            waited = True
        yield waited
    finally:
        os.close(handle)  # releases the lock


def read_cache(cache: Path, spec: DatasetSpec) -> tuple[Arrays | None, str]:
    """The verified arrays of the cache, or None and why not (a corrupt cache is removed)."""
    if cache.is_dir():
        return None, f"{cache} is a folder, not a file: remove or rename it"
    if not cache.exists():
        return None, f"{cache} does not exist"
    try:
        arrays = arrays_from_npz(cache)
        verify(arrays, spec)
        return arrays, ""
    except SourceError as error:
        logger.warning(f"cache {cache} is corrupt ({error}); discarding it and fetching again")
        try:
            cache.unlink(missing_ok=True)
        except OSError as unlink_error:
            return None, f"corrupt ({error}) and cannot be removed ({unlink_error.strerror})"
        return None, f"corrupt, discarded: {error}"


def write_cache(arrays: Arrays, path: Path) -> None:
    """Write the arrays as a compressed ``.npz``: to a temporary file first, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez_compressed(stream, **{name: arrays[name] for name in ARRAY_NAMES})
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def why_not_written(error: OSError, path: Path) -> str:
    """What stopped writing ``path``, and what to do about it."""
    if isinstance(error, IsADirectoryError) or path.is_dir():
        return f"{path} is a folder: remove or rename it"
    if error.errno == errno.ENOSPC:
        return f"no space is left on the device of {path.parent}: free some space"
    if isinstance(error, PermissionError):
        return (
            f"{path.parent} is not writable: make it writable, or set {settings.DATA_DIR_ENV} "
            "to a folder you can write to"
        )
    return f"{type(error).__name__}: {error.strerror or error}"


def store(arrays: Arrays, cache: Path) -> None:
    """Cache verified arrays; if that fails, warn and go on (the arrays are still returned)."""
    try:
        write_cache(arrays, cache)
    except OSError as error:
        logger.warning(
            f"The verified data could not be cached ({why_not_written(error, cache)}); "
            "it is used uncached and will be fetched again next time."
        )
        return
    logger.info(f"cached it in {cache}")


@contextlib.contextmanager
def scratch_folder(data_dir: Path) -> Iterator[Path]:
    """A folder to download into: in ``data_dir``, or in the temp folder if that is not writable."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        scratch = tempfile.TemporaryDirectory(prefix=".fetch-", dir=data_dir)
    except OSError:
        scratch = tempfile.TemporaryDirectory(prefix="mnist-fetch-")
    with scratch as folder:
        yield Path(folder)
