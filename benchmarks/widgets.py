"""``make bench-widgets``: the widgets' starts and answers, and the dataset read from its cache.

- The drawing widget (stage 8): its models are fitted into an empty cache once (cold start), then
  a new process reads them back with the data (warm start: what `Run All` waits for before the
  widget appears). Then the 5 and the 1 of the browser test are drawn stroke by stroke, again and
  again, on a widget without a browser, timing each answer: preparing the drawing, asking both
  models.
- The threshold explorer (stage 2): the cross-validated scores it explores are computed into an
  empty cache once, then read back by a new process that builds the explorer. Then the slider is
  moved, without a browser, to thresholds spread over the whole range of the scores and to the
  notebook's three preset thresholds, again and again, timing each answer: counting, the
  measures and the two strips of images.
- ``load_mnist()`` reading and verifying the dataset cache, in a new process each time.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import cross_val_predict

from benchmarks.results import Meter, record, verdict
from mnist_study import drawing, settings
from mnist_study.cache import cached
from mnist_study.data import load_mnist
from mnist_study.digit_pad import DigitPad, fit_readers
from mnist_study.threshold_explorer import ThresholdExplorer

ANSWER_GOAL_S = 0.1
WARM_START_GOAL_S = 5.0
LOAD_GOAL_S = 1.0
STROKE_ROUNDS = 100
SLIDER_ROUNDS, SLIDER_MOVES = 20, 100  # rounds of moves to thresholds evenly spread over the scores
TIMED = "{}\nimport time\nt = time.perf_counter()\n{}\nprint(time.perf_counter() - t)"
LOAD = "from mnist_study.data import load_mnist"
PAD_START = (
    f"{LOAD}; from mnist_study.digit_pad import fit_readers; X, _, y, _ = load_mnist(); "
    "fit_readers(X, y)"
)
EXPLORER_START = (
    "from sklearn.linear_model import SGDClassifier; "
    "from sklearn.model_selection import cross_val_predict; "
    "from mnist_study.cache import cached; from mnist_study.data import load_mnist; "
    "from mnist_study.threshold_explorer import ThresholdExplorer; "
    "X, _, y, _ = load_mnist(); y5 = y == '5'; "
    "s = cached(cross_val_predict)(SGDClassifier(random_state=42), X, y5, cv=3, "
    "method='decision_function', n_jobs=-1); ThresholdExplorer(y5, s, X)"
)


def seconds(code: str, folder: str, setup: str = "") -> float:
    """The seconds ``code`` takes after ``setup`` in a new process with ``folder`` as its cache."""
    env = {**os.environ, settings.CACHE_DIR_ENV: folder}
    command = [sys.executable, "-c", TIMED.format(setup, code)]
    return float(
        subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    )


def timed(change: Callable[[Any], None], values: list) -> list[float]:
    """The seconds of ``change(value)`` for each value."""
    times = []
    for value in values:
        started = time.perf_counter()
        change(value)
        times.append(time.perf_counter() - started)
    return times


def stroke_answers(X_train: np.ndarray, y_train: np.ndarray) -> list[float]:
    """The time of each answer while the test strokes are drawn, ``STROKE_ROUNDS`` times over."""
    pad = DigitPad(fit_readers(X_train, y_train))

    def draw(strokes: list) -> None:
        pad.strokes = [list(map(list, stroke)) for stroke in strokes]

    drawings = [
        digit[:count] for digit in (drawing.FIVE, drawing.ONE) for count in range(1, len(digit) + 1)
    ]
    return timed(draw, drawings * STROKE_ROUNDS)


def slider_answers(X_train: np.ndarray, y_train: np.ndarray) -> list[float]:
    """The time of each answer to a slider move, ``SLIDER_ROUNDS`` times over."""
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
    spread = np.linspace(y_scores.min(), y_scores.max() + 1, SLIDER_MOVES)
    # each round ends on 0.5, so that the next round's first move is a move too
    thresholds = [*spread, 0.0, 3370.0, -2379.0, 0.5]

    def move(threshold: float) -> None:
        explorer.threshold = float(threshold)

    return timed(move, thresholds * SLIDER_ROUNDS)


def answers(name: str, what: str, times: list[float]) -> str:
    """The line on a widget's answers."""
    median, worst = statistics.median(times), max(times)
    return (
        f"- {name}: answer after {what}: median {1000 * median:.1f} ms, slowest "
        f"{1000 * worst:.1f} ms of {len(times):,} (goal < {1000 * ANSWER_GOAL_S:.0f} ms): "
        + verdict(worst < ANSWER_GOAL_S)
    )


def starts(name: str, cold: str, times: list[float]) -> str:
    """The line on a widget's starts: the first (cold), then the second (warm)."""
    warm = times[1]
    return (
        f"- {name}: start, {cold}, {times[0]:.1f} s; warm start, read from the cache, {warm:.1f} s "
        f"(goal ≤ {WARM_START_GOAL_S:.0f} s): {verdict(warm <= WARM_START_GOAL_S)}"
    )


def main() -> None:
    """Measure and record."""
    meter = Meter()
    with tempfile.TemporaryDirectory(prefix="mnist-bench-widgets-") as cache:
        pad = [seconds(PAD_START, cache) for _ in range(2)]
        explorer = [seconds(EXPLORER_START, cache) for _ in range(2)]
        os.environ[settings.CACHE_DIR_ENV] = cache
        X_train, _, y_train, _ = load_mnist()
        strokes, moves = stroke_answers(X_train, y_train), slider_answers(X_train, y_train)
        # imports and a first read done, as in a notebook that reads the data again
        loads = [seconds("load_mnist()", cache, f"{LOAD}; load_mnist()") for _ in range(5)]
    load = statistics.median(loads)
    record(
        [
            *meter.header("bench-widgets"),
            starts("drawing widget (stage 8)", "models fitted into an empty cache", pad),
            answers(
                "drawing widget", "a stroke (the drawing prepared, both models asked)", strokes
            ),
            starts(
                "threshold explorer (stage 2)",
                "scores cross-validated into an empty cache",
                explorer,
            ),
            answers("threshold explorer", "a slider move (counts, measures, image strips)", moves),
            f"- `load_mnist()` from the verified cache: {load:.2f} s (median of {len(loads)}; "
            f"goal < {LOAD_GOAL_S:.0f} s): {verdict(load < LOAD_GOAL_S)}",
        ]
    )


if __name__ == "__main__":
    main()
