"""What every part of ``make bench`` shares: the meter, the machine, its section of RESULTS.md.

A part measures with a ``Meter``: wall time, CPU time of this process and every process under
it, and peak memory as PSS (proportional set size: a page shared by several processes, such as an
array joblib's workers map from one file, counts once in all), sampled four times a second. The
meter also notes the CPU time the whole machine spent meanwhile: what the part did not spend went
to other work, and the section's header says so. ``record`` replaces the part's own section of
``benchmarks/RESULTS.md`` and keeps the others, in the order of ``SECTIONS``.
"""

import contextlib
import os
import platform
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
# Each part's section title, by its make target, in the order of the file.
SECTIONS = {
    "bench-cold": "The main job on an empty cache",
    "bench-warm": "The main job on a filled cache",
    "bench-baseline": "The book's chapter 3, run as the book runs it",
    "bench-knn": "The KNN grid search, plain and with shared neighbours",
    "bench-widgets": "The widgets and the dataset cache",
}
SAMPLE_SECONDS = 0.25


def tree(process: psutil.Process) -> list[psutil.Process]:
    """A process and all its descendants."""
    with contextlib.suppress(psutil.Error):
        return [process, *process.children(recursive=True)]
    return []


def tree_pss(processes: list[psutil.Process]) -> int:
    """PSS of processes in bytes (``/proc/PID/smaps_rollup``, read by psutil)."""
    total = 0
    for member in processes:
        with contextlib.suppress(psutil.Error):
            total += member.memory_full_info().pss
    return total


def own_cpu() -> float:
    """CPU seconds of this process, of its ended children and of its living descendants."""
    me = psutil.Process()
    times = me.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in tree(me)[1:]:
        with contextlib.suppress(psutil.Error):
            child_times = child.cpu_times()
            total += child_times.user + child_times.system
    return total


def busy_cpu() -> float:
    """CPU seconds the whole machine has spent on anything since it started."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


@dataclass
class Row:
    """One measured step."""

    label: str
    wall: float = 0.0
    cpu: float = 0.0
    peak_gb: float = 0.0
    exit_code: int = 0

    def line(self) -> str:
        """The step as a row of the Markdown table of ``TABLE``."""
        return f"| {self.label} | {self.wall:,.1f} | {self.cpu:,.1f} | {self.peak_gb:.2f} |"


TABLE = ["| step | wall (s) | CPU (s) | peak PSS (GB) |", "|---|---:|---:|---:|"]


class Meter:
    """Measures steps of a part; knows how much CPU time other work took since it was made."""

    def __init__(self) -> None:
        self.started, self.busy, self.cpu = time.perf_counter(), busy_cpu(), own_cpu()
        self.rows: list[Row] = []

    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[Row]:
        """Time the block, sampling the PSS of this process's tree; the row is kept."""
        row, stop, me = Row(label), threading.Event(), psutil.Process()
        peak = [tree_pss(tree(me))]

        def sample() -> None:
            while not stop.wait(SAMPLE_SECONDS):
                peak[0] = max(peak[0], tree_pss(tree(me)))

        sampler = threading.Thread(target=sample, daemon=True)
        cpu, started = own_cpu(), time.perf_counter()
        sampler.start()
        print(f"== {label}", flush=True)
        try:
            yield row
        finally:
            stop.set()
            sampler.join()
            row.wall, row.cpu = time.perf_counter() - started, own_cpu() - cpu
            row.peak_gb = peak[0] / 1e9
            self.rows.append(row)
            print(f"== {label}: {row.wall:.1f} s wall, {row.cpu:.1f} s CPU", flush=True)

    def run(self, label: str, command: list[str], env: dict[str, str] | None = None) -> Row:
        """Run ``command`` in the checkout as a step; its exit code is the row's."""
        with self.step(label) as row:
            row.exit_code = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
        return row

    def header(self, target: str) -> list[str]:
        """The section's title and the line saying when, where, how long, and what else ran."""
        import numpy
        import sklearn

        wall = time.perf_counter() - self.started
        other = max(0.0, busy_cpu() - self.busy - (own_cpu() - self.cpu))
        cores = os.cpu_count() or 1
        share = other / (wall * cores)
        shared = (
            f"The machine was shared with other work: it took {other:,.0f} s of CPU time "
            f"meanwhile, {share:.0%} of the {cores} cores."
            if share >= 0.02
            else f"Nothing else ran meanwhile (other processes took {other:,.0f} s of CPU time)."
        )
        return [
            f"## {SECTIONS[target]}",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `make {target}`, "
            f"{wall / 60:,.0f} minutes, on a {cores}-core {cpu_model()} machine with "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB; Python "
            f"{platform.python_version()}, scikit-learn {sklearn.__version__}, numpy "
            f"{numpy.__version__}. {shared}",
            "",
        ]


def cpu_model() -> str:
    """The processor's model name where Linux tells it, else its architecture."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({platform.machine()})"
    return platform.processor() or platform.machine()


def verdict(met: bool) -> str:
    """The word the results file uses for a target."""
    return "met" if met else "NOT met"


def sections(text: str) -> dict[str, str]:
    """The sections of RESULTS.md by title, each from its ``## `` line to the next."""
    parts = ("\n" + text).split("\n## ")[1:]
    return {part.split("\n", 1)[0]: "## " + part.strip("\n") for part in parts}


def record(lines: list[str]) -> None:
    """Replace this part's section of RESULTS.md (its title is the first line), keep the others."""
    found = sections(RESULTS.read_text()) if RESULTS.exists() else {}
    found[lines[0].removeprefix("## ")] = "\n".join(lines).strip("\n")
    order = [*SECTIONS.values(), *found]
    body = "\n\n".join(found[title] for title in dict.fromkeys(order) if title in found)
    intro = (
        "# Benchmark results\n\nEach part of `make bench` writes its own section "
        "(`make help` lists the parts and their time budgets).\n\n"
    )
    RESULTS.write_text(intro + body + "\n")
    print("\n".join(lines))
