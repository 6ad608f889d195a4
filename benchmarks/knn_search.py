"""``make bench-knn``: the book's KNN grid search on all 60,000 training images, two ways.

The book's plain ``GridSearchCV`` (every candidate of a fold finds its neighbours anew), then
``mnist_study.knn_search``'s search with each fold's neighbours found once, both on every core and
without the disk cache (cold); then whether their mean fold scores are the same.
"""

import joblib
import numpy as np
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier

from benchmarks.results import TABLE, Meter, record, verdict
from mnist_study import knn_search
from mnist_study.data import load_mnist

# The shared-neighbours search: at least this many times faster than the plain one, and at most
# this many seconds, cold on the machine measured.
SPEEDUP_GOAL = 5.0
SECONDS_GOAL = 120.0


def main() -> None:
    """Time both searches, compare their scores, record."""
    meter = Meter()
    X_train, _, y_train, _ = load_mnist()
    X_float = X_train.astype(np.float64)  # the book's pixels, as fetch_openml gives them
    book = GridSearchCV(
        KNeighborsClassifier(), knn_search.BOOK_GRID, cv=knn_search.FOLDS, refit=False
    )
    with meter.step("plain `GridSearchCV`, 60,000 images"), joblib.parallel_config(n_jobs=-1):
        plain = book.fit(X_float, y_train)
    del X_float  # not counted in the second search's memory
    with meter.step("shared neighbours, 60,000 images"):
        shared = knn_search.compute_neighbour_search(X_train, y_train)
    same = np.array_equal(
        plain.cv_results_["mean_test_score"], shared.cv_results_["mean_test_score"]
    )
    plain_row, shared_row = meter.rows
    speedup = plain_row.wall / shared_row.wall
    record(
        [
            *meter.header("bench-knn"),
            *TABLE,
            *(row.line() for row in meter.rows),
            "",
            f"- plain / shared neighbours = {speedup:.1f}× (goal ≥ {SPEEDUP_GOAL:g}×): "
            + verdict(speedup >= SPEEDUP_GOAL),
            f"- shared neighbours, cold: {shared_row.wall:.0f} s (goal ≤ {SECONDS_GOAL:.0f} s): "
            + verdict(shared_row.wall <= SECONDS_GOAL),
            f"- both give the same mean fold scores: {same}; best {shared.best_params_}, "
            f"mean validation accuracy {shared.best_score_:.4f}",
        ]
    )


if __name__ == "__main__":
    main()
