"""The drawing widget's speed (stage 8): its warm start and the answer after each stroke.

The widget's models are fitted into an empty cache once (cold), then a new process reads them
back with the data (warm start: what `Run All` waits for before the widget appears). Then the
5 and the 1 of the browser test are drawn stroke by stroke, again and again, on a widget without
a browser, timing each answer: preparing the drawing and asking both models.

    python -m benchmarks.drawing
"""

from __future__ import annotations

import statistics
import tempfile
import time

from benchmarks.widget_timing import cache_folder, start_seconds, verdict

ANSWER_TARGET_S = 0.1
WARM_START_TARGET_S = 5.0
ROUNDS = 100
START = (
    "import time; t = time.perf_counter(); from mnist_study.data import load_mnist; "
    "from mnist_study.digit_pad import fit_readers; X, _, y, _ = load_mnist(); fit_readers(X, y); "
    "print(time.perf_counter() - t)"
)


def answer_seconds(folder: str) -> list[float]:
    """The time of each answer while the test strokes are drawn, ``ROUNDS`` times over."""
    from mnist_study import drawing
    from mnist_study.data import load_mnist
    from mnist_study.digit_pad import DigitPad, fit_readers

    with cache_folder(folder):
        X_train, _, y_train, _ = load_mnist()
        pad = DigitPad(fit_readers(X_train, y_train))
    times = []
    for _ in range(ROUNDS):
        for digit in (drawing.FIVE, drawing.ONE):
            pad.strokes = []
            for count in range(1, len(digit) + 1):
                started = time.perf_counter()
                pad.strokes = [list(map(list, stroke)) for stroke in digit[:count]]
                times.append(time.perf_counter() - started)
    return times


def verdicts() -> list[str]:
    """Measure; the result lines for ``benchmarks/RESULTS.md``."""
    with tempfile.TemporaryDirectory(prefix="mnist-bench-drawing-") as cache:
        cold = start_seconds(START, cache)
        warm = start_seconds(START, cache)
        times = answer_seconds(cache)
    median, worst = statistics.median(times), max(times)
    return [
        f"- drawing widget (stage 8): start, models fitted into an empty cache, {cold:.1f} s; "
        f"warm start, models read from the cache, {warm:.1f} s "
        f"(target ≤ {WARM_START_TARGET_S:.0f} s): {verdict(warm <= WARM_START_TARGET_S)}",
        f"- drawing widget: answer after a stroke (prepare and read; {len(times)} answers) "
        f"median {1000 * median:.1f} ms, slowest {1000 * worst:.1f} ms "
        f"(target < {1000 * ANSWER_TARGET_S:.0f} ms): {verdict(worst < ANSWER_TARGET_S)}",
    ]


if __name__ == "__main__":
    print("\n".join(verdicts()))
