"""The study's named estimators and their expensive results, computed once and cached on disk.

joblib keys every cached call on the cached function's code and its arguments' contents (the
estimator, hence its parameters, and the arrays), so a changed parameter or sample is never served
a stale result. What joblib does not see is keyed once, in the cache's location
(``.cache/joblib/<key>/``, or under ``$MNIST_STUDY_CACHE_DIR``): the versions of the numerical
libraries, and a digest of the source of this module, ``features.py`` and ``drawing.py``. The
digest is there because joblib hashes a function referenced by an argument
(``features.float_pixels`` inside a ``FunctionTransformer``, the ``VirtualSupportVectors`` class)
or called by a cached function (such as ``features.image_moments`` under ``deskew``, or
``drawing.prepare`` under ``drawing.redraw``) by its name only: an edit of those modules or an
upgrade opens a fresh cache instead of reusing results. Keying the location rather than passing
the versions and the digest as extra arguments keeps every cached function's signature its own;
``make clean`` removes the folders of former keys. A cache entry that cannot be read back is
recomputed silently. Notebooks that run side by side and need the same result do not both compute
it: the first holds a lock on that call while it computes, the other waits and reads the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import scipy
import sklearn
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import BaseEnsemble, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline

from mnist_study import settings

__all__ = [
    "cross_val_output",
    "fit_predict",
    "fit_predict_many",
    "fitted",
    "fold_scores",
    "random_forest",
    "run_cached",
    "sgd_classifier",
]

LIBRARY_VERSIONS = {
    "scikit-learn": sklearn.__version__,
    "numpy": np.__version__,
    "scipy": scipy.__version__,
    "joblib": joblib.__version__,
}
# The modules whose code runs inside cached calls unseen by joblib's key (see above).
KEYED_SOURCES = ("models.py", "features.py", "drawing.py")
# Estimators one fit of which spreads over the cores (see ``spreading_param``).
SPREAD_INSIDE = (
    BaseEnsemble,
    KNeighborsClassifier,
    KNeighborsRegressor,
    OneVsOneClassifier,
    OneVsRestClassifier,
)
SOURCE_DIGEST = hashlib.sha256(
    b"".join(Path(__file__).with_name(name).read_bytes() for name in KEYED_SOURCES)
).hexdigest()


def sgd_classifier() -> SGDClassifier:
    """The book's linear classifier: stochastic gradient descent with library defaults."""
    return SGDClassifier(random_state=42)


def random_forest() -> RandomForestClassifier:
    """The book's random forest (100 trees); the cached fits grow its trees on every core."""
    return RandomForestClassifier(random_state=42)


def cache_key() -> str:
    """The cache folder's name: the library versions and the digest of the keyed sources."""
    versions = "-".join(f"{name}-{version}" for name, version in LIBRARY_VERSIONS.items())
    return f"{versions}-source-{SOURCE_DIGEST[:12]}"


@cache
def memory() -> joblib.Memory:
    """The joblib disk cache of the study's expensive results, in the folder of this key."""
    return joblib.Memory(settings.cache_dir() / "joblib" / cache_key(), verbose=0)


def lock_name(function: Callable[..., Any], args: tuple[Any, ...]) -> str:
    """A file name for the lock of one cached call, cheap to compute.

    Arrays stand in by their shape and type rather than their contents: two calls that differ
    only in the contents of same-shaped arrays share a lock, which makes one wait for the other
    but never mixes their results (the cache itself keys on the contents).
    """
    summary = [(arg.shape, arg.dtype.str) if isinstance(arg, np.ndarray) else arg for arg in args]
    return f"{function.__module__}.{function.__qualname__}-{joblib.hash(summary)}.lock"


@contextlib.contextmanager
def call_lock(name: str) -> Iterator[None]:
    """Hold an exclusive lock on ``name`` in the cache folder (no-op where flock is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    folder = Path(memory().location) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def readable_entry(record: logging.LogRecord) -> bool:
    """False for joblib's report of a cache entry it could not read (it then recomputes it)."""
    return "Exception while loading results" not in record.getMessage()


def run_cached(function: Callable[..., Any], *args: Any) -> Any:
    """Call ``function(*args)`` through the disk cache.

    While one process computes a call, another asking for the same call waits for the cached
    result. Nothing printed depends on whether the result was computed or read back: a damaged
    entry is recomputed without joblib's report of it, and scikit-learn's convergence warnings
    are silenced (in its worker processes too), since a result read back could not repeat them.
    """
    joblib_log = logging.getLogger("joblib")
    with call_lock(lock_name(function, args)), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        joblib_log.addFilter(readable_entry)
        try:
            return memory().cache(function)(*args)
        finally:
            joblib_log.removeFilter(readable_entry)


def spreading_param(estimator: BaseEstimator, y: np.ndarray) -> str | None:
    """The parameter that spreads one fit of ``estimator`` on ``y`` over the cores, if one can.

    A forest grows its trees, a KNN searches neighbours, a one-versus-one or one-versus-rest
    wrapper and ``SGDClassifier`` on more than two classes fit their binary models side by side.
    Their ``n_jobs`` changes no result. ``joblib.parallel_config`` does not reach these (they
    pass ``n_jobs`` on, or ask for threads), so it is set on a copy of the estimator.
    """
    name, final = estimator.steps[-1] if isinstance(estimator, Pipeline) else ("", estimator)
    spreads = isinstance(final, SPREAD_INSIDE) or (
        isinstance(final, SGDClassifier) and np.ndim(y) == 1 and len(np.unique(y)) > 2
    )
    if not spreads or "n_jobs" not in final.get_params(deep=False):  # boosting grows in turn
        return None
    return f"{name}__n_jobs" if name else "n_jobs"


def on_every_core(estimator: BaseEstimator, y: np.ndarray) -> BaseEstimator:
    """A fresh copy of ``estimator`` whose every fit on ``y`` uses all the cores it can."""
    copy = clone(estimator)
    param = spreading_param(estimator, y)
    return copy.set_params(**{param: -1}) if param else copy


def compute_cross_val_output(
    estimator: BaseEstimator, X: np.ndarray, y: np.ndarray, method: str, cv: int
) -> np.ndarray:
    """``cross_val_predict(estimator, X, y, cv=cv, method=method)``, on every core.

    An integer ``cv`` gives the book's folds: unshuffled ``StratifiedKFold`` for a classifier of
    one label, plain ``KFold`` for several labels (stratifying needs a single one). Every core
    is used, inside each fit where one fit can spread (the folds then run one after the other,
    none left alone on a core), else by the folds; the result does not depend on how many.
    """
    if spreading_param(estimator, y):
        return cross_val_predict(on_every_core(estimator, y), X, y, cv=cv, method=method, n_jobs=1)
    with joblib.parallel_config(n_jobs=-1):
        return cross_val_predict(estimator, X, y, cv=cv, method=method)


def cross_val_output(
    estimator: BaseEstimator, X: np.ndarray, y: np.ndarray, method: str = "predict", cv: int = 3
) -> np.ndarray:
    """Cross-validated ``method`` output (as ``cross_val_predict``), computed once and cached."""
    return run_cached(compute_cross_val_output, estimator, X, y, method, cv)


def compute_fitted(estimator: BaseEstimator, X: np.ndarray, y: np.ndarray) -> BaseEstimator:
    """A fresh copy of ``estimator`` fitted on ``X``, ``y`` on every core it can use.

    The copy keeps the ``n_jobs`` of ``estimator`` for its later answers (one drawing at a time
    answers faster on one core).
    """
    model = on_every_core(estimator, y)
    with joblib.parallel_config(n_jobs=-1):
        model.fit(X, y)
    param = spreading_param(estimator, y)
    return model.set_params(**{param: estimator.get_params()[param]}) if param else model


def fitted(estimator: BaseEstimator, X: np.ndarray, y: np.ndarray) -> BaseEstimator:
    """A copy of ``estimator`` fitted on ``X``, ``y``, for a model that answers later (cached)."""
    return run_cached(compute_fitted, estimator, X, y)


def compute_fit_predict(
    estimator: BaseEstimator,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: Sequence[Any],
    batch: int | None,
) -> tuple[np.ndarray, int]:
    """Fit a copy of ``estimator``, predict ``X_test`` ``batch`` images at a time (None: all).

    Returns the predictions and the number of images the fit used (``n_training_images_`` if
    the fitted estimator says, as ``features.VirtualSupportVectors`` does). Batches change no
    prediction, each image's being its own, but bound the memory of a KNN with many outputs.
    """
    step = max(batch or len(X_test), 1)
    with joblib.parallel_config(n_jobs=-1):
        fitted = on_every_core(estimator, y_train).fit(X_train, y_train)
        parts = [fitted.predict(X_test[at : at + step]) for at in range(0, len(X_test), step)]
    return np.concatenate(parts), getattr(fitted, "n_training_images_", len(X_train))


def fit_predict(
    estimator: BaseEstimator,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: Sequence[Any],
    batch: int | None = None,
) -> np.ndarray:
    """Fit a fresh copy of ``estimator`` on the training data and predict ``X_test`` (cached)."""
    predictions, _ = run_cached(compute_fit_predict, estimator, X_train, y_train, X_test, batch)
    return predictions


def fit_predict_many(
    estimators: Mapping[str, BaseEstimator],
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
) -> dict[str, tuple[np.ndarray, int]]:
    """``fit_predict`` of each estimator, side by side on the cores, with its training images.

    For estimators that fit on one core (an SVC): one fit per core. Each value is the pair
    ``(predictions, images the fit used)``; the results share ``fit_predict``'s cache.
    """
    results = Parallel(n_jobs=-1)(
        delayed(run_cached)(compute_fit_predict, estimator, X_train, y_train, X_test, None)
        for estimator in estimators.values()
    )
    return dict(zip(estimators, results, strict=True))


def fold_scores(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    score: Callable[[np.ndarray, np.ndarray], float],
    cv: int = 3,
) -> np.ndarray:
    """Per-fold scores of cross-validated predictions, on the folds ``cross_val_score`` uses."""
    folds = StratifiedKFold(cv).split(np.zeros(len(y_true)), y_true)
    return np.array([score(y_true[test], y_pred[test]) for _, test in folds])
