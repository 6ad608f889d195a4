"""``make bench-cold``: the main job on an empty cache, notebook by notebook.

``make figures RERUN=1`` (every notebook, two at a time) runs as a child of this process while a
thread samples memory four times a second as PSS (``results.py``): of the whole job (make and
every process under it), and of each notebook (its kernel and the processes it starts, under the
notebook's ``tools.execute`` process), each sample credited to the cell the notebook is running,
read from the runner's progress lines. Its section of ``benchmarks/RESULTS.md`` gives, per
notebook, its peak, the cell, and the CPU time of its processes; then the job's wall and CPU time,
its peak and what ran at that moment, and the disk used after it (the README quotes them).
"""

import contextlib
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from benchmarks.results import ROOT, SAMPLE_SECONDS, Meter, record, tree, tree_pss, verdict
from mnist_study import settings

# The goals: what a Binder session or a learner's laptop can give one notebook, and the job.
NOTEBOOK_GOAL_GB = 2.0
JOB_GOAL_GB = 4.0
JOB_GOAL_SECONDS = 720.0  # the whole main job on the machine measured
# The runner's line as a cell starts: "04_multiclass_error_analysis [12/40] Heading › first line"
CELL_LINE = re.compile(r"^(\S+) \[(\d+)/\d+\] (?!still running)(.*)$")


@dataclass
class Notebook:
    """What the sampler saw of one notebook: its peak, the cell of it, its processes' CPU."""

    first: float = field(default_factory=time.monotonic)  # its process seen first, and last
    last: float = 0.0
    peak: int = 0
    cell: str = ""
    cpu: dict[int, float] = field(default_factory=dict)  # the last reading of each process


@dataclass
class Watch:
    """The cell each notebook runs (from the progress lines), and the peaks seen."""

    cells: dict[str, str] = field(default_factory=dict)
    notebooks: dict[str, Notebook] = field(default_factory=dict)
    peak: int = 0
    at_peak: dict[str, tuple[int, str]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)


def read_progress(stream, watch: Watch) -> None:
    """Echo the runner's lines, and note which cell each notebook runs."""
    for line in stream:
        sys.stderr.write(line)
        found = CELL_LINE.match(line.rstrip("\n"))
        if found:
            name, number, label = found.groups()
            label = label.split(" › ")[-1]
            watch.cells[name] = f"[{number}] `{(label[:50] + '…') if len(label) > 50 else label}`"


def executors(make: psutil.Process) -> dict[str, psutil.Process]:
    """The ``tools.execute`` process of each running notebook, by the notebook's name."""
    found = {}
    for process in tree(make):
        with contextlib.suppress(psutil.Error):
            command = process.cmdline()
            if "tools.execute" in command:
                name = next(Path(arg).stem for arg in command if arg.endswith(".ipynb"))
                found[name] = process
    return found


def sample_once(watch: Watch, make: psutil.Process) -> None:
    """One sample: the whole job's PSS, and each running notebook's, credited to its cell."""
    now = {}
    for name, executor in executors(make).items():
        kernel = tree(executor)[1:]  # the kernel and what it starts, not the runner's process
        seen = watch.notebooks.setdefault(name, Notebook())
        seen.last = time.monotonic()
        pss, cell = tree_pss(kernel), watch.cells.get(name, "starting")
        now[name] = (pss, cell)
        if pss > seen.peak:
            seen.peak, seen.cell = pss, cell
        for member in kernel:
            with contextlib.suppress(psutil.Error):
                times = member.cpu_times()
                seen.cpu[member.pid] = times.user + times.system
    total = tree_pss(tree(make))
    if total > watch.peak:
        watch.peak, watch.at_peak = total, now


def sample(watch: Watch, make: psutil.Process) -> None:
    """Sample until told to stop."""
    while not watch.stop.wait(SAMPLE_SECONDS):
        sample_once(watch, make)


def megabytes(folder: Path) -> int:
    """The disk a folder's files take, in MB (their allocated blocks, as ``du`` counts them)."""
    files = (path.lstat() for path in folder.rglob("*") if not path.is_symlink())
    return round(sum(stat.st_blocks * 512 for stat in files) / 1e6)


def disk() -> str:
    """What the environment, the dataset and the results cache take on disk after the run."""
    folders = {"the environment": Path(sys.prefix), "the dataset": settings.data_dir()}
    folders["the results cache"] = settings.cache_dir()
    return ", ".join(f"{name} {megabytes(folder):,} MB" for name, folder in folders.items())


def table(watch: Watch, wall: float) -> list[str]:
    """The Markdown table of the notebooks' peaks, then the job's, with the verdicts."""
    lines = [
        "| notebook | wall (s) | CPU (s) | peak PSS (GB) | in the cell |",
        "|---|---:|---:|---:|---|",
    ]
    for name, seen in sorted(watch.notebooks.items()):
        cpu, wall_seen = sum(seen.cpu.values()), seen.last - seen.first
        lines.append(
            f"| {name} | {wall_seen:,.0f} | {cpu:,.0f} | {seen.peak / 1e9:.2f} | {seen.cell} |"
        )
    worst = max((seen.peak for seen in watch.notebooks.values()), default=0) / 1e9
    job = watch.peak / 1e9
    beside = "; ".join(
        f"{name} at {pss / 1e9:.2f} GB in cell {cell}"
        for name, (pss, cell) in sorted(watch.at_peak.items())
    )
    cpu = sum(sum(seen.cpu.values()) for seen in watch.notebooks.values())
    return [
        *lines,
        "",
        f"- the main job: {wall:,.0f} s wall, {cpu:,.0f} s of CPU in the notebooks' processes; "
        f"peak {job:.2f} GB PSS (make, the runner's processes, the kernels and their workers), "
        f"while {beside or 'no notebook'} ran",
        f"- largest notebook peak {worst:.2f} GB (goal ≤ {NOTEBOOK_GOAL_GB} GB): "
        + verdict(worst <= NOTEBOOK_GOAL_GB),
        f"- the main job's peak {job:.2f} GB (goal ≤ {JOB_GOAL_GB} GB): "
        + verdict(job <= JOB_GOAL_GB),
        f"- the main job's wall time {wall:,.0f} s (goal ≤ {JOB_GOAL_SECONDS:,.0f} s): "
        + verdict(wall <= JOB_GOAL_SECONDS),
        f"- disk after the run: {disk()}",
    ]


def main() -> int:
    """Run the main job through make on the (empty) cache; record its section if it succeeded."""
    meter, watch = Meter(), Watch()
    started = time.perf_counter()
    command = ["make", "--no-print-directory", "figures", "RERUN=1"]
    make = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    reader = threading.Thread(target=read_progress, args=(make.stderr, watch), daemon=True)
    sampler = threading.Thread(target=sample, args=(watch, psutil.Process(make.pid)), daemon=True)
    reader.start()
    sampler.start()
    try:
        status = make.wait()
    finally:
        watch.stop.set()
        sampler.join()
        reader.join(timeout=5)
    lines = table(watch, time.perf_counter() - started)
    if status == 0:
        record([*meter.header("bench-cold"), *lines])
    else:
        print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
