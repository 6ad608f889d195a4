"""The threshold explorer's speed (stage 2): its warm start and the answer after a slider move.

The cross-validated scores it explores are computed into an empty cache once (cold), then a new
process reads them back with the data and builds the explorer (warm start: what `Run All` waits
for before the widget appears). Then the slider is moved, without a browser, to thresholds spread
over the whole range of the scores and to the notebook's three preset thresholds, again and
again, timing each answer: counting, the measures and the two strips of images.

    python -m benchmarks.threshold_explorer
"""

from __future__ import annotations

import statistics
import tempfile
import time

import numpy as np

from benchmarks.widget_timing import cache_folder, start_seconds, verdict

ANSWER_TARGET_S = 0.1
WARM_START_TARGET_S = 5.0
ROUNDS = 20
MOVES = 100  # thresholds per round, evenly spread between the lowest and the highest score
START = (
    "import time; t = time.perf_counter(); "
    "from sklearn.linear_model import SGDClassifier; "
    "from sklearn.model_selection import cross_val_predict; "
    "from mnist_study.cache import cached; from mnist_study.data import load_mnist; "
    "from mnist_study.threshold_explorer import ThresholdExplorer; "
    "X, _, y, _ = load_mnist(); y5 = y == '5'; "
    "s = cached(cross_val_predict)(SGDClassifier(random_state=42), X, y5, cv=3, "
    "method='decision_function', n_jobs=-1); ThresholdExplorer(y5, s, X); "
    "print(time.perf_counter() - t)"
)


def answer_seconds(folder: str) -> list[float]:
    """The time of each answer to a slider move, ``ROUNDS`` times over ``MOVES`` thresholds."""
    from sklearn.linear_model import SGDClassifier
    from sklearn.model_selection import cross_val_predict

    from mnist_study.cache import cached
    from mnist_study.data import load_mnist
    from mnist_study.threshold_explorer import ThresholdExplorer

    with cache_folder(folder):
        X_train, _, y_train, _ = load_mnist()
        y_train_5 = y_train == "5"
        y_scores = cached(cross_val_predict)(
            SGDClassifier(random_state=42),
            X_train,
            y_train_5,
            cv=3,
            method="decision_function",
            n_jobs=-1,
        )
    explorer = ThresholdExplorer(y_train_5, y_scores, X_train)
    thresholds = [*np.linspace(y_scores.min(), y_scores.max() + 1, MOVES), 0.0, 3370.0, -2379.0]
    times = []
    for _ in range(ROUNDS):
        for threshold in thresholds:
            started = time.perf_counter()
            explorer.threshold = float(threshold)
            times.append(time.perf_counter() - started)
        explorer.threshold = 0.5  # the next round's first move is a move too
    return times


def verdicts() -> list[str]:
    """Measure; the result lines for ``benchmarks/RESULTS.md``."""
    with tempfile.TemporaryDirectory(prefix="mnist-bench-threshold-") as cache:
        cold = start_seconds(START, cache)
        warm = start_seconds(START, cache)
        times = answer_seconds(cache)
    median, worst = statistics.median(times), max(times)
    return [
        f"- threshold explorer (stage 2): start, scores cross-validated into an empty cache, "
        f"{cold:.1f} s; warm start, scores read from the cache, {warm:.1f} s "
        f"(target ≤ {WARM_START_TARGET_S:.0f} s): {verdict(warm <= WARM_START_TARGET_S)}",
        f"- threshold explorer: answer after a slider move (counts, measures and image strips; "
        f"{len(times)} answers) median {1000 * median:.1f} ms, slowest {1000 * worst:.1f} ms "
        f"(target < {1000 * ANSWER_TARGET_S:.0f} ms): {verdict(worst < ANSWER_TARGET_S)}",
    ]


if __name__ == "__main__":
    print("\n".join(verdicts()))
