"""``make bench``: the study's main job against a plain baseline, in one run, as ratios.

1. baseline: the fits of stages 1-5 the way the book's notebook does them (``baseline.py``);
2. cold: notebooks 01-05 through the runner (two at a time) with an empty result cache;
3. warm: the same again, with the cache filled, and once more one notebook at a time;
4. the whole main job, all notebooks, with another empty cache and then warm (targets: at most
   12 minutes cold and 30 s warm); the cold run through ``memory.py``, which records each
   notebook's peak memory and its cell in ``benchmarks/MEMORY.md``;
5. the book's KNN grid search on 60,000 images, plain and with shared neighbours (``knn_search``);
6. the drawing widget: its warm start and the time of an answer after a stroke (``drawing.py``);
7. the threshold explorer: its warm start and the time of an answer after a slider move
   (``threshold_explorer.py``);
then loading the verified dataset from its cache. For each: wall time, CPU time (all child
processes) and peak memory (PSS of the whole process tree, sampled: a page shared by several
processes counts once; ``benchmarks/memory.py`` gives each notebook's own peak and its cell).
The table is printed and written to ``benchmarks/RESULTS.md``.
``python -m benchmarks.run --knn-only`` runs step 5 alone and prints its lines without recording
them.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from benchmarks import drawing, threshold_explorer
from benchmarks.memory import tree, tree_pss

ROOT = Path(__file__).resolve().parents[1]
STAGES_1_TO_5 = [
    "01_is_it_a_5",
    "02_precision_recall_tradeoff",
    "03_sgd_vs_random_forest",
    "04_multiclass_error_analysis",
    "05_final_test_scores",
]
TARGETS = {"cold": 0.6, "warm": 0.1}
# The whole main job (every notebook), in seconds on the machine measured: cold and warm.
MAIN_JOB_SECONDS = {"cold": 720.0, "warm": 30.0}
MEMORY_TARGET_GB = 4.0  # the main job, two notebooks at once; each notebook: memory.py
# The shared-neighbours search: at least this many times faster than the plain one, and at most
# this many seconds, cold on the machine measured.
KNN_SPEEDUP_TARGET = 5.0
KNN_SECONDS_TARGET = 120.0


@dataclass
class Row:
    """One measured command."""

    label: str
    wall: float
    cpu: float
    peak_gb: float
    exit_code: int


def measure(label: str, command: list[str], env: dict[str, str]) -> Row:
    """Run ``command`` to completion, sampling the memory of its process tree."""
    print(f"\n== {label}: {' '.join(command)}", file=sys.stderr, flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env=env)
    watched = psutil.Process(child.pid)
    peak = 0
    while child.poll() is None:
        with contextlib.suppress(psutil.Error):
            peak = max(peak, tree_pss(tree(watched)))
        time.sleep(0.2)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"== {label}: {wall:.1f} s wall, exit code {child.returncode}", file=sys.stderr)
    return Row(label, wall, cpu, peak / 1e9, child.returncode)


def cache_load_seconds(repeats: int = 5) -> float:
    """Median time of ``load_mnist()`` reading and verifying the dataset cache."""
    code = (
        "import time; from mnist_study.data import load_mnist; load_mnist(); "
        "t = time.perf_counter(); load_mnist(); print(time.perf_counter() - t)"
    )
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
            ).stdout
        )
        for _ in range(repeats)
    ]
    return statistics.median(times)


def cpu_model() -> str:
    """The processor's model name where Linux tells it, else its architecture."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({platform.machine()})"
    return platform.processor() or platform.machine()


def table(rows: list[Row], baseline: Row) -> list[str]:
    """Markdown table rows with ratios to the baseline for the stage 1-5 runs."""
    lines = [
        "| run | wall (s) | CPU (s) | peak PSS (GB) | wall / baseline | exit |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        ratio = f"{row.wall / baseline.wall:.2f}×" if "01–05" in row.label else "–"
        lines.append(
            f"| {row.label} | {row.wall:.1f} | {row.cpu:.1f} | {row.peak_gb:.2f} | {ratio} "
            f"| {row.exit_code} |"
        )
    return lines


def knn_side_by_side(env: dict[str, str]) -> tuple[list[Row], list[str]]:
    """Both grid searches on 60,000 images, one after the other; rows and verdicts."""
    python = sys.executable
    rows = []
    with tempfile.TemporaryDirectory(prefix="mnist-bench-knn-") as folder:
        scores = {name: str(Path(folder) / f"{name}.npy") for name in ("plain", "shared")}
        for name, label in (
            ("plain", "KNN grid search, 60,000 images: plain GridSearchCV"),
            ("shared", "KNN grid search, 60,000 images: shared neighbours"),
        ):
            command = [python, "-m", "benchmarks.knn_search", name, scores[name]]
            rows.append(measure(label, command, env))
        import numpy

        same = all(row.exit_code == 0 for row in rows) and bool(
            numpy.array_equal(numpy.load(scores["plain"]), numpy.load(scores["shared"]))
        )
    plain, shared = rows
    speedup = plain.wall / shared.wall
    verdicts = [
        f"- KNN search, plain / shared neighbours = {speedup:.1f}× "
        f"(target ≥ {KNN_SPEEDUP_TARGET:g}×): "
        f"{'met' if speedup >= KNN_SPEEDUP_TARGET else 'NOT met'}",
        f"- KNN search with shared neighbours, cold: {shared.wall:.0f} s "
        f"(target ≤ {KNN_SECONDS_TARGET:.0f} s): "
        f"{'met' if shared.wall <= KNN_SECONDS_TARGET else 'NOT met'}",
        f"- both searches give the same mean fold scores: {same}",
    ]
    return rows, verdicts


def main() -> int:
    """Run every measurement, print the table and record it."""
    python = sys.executable
    if "--knn-only" in sys.argv[1:]:
        rows, verdicts = knn_side_by_side(dict(os.environ))
        print("\n".join([*table(rows, rows[0]), "", *verdicts]))
        return 0
    rows = []
    runner = [
        "make",
        "--no-print-directory",
        "figures",
        "RERUN=1",
    ]  # every notebook, even unchanged
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="mnist-bench-cache-") as cache:
        env["MNIST_STUDY_CACHE_DIR"] = cache
        baseline = measure(
            "baseline: book-style fits, stages 1–5", [python, "-m", "benchmarks.baseline"], env
        )
        rows.append(baseline)
        stages = [*runner, f"NOTEBOOKS={' '.join(f'{name}.ipynb' for name in STAGES_1_TO_5)}"]
        rows.append(measure("cold: notebooks 01–05, empty cache", stages, env))
        rows.append(measure("warm: notebooks 01–05, cache filled", stages, env))
        rows.append(
            measure(
                "warm: notebooks 01–05, one at a time",
                [*stages, "JOBS=1"],
                env,
            )
        )
    with tempfile.TemporaryDirectory(prefix="mnist-bench-cache-") as cache:
        env["MNIST_STUDY_CACHE_DIR"] = cache
        # make figures under benchmarks.memory, which also records each notebook's peak and cell
        memory = [python, "-m", "benchmarks.memory"]
        rows.append(measure("cold: main job, all notebooks, empty cache", memory, env))
        rows.append(measure("warm: main job, all notebooks, cache filled", runner, env))
    main_cold, main_warm = rows[-2], rows[-1]
    knn_rows, knn_verdicts = knn_side_by_side(env)
    rows.extend(knn_rows)
    load = cache_load_seconds()
    cold, warm = rows[1], rows[2]
    peak = max(row.peak_gb for row in rows)
    verdicts = [
        f"- cold / baseline = {cold.wall / baseline.wall:.2f} (target ≤ {TARGETS['cold']}): "
        f"{'met' if cold.wall / baseline.wall <= TARGETS['cold'] else 'NOT met'}",
        f"- warm / baseline = {warm.wall / baseline.wall:.2f} (target ≤ {TARGETS['warm']}): "
        f"{'met' if warm.wall / baseline.wall <= TARGETS['warm'] else 'NOT met'}",
        f"- peak memory of any run = {peak:.2f} GB (target ≤ {MEMORY_TARGET_GB} GB): "
        f"{'met' if peak <= MEMORY_TARGET_GB else 'NOT met'}",
        *(
            f"- main job, {kind}: {row.wall:.0f} s (target ≤ {MAIN_JOB_SECONDS[kind]:.0f} s): "
            f"{'met' if row.wall <= MAIN_JOB_SECONDS[kind] else 'NOT met'}"
            for kind, row in (("cold", main_cold), ("warm", main_warm))
        ),
        f"- exit codes: {'all 0' if all(r.exit_code == 0 for r in rows) else 'NOT all 0'}",
        f"- `load_mnist()` from the verified cache: {load:.2f} s (median of 5; target < 1 s)",
        *drawing.verdicts(),
        *threshold_explorer.verdicts(),
        *knn_verdicts,
    ]
    import numpy
    import sklearn

    cpu = cpu_model()
    header = [
        "# Benchmark results",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `make bench` on a "
        f"{os.cpu_count()}-core {cpu} machine, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}, scikit-learn {sklearn.__version__}, "
        f"numpy {numpy.__version__}. Wall times vary with the load of a shared machine; the "
        "ratios, measured in the same run, are what the targets are about.",
        "",
    ]
    text = "\n".join([*header, *table(rows, baseline), "", *verdicts, ""])
    results = ROOT / "benchmarks" / "RESULTS.md"
    earlier = results.read_text() if results.exists() else ""
    # the other parts' sections (`make bench-warm`'s) are kept as they were
    results.write_text(text + (earlier[earlier.index("\n## ") :] if "\n## " in earlier else ""))
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
