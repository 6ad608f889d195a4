"""The study's disk cache: joblib's ``Memory``, so that a computation done once is read back after.

A notebook wraps a scikit-learn function once, ``cross_val_predict = cached(cross_val_predict)``,
and calls it as scikit-learn writes it. joblib keys each call on the function's code and the
contents of its arguments (the estimator with its parameters, the arrays), so a changed parameter
or sample is never served a stale result. ``fit`` and ``predict`` are ``model.fit(X, y)`` and
``model.predict(X)`` written as functions, so that a fitted model and its answers can be kept too.

Three things are added to joblib's own cache, each because joblib does not do it:

- the folder is named after the numerical libraries' versions and a digest of the study's modules
  whose functions run inside cached calls (joblib keys a function passed as an argument, such as
  ``features.float_pixels`` in a ``FunctionTransformer``, by its name only): an upgrade or an edit
  opens a fresh folder instead of reusing results;
- each entry is written with its SHA-256 digest and read back only if the digest still matches:
  a damaged entry is computed again, never used;
- a process computing a call holds a lock (``filelock``) that makes another process asking for the
  same call wait and read the result, instead of computing it a second time.

A cache folder that cannot be written (read-only, a full disk) gives one warning naming it, and
the results are computed and used without being kept.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import filelock
import joblib
import numpy as np
import scipy
import sklearn
from joblib._store_backends import FileSystemStoreBackend
from joblib.func_inspect import get_func_code
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import ConvergenceWarning

from mnist_study import settings

__all__ = ["CacheNotWritten", "cached", "fit", "memory", "predict"]

LIBRARY_VERSIONS = {
    "scikit-learn": sklearn.__version__,
    "numpy": np.__version__,
    "scipy": scipy.__version__,
    "joblib": joblib.__version__,
}
# The modules whose functions run inside cached calls unseen by joblib's key (see above).
# stats.recall_at_precision runs inside stage 2's cached cross-validation too: stats.py joins this
# list with the next change of the key, since any change recomputes every result.
KEYED_SOURCES = ("features.py", "drawing.py", "knn_search.py", "multilabel.py")
SOURCE_DIGEST = hashlib.sha256(
    b"".join(Path(__file__).with_name(name).read_bytes() for name in KEYED_SOURCES)
).hexdigest()
DIGEST_FILE = "output.sha256"

Function = TypeVar("Function", bound=Callable[..., Any])


class CacheNotWritten(UserWarning):
    """The cache folder could not be written: results are computed and used, not kept."""


@functools.cache
def not_written(strerror: str) -> None:
    """Warn, once per process and cause, that the cache folder cannot keep results."""
    warnings.warn(
        f"results are not kept in the cache folder {settings.cache_dir()} ({strerror}); they are "
        "computed and used as usual. Free some space or make the folder writable, or set "
        f"{settings.CACHE_DIR_ENV} to another folder.",
        CacheNotWritten,
        stacklevel=4,
    )


def file_digest(path: str) -> str:
    """The SHA-256 digest of a file's bytes."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class CheckedStore(FileSystemStoreBackend):
    """joblib's file store, each entry written with its digest and trusted only if it matches."""

    def configure(self, location, verbose=1, backend_options=None):
        """Open the store; a folder that cannot be created is warned about, not fatal."""
        try:
            super().configure(location, verbose, backend_options)
        except OSError as error:
            self.location = location
            self.compress, self.mmap_mode, self.verbose = False, None, verbose
            not_written(error.strerror or str(error))

    def dump_item(self, call_id, item, verbose=1):
        """Write the entry, then its digest; a failed write leaves no entry behind."""
        folder = os.path.join(self.location, *call_id)
        output = os.path.join(folder, "output.pkl")
        try:
            self.create_location(folder)
            self._concurrency_safe_write(item, output, lambda obj, name: joblib.dump(obj, name))
            digest = file_digest(output)
            self._concurrency_safe_write(digest, os.path.join(folder, DIGEST_FILE), write_text)
        except OSError as error:
            self.clear_item(call_id)
            not_written(error.strerror or str(error))

    def contains_item(self, call_id):
        """True if the entry is there and its bytes are those that were written."""
        folder = os.path.join(self.location, *call_id)
        try:
            with open(os.path.join(folder, DIGEST_FILE)) as handle:
                intact = handle.read() == file_digest(os.path.join(folder, "output.pkl"))
        except OSError:
            return False
        if not intact:
            self.clear_item(call_id)
        return intact

    def store_cached_func_code(self, call_id, func_code=None):
        """Record the cached function's code (joblib's check that it is unchanged), if possible."""
        try:
            super().store_cached_func_code(call_id, func_code)
        except OSError as error:
            not_written(error.strerror or str(error))

    def clear_location(self, location):
        """Remove an entry or a function's entries, if the folder allows it."""
        with contextlib.suppress(OSError):
            super().clear_location(location)


def write_text(text: str, name: str) -> None:
    """Write ``text`` to the file ``name``."""
    Path(name).write_text(text)


joblib.register_store_backend("checked", CheckedStore)


def cache_key() -> str:
    """The cache folder's name: the library versions and the digest of the keyed sources."""
    versions = "-".join(f"{name}-{version}" for name, version in LIBRARY_VERSIONS.items())
    return f"{versions}-source-{SOURCE_DIGEST[:12]}"


@functools.cache
def memory() -> joblib.Memory:
    """The joblib disk cache of the study's results, in ``.cache/joblib/<key>/`` (or as set)."""
    location = settings.cache_dir() / "joblib" / cache_key()
    return joblib.Memory(location, backend="checked", verbose=0)


def stand_in(value: Any) -> Any:
    """What a lock's name says of one argument: an array's shape and type, a model's parameters."""
    if isinstance(value, np.ndarray):
        return value.shape, value.dtype.str
    if isinstance(value, BaseEstimator):
        return repr(value)  # its parameters; hashing a fitted model's arrays could take seconds
    return value


def lock_name(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict) -> str:
    """A lock file's name for one call, cheap to compute from the arguments' stand-ins.

    Two calls that differ only in the contents of their arrays or in a model's fitted state share
    a lock, which makes one wait for the other but never mixes their results (the cache keys on
    the contents).
    """
    summary = [stand_in(value) for value in args] + [
        (name, stand_in(value)) for name, value in sorted(kwargs.items())
    ]
    return f"{function.__module__}.{function.__qualname__}-{joblib.hash(summary)}.lock"


@contextlib.contextmanager
def call_lock(name: str) -> Iterator[None]:
    """Hold the lock of one call; go without where the cache folder cannot hold a lock file."""
    folder = Path(memory().location) / "locks"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(folder / name)
        lock.acquire()
    except OSError:
        yield
        return
    try:
        yield
    finally:
        lock.release()


def cached(function: Function) -> Function:
    """``function`` through the disk cache: same arguments, same result, computed once.

    Nothing printed depends on whether a result was computed or read back, so scikit-learn's
    convergence warnings are silenced inside (a result read back could not repeat them); the
    study prints what it needs to know about convergence (``n_iter_``) itself.
    """

    # joblib checks that a function is unchanged by reading its source from its file at each call;
    # read here, once, a process whose module file was replaced since it started (the package
    # reinstalled while a kernel runs) would otherwise take the new file's lines at the old line
    # numbers for a changed function, and delete all of its results.
    source = get_func_code(function)

    @functools.wraps(function)
    def through_cache(*args: Any, **kwargs: Any) -> Any:
        memorized = memory().cache(function)
        memorized._func_code_info = source  # joblib has no public way to give it the source
        with call_lock(lock_name(function, args, kwargs)), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return memorized(*args, **kwargs)

    return through_cache  # type: ignore[return-value]


@cached
def fit(estimator: BaseEstimator, X: Any, y: Any) -> BaseEstimator:
    """``estimator.fit(X, y)`` on a fresh copy, returned fitted (the form a cache can keep)."""
    return clone(estimator).fit(X, y)


@cached
def predict(model: BaseEstimator, X: Any) -> np.ndarray:
    """``model.predict(X)``, kept in the cache (for models slow to answer: KNN, SVM)."""
    return model.predict(X)
