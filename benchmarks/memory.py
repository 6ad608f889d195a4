"""Each notebook's peak memory, and the cell where it happens: ``python -m benchmarks.memory``.

Every notebook is executed on its own (nbclient, as the runner does) while a thread samples the
memory of its kernel and every process the kernel started, as PSS (proportional set size:
a page shared by several processes, such as an array joblib's workers map from one file, counts
once in all, split between them). Each sample is credited to the cell running at that moment.
Prints a Markdown table: per notebook, the peak PSS, the cell it happened in, and the CPU time of
the kernel's process tree, and records it in ``benchmarks/MEMORY.md`` when every notebook ran
on the full data. ``--smoke`` runs on the test fixture instead.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
FIXTURE = ROOT / "tests" / "fixtures" / "mnist_784_fixture.npz"
SAMPLE_SECONDS = 0.25
# The goal per notebook: what a Binder session or a learner's laptop can give one notebook.
NOTEBOOK_GOAL_GB = 2.0


@dataclass
class Watch:
    """What the sampler knows: the kernel, the cell running, and the peaks seen."""

    kernel: psutil.Process | None = None
    cell: int = -1
    peak: dict[int, int] = field(default_factory=dict)
    cpu: dict[int, float] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)


def tree(process: psutil.Process) -> list[psutil.Process]:
    """A process and all its descendants."""
    with contextlib.suppress(psutil.Error):
        return [process, *process.children(recursive=True)]
    return []


def tree_pss(process: psutil.Process) -> int:
    """PSS of a process tree in bytes (``/proc/PID/smaps_rollup``, read by psutil)."""
    total = 0
    for member in tree(process):
        with contextlib.suppress(psutil.Error):
            total += member.memory_full_info().pss
    return total


def tree_cpu(process: psutil.Process, seen: dict[int, float]) -> None:
    """Record the CPU seconds of every process of the tree (the last reading of each)."""
    for member in tree(process):
        with contextlib.suppress(psutil.Error):
            times = member.cpu_times()
            seen[member.pid] = times.user + times.system


def sample(watch: Watch) -> None:
    """Until told to stop, credit the tree's PSS to the cell running."""
    while not watch.stop.wait(SAMPLE_SECONDS):
        if watch.kernel is None:
            continue
        pss = tree_pss(watch.kernel)
        watch.peak[watch.cell] = max(watch.peak.get(watch.cell, 0), pss)
        tree_cpu(watch.kernel, watch.cpu)


def cell_name(cell: nbformat.NotebookNode) -> str:
    """A cell's first line of code, shortened for a table."""
    first = next((line for line in cell.source.splitlines() if line.strip()), "")
    return (first[:60] + "…") if len(first) > 60 else first


def measure(path: Path, parameters: dict) -> tuple[float, str, float]:
    """Execute one notebook; its peak PSS in GB, the cell of the peak, and its CPU seconds."""
    notebook = parameterize_notebook(load_notebook_node(str(path)), parameters)
    watch = Watch()
    client = NotebookClient(
        notebook, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )

    def starting(cell, cell_index, **_):
        if watch.kernel is None:
            watch.kernel = psutil.Process(client.km.provisioner.process.pid)
        watch.cell = cell_index

    client.on_cell_execute = starting
    sampler = threading.Thread(target=sample, args=(watch,), daemon=True)
    sampler.start()
    try:
        client.execute()
    finally:
        watch.stop.set()
        sampler.join()
    cell, peak = max(watch.peak.items(), key=lambda item: item[1])
    return peak / 1e9, cell_name(notebook.cells[cell]), sum(watch.cpu.values())


def main() -> int:
    """Measure the notebooks named (default: all), print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="run on the test fixture")
    parser.add_argument("notebooks", nargs="*", help="notebook names (default: all)")
    args = parser.parse_args()
    paths = [NOTEBOOKS / name for name in args.notebooks] or sorted(NOTEBOOKS.glob("0*.ipynb"))
    lines = [
        "| notebook | peak PSS (GB) | in the cell | CPU (s, sampled) | wall (s) |",
        "|---|---:|---|---:|---:|",
    ]
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="mnist-memory-") as figures:
        parameters = {"figure_dir": figures}
        if args.smoke:
            parameters["fixture"] = str(FIXTURE)
        for path in paths:
            started = time.perf_counter()
            peak, cell, cpu = measure(path, parameters)
            wall = time.perf_counter() - started
            worst = max(worst, peak)
            lines.append(f"| {path.stem} | {peak:.2f} | `{cell}` | {cpu:.0f} | {wall:.0f} |")
            print(lines[-1], file=sys.stderr, flush=True)
    verdict = "met" if worst <= NOTEBOOK_GOAL_GB else "NOT met"
    lines += [
        "",
        f"- largest notebook peak {worst:.2f} GB (goal ≤ {NOTEBOOK_GOAL_GB} GB): {verdict}",
    ]
    print("\n".join(lines))
    if not args.smoke and not args.notebooks:
        when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        header = f"# Memory, notebook by notebook\n\nMeasured {when} with `make bench-memory` "
        header += "(each notebook alone, on an empty cache).\n\n"
        (ROOT / "benchmarks" / "MEMORY.md").write_text(header + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
