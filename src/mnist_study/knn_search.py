"""The book's exercise 1: its grid search of a KNN classifier, each fold's neighbours found once.

The book searches ``n_neighbors`` in 3–6 and ``weights`` in uniform and distance with a 5-fold
``GridSearchCV``: 40 fits, each finding every test image's nearest training images anew, though
the 8 candidates of a fold need the same neighbours. ``neighbour_search`` finds each fold's
neighbours once (``KNeighborsTransformer``) and lets ``GridSearchCV`` score every candidate on
them (``KNeighborsClassifier(metric="precomputed")``, whose pairwise input scikit-learn cuts per
fold). scikit-learn's example on caching nearest neighbours (a ``Pipeline`` with ``memory``) does
not serve here: it caches the graph of a fold's *training* images, four times larger than its test
images', and finds the test images' neighbours again for every candidate.

The search is kept in the disk cache (``cache.cached``); the cached function is self-contained
(only scikit-learn inside), so joblib's key on its code covers what it computes.
"""

from __future__ import annotations

import warnings

import joblib
import numpy as np
from scipy import sparse
from sklearn.exceptions import EfficiencyWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier, KNeighborsTransformer

from mnist_study.cache import cached

__all__ = ["BOOK_GRID", "FOLDS", "neighbour_search"]

# The book's grid and folds (03_classification.ipynb, exercise 1, cell [90]).
BOOK_GRID = {"weights": ["uniform", "distance"], "n_neighbors": [3, 4, 5, 6]}
FOLDS = 5


def compute_neighbour_search(X: np.ndarray, y: np.ndarray) -> GridSearchCV:
    """The book's search with each fold's neighbours found once, for all its candidates.

    For each fold, ``KNeighborsTransformer`` finds every test image's nearest training images
    (as many as the largest ``n_neighbors``; it adds one in ``distance`` mode, for a sample that
    is its own neighbour). One sparse matrix holds them all, row and column numbers being image
    numbers; given it, ``GridSearchCV`` hands each candidate of a fold the rows of its test images
    and the columns of its training images, where the precomputed KNN reads their neighbours.
    """
    X = np.asarray(X, dtype=np.float64)
    folds = list(StratifiedKFold(FOLDS).split(X, y))
    largest = max(BOOK_GRID["n_neighbors"])
    rows, columns, distances = [], [], []
    with joblib.parallel_config(n_jobs=-1):
        for train, test in folds:
            graph = KNeighborsTransformer(n_neighbors=largest, mode="distance").fit(X[train])
            found = graph.transform(X[test]).tocoo()
            rows.append(test[found.row])
            columns.append(train[found.col])
            distances.append(found.data)
    neighbours = sparse.csr_matrix(
        (np.concatenate(distances), (np.concatenate(rows), np.concatenate(columns))),
        shape=(len(X), len(X)),
    )
    search = GridSearchCV(
        KNeighborsClassifier(metric="precomputed"), BOOK_GRID, cv=folds, refit=False
    )
    with warnings.catch_warnings():
        # each fold's slice of the matrix is re-sorted by distance, as it must be
        warnings.simplefilter("ignore", EfficiencyWarning)
        return search.fit(neighbours, y)


def neighbour_search(X: np.ndarray, y: np.ndarray) -> GridSearchCV:
    """The book's grid search with each fold's neighbours found once, cached."""
    return cached(compute_neighbour_search)(X, y)
