"""The book's KNN grid search on all 60,000 training images: plain, or with shared neighbours.

``python -m benchmarks.knn_search plain|shared SCORES.npy``: runs one of the two searches of
``mnist_study.knn_search`` without the disk cache (cold) and saves its mean fold scores, so that
``make bench`` can time both side by side and check that they agree.
"""

from __future__ import annotations

import sys

import numpy as np

from mnist_study import knn_search
from mnist_study.data import load_mnist

SEARCHES = {
    "plain": knn_search.compute_book_search,
    "shared": knn_search.compute_neighbour_search,
}


def main() -> int:
    """Run the search named on the command line; save its mean fold scores."""
    if len(sys.argv) != 3 or sys.argv[1] not in SEARCHES:
        print(f"usage: python -m benchmarks.knn_search {'|'.join(SEARCHES)} SCORES.npy")
        return 2
    X_train, _, y_train, _ = load_mnist()
    search = SEARCHES[sys.argv[1]](X_train, y_train)
    print(f"  {sys.argv[1]}: best {search.best_params_}, score {search.best_score_!r}")
    np.save(sys.argv[2], search.cv_results_["mean_test_score"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
