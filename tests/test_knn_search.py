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
    X, y = small_data
    plain = knn_search.book_search(X, y)
    shared = knn_search.neighbour_search(X, y)
    assert plain.cv_results_["params"] == shared.cv_results_["params"]
    assert len(plain.cv_results_["params"]) == 8
    for fold in range(knn_search.FOLDS):
        key = f"split{fold}_test_score"
        np.testing.assert_array_equal(plain.cv_results_[key], shared.cv_results_[key])
    np.testing.assert_array_equal(
        plain.cv_results_["mean_test_score"], shared.cv_results_["mean_test_score"]
    )
    assert plain.best_params_ == shared.best_params_
    assert plain.best_score_ == shared.best_score_


def test_each_folds_neighbours_are_found_once(small_data, monkeypatch) -> None:
    X, y = small_data
    calls: list[int] = []
    real = KNeighborsTransformer.transform

    def counting(self, X_query):
        calls.append(len(X_query))
        return real(self, X_query)

    monkeypatch.setattr(KNeighborsTransformer, "transform", counting)
    first = knn_search.neighbour_search(X, y)
    assert calls == [len(X) // knn_search.FOLDS] * knn_search.FOLDS, "one query per fold"
    again = knn_search.neighbour_search(X, y)
    assert len(calls) == knn_search.FOLDS, "the second call is read from the cache"
    assert first.best_params_ == again.best_params_


def test_the_shared_search_scores_as_notebook_06_writes_the_books_search(small_data) -> None:
    """Notebook 06 writes the book's search itself, on float pixels: the same 40 fold scores."""
    X, y = small_data
    book = GridSearchCV(KNeighborsClassifier(), knn_search.BOOK_GRID, cv=5)
    book.fit(X.astype(np.float64), y)
    shared = knn_search.neighbour_search(X.astype(np.float64), y)
    assert book.cv_results_["params"] == shared.cv_results_["params"]
    for fold in range(knn_search.FOLDS):
        key = f"split{fold}_test_score"
        np.testing.assert_array_equal(book.cv_results_[key], shared.cv_results_[key])
    assert book.best_params_ == shared.best_params_
