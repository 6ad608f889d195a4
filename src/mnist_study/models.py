"""The study's named estimators and their expensive results, computed once and cached on disk.

Every cached function is keyed by joblib on its arguments: the estimator (hence its parameters)
and the arrays' contents, plus the versions of scikit-learn, numpy and scipy, so a changed
parameter, a different sample or an upgraded library is never served a stale result. The cache
lives in ``.cache/`` at the project root (or ``$MNIST_STUDY_CACHE_DIR``); ``make clean`` empties it.
Notebooks that run side by side and need the same result do not both compute it: the first holds
a lock on that call while it computes, the other waits and then reads the result from the cache.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import scipy
import sklearn
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import BaseEnsemble, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline

from mnist_study import settings

__all__ = [
    "cross_val_output",
    "fit_predict",
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


def sgd_classifier() -> SGDClassifier:
    """The book's linear classifier: stochastic gradient descent with library defaults."""
    return SGDClassifier(random_state=42)


def random_forest() -> RandomForestClassifier:
    """The book's random forest (100 trees); the cached fits grow its trees on every core."""
    return RandomForestClassifier(random_state=42)


@cache
def memory() -> joblib.Memory:
    """The joblib disk cache of the study's expensive results."""
    return joblib.Memory(settings.cache_dir() / "joblib", verbose=0)


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


def run_cached(function: Callable[..., Any], *args: Any) -> Any:
    """Call ``function(*args, library_versions)`` through the disk cache.

    joblib keys the result on the function's code and every argument's contents; the library
    versions are passed as an argument so that an upgrade recomputes instead of reusing. While
    one process computes a call, another asking for the same call waits for the cached result.
    scikit-learn's convergence warnings are silenced (in its worker processes too): a result read
    back from the cache could not repeat them, so a notebook's output would depend on the cache.
    """
    with call_lock(lock_name(function, args)), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return memory().cache(function)(*args, LIBRARY_VERSIONS)


def parallel_inside(estimator: BaseEstimator) -> bool:
    """Whether one fit of the estimator spreads over the cores itself (as a forest does)."""
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    return isinstance(final, BaseEnsemble | KNeighborsClassifier | KNeighborsRegressor)


def compute_cross_val_output(
    estimator: BaseEstimator,
    X: np.ndarray,
    y: np.ndarray,
    method: str,
    cv: int,
    library_versions: dict[str, str],
) -> np.ndarray:
    """``cross_val_predict`` on unshuffled stratified folds, as the book's ``cv=3`` does.

    Every core is used, by the folds or inside each fit; the result does not depend on how many.
    """
    with joblib.parallel_config(n_jobs=-1):
        return cross_val_predict(
            estimator,
            X,
            y,
            cv=StratifiedKFold(cv),
            method=method,
            n_jobs=1 if parallel_inside(estimator) else None,
        )


def cross_val_output(
    estimator: BaseEstimator, X: np.ndarray, y: np.ndarray, method: str = "predict", cv: int = 3
) -> np.ndarray:
    """Cross-validated ``method`` output (as ``cross_val_predict``), computed once and cached."""
    return run_cached(compute_cross_val_output, estimator, X, y, method, cv)


def compute_fit_predict(
    estimator: BaseEstimator,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    library_versions: dict[str, str],
) -> np.ndarray:
    """Fit a fresh copy of ``estimator`` and predict ``X_test``, on every core it can use."""
    with joblib.parallel_config(n_jobs=-1):
        return clone(estimator).fit(X_train, y_train).predict(X_test)


def fit_predict(
    estimator: BaseEstimator, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray
) -> np.ndarray:
    """Fit a fresh copy of ``estimator`` on the training data and predict ``X_test`` (cached)."""
    return run_cached(compute_fit_predict, estimator, X_train, y_train, X_test)


def fold_scores(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    score: Callable[[np.ndarray, np.ndarray], float],
    cv: int = 3,
) -> np.ndarray:
    """Per-fold scores of cross-validated predictions, on the folds ``cross_val_score`` uses."""
    folds = StratifiedKFold(cv).split(np.zeros(len(y_true)), y_true)
    return np.array([score(y_true[test], y_pred[test]) for _, test in folds])
