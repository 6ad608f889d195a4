"""The book's KNN grid search: the shared-neighbours search scores exactly as the plain one."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier, KNeighborsTransformer

from mnist_study import knn_search


@pytest.fixture
def small_data(fixture_arrays):
    """1,000 training images of the fixture."""
    return fixture_arrays["X_train"][:1000], fixture_arrays["y_train"][:1000]


def test_shared_neighbours_give_the_plain_searchs_scores_and_choice(small_data) -> None:
    """The same fold scores and choice as the library's plain search and as notebook 06's."""
    X, y = small_data
    shared = knn_search.neighbour_search(X, y)
    notebook = GridSearchCV(KNeighborsClassifier(), knn_search.BOOK_GRID, cv=5)
    for plain in (knn_search.book_search(X, y), notebook.fit(X.astype(np.float64), y)):
        assert plain.cv_results_["params"] == shared.cv_results_["params"]
        for fold in range(knn_search.FOLDS):
            key = f"split{fold}_test_score"
            np.testing.assert_array_equal(plain.cv_results_[key], shared.cv_results_[key])
        assert (plain.best_params_, plain.best_score_) == (shared.best_params_, shared.best_score_)


def test_each_folds_neighbours_are_found_once(small_data, monkeypatch) -> None:
    """One neighbour query per fold for all eight candidates; a second call reads the cache."""
    X, y = small_data
    calls: list[int] = []
    transform = KNeighborsTransformer.transform
    monkeypatch.setattr(
        KNeighborsTransformer,
        "transform",
        lambda self, X: calls.append(len(X)) or transform(self, X),
    )
    first = knn_search.neighbour_search(X, y)
    assert calls == [len(X) // knn_search.FOLDS] * knn_search.FOLDS
    assert knn_search.neighbour_search(X, y).best_params_ == first.best_params_
    assert len(calls) == knn_search.FOLDS, "the second call is read from the cache"
