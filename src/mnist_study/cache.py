"""The study's disk cache: joblib's ``Memory``, so that a computation done once is read back after.

A notebook wraps a scikit-learn function once, ``cross_val_predict = cached(cross_val_predict)``,
and calls it as scikit-learn writes it. joblib keys each call on the function's code and the
contents of its arguments (the estimator with its parameters, the arrays), so a changed parameter
or sample is never served a stale result. ``fit`` and ``predict`` are ``model.fit(X, y)`` and
``model.predict(X)`` written as functions, so that a fitted model and its answers can be kept too.

What is added to joblib's own cache, each because joblib does not do it:

- the folder is named after the numerical libraries' versions (Pillow's too: ``drawing.redraw``
  depends on its resampling) and a digest of the study's modules whose functions run inside cached
  calls (joblib keys a function passed as an argument, such as ``features.unit_pixels`` in a
  ``FunctionTransformer``, by its name only): an upgrade or an edit opens a fresh folder, and the
  folders of older keys are removed then;
- a process computing a call holds a lock (``filelock``) that makes another process asking for the
  same call wait and read the result, instead of computing it a second time;
- a cache folder that cannot be created gives one warning naming it, and the results are computed
  and used without being kept.

Entries are written compressed (``compress=True``): zlib checks each entry's checksum as it is read,
so a damaged entry fails to load, and joblib then warns and computes it again; it never is used.
Each entry is written to a temporary file and renamed, so a failed write leaves no entry.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import filelock
import joblib
import numpy as np
import PIL
import scipy
import sklearn
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
    "pillow": PIL.__version__,
}
# The modules whose functions run inside cached calls unseen by joblib's key (see above):
# features.py in pipelines, drawing.py and knn_search.py under their cached entry points, and
# stats.py for stats.recall_at_precision, the scorer of notebook 02's cached threshold tuning.
KEYED_SOURCES = ("features.py", "drawing.py", "knn_search.py", "stats.py")
SOURCE_DIGEST = hashlib.sha256(
    b"".join(Path(__file__).with_name(name).read_bytes() for name in KEYED_SOURCES)
).hexdigest()

Function = TypeVar("Function", bound=Callable[..., Any])


class CacheNotWritten(UserWarning):
    """The cache folder could not be created: results are computed and used, not kept."""


@functools.cache
def not_written(folder: Path, strerror: str) -> None:
    """Warn, once per process, folder and cause, that the cache folder cannot keep results."""
    warnings.warn(
        f"results are not kept in the cache folder {folder} ({strerror}); they are computed and "
        f"used as usual. Make the folder writable, or set {settings.CACHE_DIR_ENV} to another.",
        CacheNotWritten,
        stacklevel=4,
    )


def cache_key() -> str:
    """The cache folder's name: the library versions and the digest of the keyed sources."""
    versions = "-".join(f"{name}-{version}" for name, version in LIBRARY_VERSIONS.items())
    return f"{versions}-source-{SOURCE_DIGEST[:12]}"


def memory() -> joblib.Memory:
    """The joblib disk cache of the study's results, in ``.cache/joblib/<key>/`` (or as set).

    Read when asked, so that a changed ``MNIST_STUDY_CACHE_DIR`` takes effect at the next call. The
    first call under a new key removes the folders of the keys before it.
    """
    location = settings.cache_dir() / "joblib" / cache_key()
    try:
        if not location.is_dir():
            location.mkdir(parents=True, exist_ok=True)  # two notebooks may start at once
            for older in location.parent.iterdir():
                if older != location and older.is_dir():
                    shutil.rmtree(older, ignore_errors=True)
    except OSError as error:
        not_written(location, error.strerror or str(error))
        return joblib.Memory(None, verbose=0)
    return joblib.Memory(location, compress=True, verbose=0)


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
def call_lock(store: joblib.Memory, name: str) -> Iterator[None]:
    """Hold the lock of one call; go without where the cache folder cannot hold a lock file."""
    if store.location is None:
        yield
        return
    folder = Path(store.location) / "locks"
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
        store = memory()
        memorized = store.cache(function)
        memorized._func_code_info = source  # joblib has no public way to give it the source
        with call_lock(store, lock_name(function, args, kwargs)), warnings.catch_warnings():
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
