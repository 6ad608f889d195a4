"""Execute the study's notebooks, normalise them, and put them and their figures in place.

Every notebook runs with papermill into a staging folder of the run's own under ``build/runs/``,
writing its README figures there too. The notebooks are independent of each other (each loads
the data itself and shares expensive results only through the disk cache), so two of them run at
a time in a process pool, the longest first: the order comes from the longest time each has
taken in the runs so far (``build/notebook-seconds.json``; ``make clean`` forgets them), so that
a long notebook does not start last and leave a core idle at the end; a notebook never timed
starts first, and on a first run the numbered order stands. Only when all of them have succeeded
are the executed notebooks moved over ``notebooks/`` and the figures over ``readme_images/``,
all or nothing; a failing cell, a signal (Ctrl-C, ``kill``, a closed terminal) or a file that
cannot be written stops the run and leaves the committed files as they were. One run at a time
per checkout: a second is refused while ``build/run.lock`` is held. ``--check`` compares the
staged files with the committed ones instead of moving them, and ``--smoke`` runs on the small
test fixture into ``build/smoke``.

    python -m tools.run_notebooks            # the main job (make figures)
    python -m tools.run_notebooks --check    # regenerate and compare (make verify)
    python -m tools.run_notebooks --smoke    # fixture run into build/smoke (make smoke)
    python -m tools.run_notebooks --jobs 1   # one notebook at a time
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mnist_study import settings
from tools.notebook_pool import NotebookFailedError, progress, run_notebooks
from tools.placing import PlacingError, move_into_place, one_run_at_a_time, run_folder, unwritable
from tools.stop_signals import Stopped, ignore_stop_signals, stop_signals_raise

__all__ = ["main"]

# Notebooks run side by side: one per core, at most two (each also uses both cores in its fits).
DEFAULT_JOBS = min(2, settings.CORES)


@dataclass(frozen=True)
class Project:
    """The folders of a checkout the runner reads and writes."""

    root: Path

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    @property
    def figures(self) -> Path:
        return self.root / "readme_images"

    @property
    def build(self) -> Path:
        return self.root / "build"


def study_notebooks(folder: Path, names: Sequence[str] = ()) -> list[Path]:
    """The notebooks to run, in their numbered order (all of them by default)."""
    notebooks = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if names:
        chosen = [path for path in notebooks if path.name in names or path.stem in names]
        unknown = set(names) - {p.name for p in chosen} - {p.stem for p in chosen}
        if unknown:
            known = ", ".join(p.name for p in notebooks)
            raise SystemExit(
                f"error: no such notebook: {', '.join(sorted(unknown))} (known: {known})"
            )
        return chosen
    return notebooks


def seconds_file(project: Project, smoke: bool) -> Path:
    """Where the runner keeps each notebook's longest time in successful runs of this kind."""
    return project.build / ("smoke-seconds.json" if smoke else "notebook-seconds.json")


def recorded_times(times: Path) -> dict[str, object]:
    """The times kept in ``times``, or none if it is missing or unreadable."""
    try:
        seconds = json.loads(times.read_text())
    except (OSError, ValueError):
        return {}
    return seconds if isinstance(seconds, dict) else {}


def longest_first(notebooks: Sequence[Path], times: Path) -> list[Path]:
    """``notebooks`` ordered by their recorded times, longest first; those never timed first.

    The sort is stable: with no times recorded (or an unreadable file) the given order stands.
    """
    seconds = recorded_times(times)

    def order(path: Path) -> tuple[int, float]:
        last = seconds.get(path.stem)
        return (1, -last) if isinstance(last, int | float) else (0, 0.0)

    return sorted(notebooks, key=order)


def record_times(times: Path, seconds: dict[str, float]) -> None:
    """Keep in ``times`` each notebook's longest time so far (the file replaced whole).

    The longest, not the last: a run with the cache filled takes seconds, and the order that
    matters is that of a run with an empty one, after a change of code or library versions.
    """
    longest = recorded_times(times)
    for name, taken in seconds.items():
        before = longest.get(name)
        longest[name] = max(taken, before) if isinstance(before, int | float) else taken
    partial = times.with_name(times.name + ".partial")
    with contextlib.suppress(OSError):
        partial.write_text(json.dumps({name: round(s, 1) for name, s in sorted(longest.items())}))
        os.replace(partial, times)


def staged_files(stage: Path, project: Project) -> list[tuple[Path, Path]]:
    """Pairs of (staged file, committed location) for every notebook and figure produced."""
    pairs = [
        (path, project.notebooks / path.name) for path in sorted((stage / "notebooks").iterdir())
    ]
    pairs += [
        (path, project.figures / path.name) for path in sorted((stage / "readme_images").iterdir())
    ]
    return pairs


def differences(pairs: Sequence[tuple[Path, Path]], project: Project) -> list[str]:
    """The committed files that differ from (or lack) their regenerated version."""
    return [
        str(target.relative_to(project.root))
        for staged, target in pairs
        if not target.exists() or not filecmp.cmp(staged, target, shallow=False)
    ]


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="compare with committed files")
    mode.add_argument("--smoke", action="store_true", help="run on the test fixture")
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=DEFAULT_JOBS,
        help=f"notebooks to run at a time (default: {DEFAULT_JOBS})",
    )
    parser.add_argument(
        "--root", type=Path, default=settings.ROOT, help="the project folder (default: this one)"
    )
    parser.add_argument("notebooks", nargs="*", help="names of notebooks to run (default: all)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status (128 + the signal's number)."""
    args = parse_args(argv)
    project = Project(args.root.resolve())
    notebooks = study_notebooks(project.notebooks, args.notebooks)
    unchanged = "build/smoke" if args.smoke else "notebooks/ or readme_images/"
    with stop_signals_raise():
        try:
            with one_run_at_a_time(project.build) as alone:
                if not alone:
                    progress(
                        f"error: the notebooks are already being run in {project.root} "
                        f"({project.build / 'run.lock'} is held); wait for that run to end."
                    )
                    return 1
                with run_folder(project.build) as stage:
                    return run(args, project, notebooks, stage, unchanged)
        except Stopped as stopped:
            progress(f"interrupted ({stopped}): nothing under {unchanged} was changed.")
            return 128 + stopped.signum


def run(
    args: argparse.Namespace,
    project: Project,
    notebooks: Sequence[Path],
    stage: Path,
    unchanged: str,
) -> int:
    """Run ``notebooks`` into ``stage`` as ``args`` say, then check them or move them into place.

    ``stage`` is removed at the end, unless a notebook failed (its executed copy and its
    kernel's messages are kept there until the next run) or a file could not be put back.
    """
    keep = False
    try:
        (stage / "readme_images").mkdir()
        # Each notebook's parameters cell lists these, with the values of a run by hand.
        parameters = {
            "sample": None,
            "fixture": str(settings.FIXTURE_FILE) if args.smoke else None,
            "figure_dir": str(stage / "readme_images"),
        }
        # the fixture's results stay out of .cache/
        environment = (
            {settings.CACHE_DIR_ENV: str(project.build / "smoke-cache")} if args.smoke else {}
        )
        started = time.perf_counter()
        times = seconds_file(project, args.smoke)
        try:
            seconds = run_notebooks(
                longest_first(notebooks, times), stage, parameters, args.jobs, environment
            )
        except NotebookFailedError as error:
            keep = True
            progress(f"error: {error}")
            next_step = (
                "Fix the cell and re-run."
                if error.in_cell
                else "The failure is not a cell's: see the message above, then re-run."
            )
            progress(
                f"Nothing under {unchanged} was changed (what ran is kept in "
                f"{stage.relative_to(project.root)}/ until the next run). {next_step}"
            )
            return 1
        elapsed = time.perf_counter() - started
        if args.smoke:
            ignore_stop_signals()  # the run is over: only its results are kept
            smoke = project.build / "smoke"
            shutil.rmtree(smoke, ignore_errors=True)
            smoke.mkdir()
            for name in ("notebooks", "readme_images"):
                os.replace(stage / name, smoke / name)
            record_times(times, seconds)
            progress(
                f"smoke run of {len(notebooks)} notebook(s) passed in {elapsed:.0f} s ({smoke})"
            )
            return 0
        pairs = staged_files(stage, project)
        if args.check:
            record_times(times, seconds)
            return check(pairs, project)
        problems = unwritable(pairs, project.root)
        try:
            if problems:
                raise PlacingError("; ".join(problems), restored=True)
            move_into_place(pairs, stage / "previous", project.root)
        except PlacingError as error:
            keep = not error.restored
            progress(f"error: the results could not be moved into place: {error}.")
            if error.restored:
                progress(f"Nothing under {unchanged} was changed.")
            return 1
        ignore_stop_signals()  # the run is over: only its staging folder is left to remove
        record_times(times, seconds)
        progress(f"wrote {len(pairs)} files into notebooks/ and readme_images/ in {elapsed:.0f} s")
        return 0
    finally:
        if not keep:
            shutil.rmtree(stage, ignore_errors=True)


def check(pairs: Sequence[tuple[Path, Path]], project: Project) -> int:
    """Compare the staged files with the committed ones; the exit status."""
    changed = differences(pairs, project)
    if changed:
        progress("error: regenerating changed these committed files:")
        for name in changed:
            progress(f"  {name}")
        progress("Run `make figures` and commit the result (or find what made them differ).")
        return 1
    progress(f"verified: {len(pairs)} committed files match their regeneration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
