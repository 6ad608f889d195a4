"""Execute the study's notebooks in order, normalise them, and put them and their figures in place.

Every notebook runs with papermill into a staging folder under ``build/``, writing its README
figures there too. Only when all of them have succeeded are the executed notebooks normalised and
moved over ``notebooks/`` and the figures over ``readme_images/``; a failing cell or an interrupt
leaves the committed files untouched. ``--check`` compares the staged files with the committed ones
instead of moving them, and ``--smoke`` runs on the small test fixture into a scratch folder.

    python -m mnist_study.runner            # the main job (make figures)
    python -m mnist_study.runner --check    # regenerate and compare (make verify)
    python -m mnist_study.runner --smoke    # fixture run into build/smoke (make smoke)
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["NotebookFailedError", "main", "normalise_notebook", "run_notebooks"]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
FIGURE_DIR = ROOT / "readme_images"
BUILD_DIR = ROOT / "build"
FIXTURE = ROOT / "tests" / "fixtures" / "mnist_784_fixture.npz"
STRIPPED_KEYS = (
    "metadata.papermill",
    "metadata.widgets",
    "metadata.language_info.version",
    "cell.metadata.papermill",
    "cell.metadata.execution",
)


class NotebookFailedError(RuntimeError):
    """A notebook raised during execution; the message names the notebook and the cell."""


def progress(message: str) -> None:
    """Progress lines go to stderr, so that stdout stays machine-readable."""
    print(message, file=sys.stderr, flush=True)


def study_notebooks(names: Sequence[str] = ()) -> list[Path]:
    """The notebooks to run, in their numbered order (all of them by default)."""
    notebooks = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
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


def describe_failure(notebook: Path, error: Exception) -> str:
    """Name the notebook, the failing cell (as numbered in a reader's run) and the exception."""
    count = getattr(error, "exec_count", None)
    source = (getattr(error, "source", "") or "").strip().splitlines()
    # papermill executes one injected parameters cell first, which a reader's run does not have
    where = f"cell [{count - 1}]" if count else "a cell"
    if source:
        where += f" (`{source[0][:60]}`)"
    name = getattr(error, "ename", type(error).__name__)
    value = getattr(error, "evalue", str(error))
    return f"{notebook.name} failed in {where}: {name}: {value}"


def logged_kernel_manager(log_path: Path) -> type:
    """A kernel manager whose kernels write their own log lines to ``log_path``, not the terminal.

    Notebook output (including warnings) still reaches the notebook; only the kernel process's
    start-up and shut-down messages are kept out of the progress report.
    """
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: object) -> None:
            with open(log_path, "ab") as log:
                await super()._async_start_kernel(stderr=log, **kw)

    return LoggedKernelManager


def run_notebooks(
    notebooks: Sequence[Path], stage: Path, parameters: dict[str, object] | None = None
) -> None:
    """Execute each notebook into ``stage/notebooks`` (figures into ``stage/readme_images``)."""
    import papermill

    (stage / "notebooks").mkdir(parents=True, exist_ok=True)
    figure_dir = stage / "readme_images"
    figure_dir.mkdir(parents=True, exist_ok=True)
    for number, notebook in enumerate(notebooks, start=1):
        progress(f"[{number}/{len(notebooks)}] running {notebook.name} …")
        started = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(notebook),
                str(stage / "notebooks" / notebook.name),
                parameters={"figure_dir": str(figure_dir), **(parameters or {})},
                cwd=str(notebook.parent),
                kernel_name="python3",
                progress_bar=sys.stderr.isatty(),
                log_output=False,
                kernel_manager_class=logged_kernel_manager(stage / "kernel.log"),
            )
        except papermill.PapermillExecutionError as error:
            raise NotebookFailedError(describe_failure(notebook, error)) from error
        progress(f"      done in {time.perf_counter() - started:.0f} s")


def merge_streams(outputs: list[dict]) -> list[dict]:
    """Join consecutive outputs of the same stream, which the kernel may send in varying chunks."""
    merged: list[dict] = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            output["output_type"] == "stream"
            and previous is not None
            and previous["output_type"] == "stream"
            and previous["name"] == output["name"]
        ):
            previous["text"] = "".join(previous["text"]) + "".join(output["text"])
        else:
            merged.append(output)
    return merged


def normalise_notebook(path: Path) -> None:
    """Make an executed notebook what a reader's own run gives: no injected cell, no timings."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    notebook["cells"] = [
        cell
        for cell in notebook["cells"]
        if "injected-parameters" not in cell.get("metadata", {}).get("tags", [])
    ]
    count = 0
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        count += 1
        cell["execution_count"] = count
        cell["outputs"] = merge_streams(cell.get("outputs", []))
        for output in cell["outputs"]:
            if "execution_count" in output:
                output["execution_count"] = count
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "nbstripout",
            "--keep-output",
            "--keep-count",
            "--extra-keys",
            " ".join(STRIPPED_KEYS),
            str(path),
        ],
        check=True,
    )


def staged_files(stage: Path) -> list[tuple[Path, Path]]:
    """Pairs of (staged file, committed location) for every notebook and figure produced."""
    pairs = [(path, NOTEBOOK_DIR / path.name) for path in sorted((stage / "notebooks").iterdir())]
    pairs += [
        (path, FIGURE_DIR / path.name) for path in sorted((stage / "readme_images").iterdir())
    ]
    return pairs


def differences(pairs: Sequence[tuple[Path, Path]]) -> list[str]:
    """The committed files that differ from (or lack) their regenerated version."""
    return [
        str(target.relative_to(ROOT))
        for staged, target in pairs
        if not target.exists() or not filecmp.cmp(staged, target, shallow=False)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="compare with committed files")
    mode.add_argument("--smoke", action="store_true", help="run on the test fixture")
    parser.add_argument("notebooks", nargs="*", help="names of notebooks to run (default: all)")
    args = parser.parse_args(argv)

    notebooks = study_notebooks(args.notebooks)
    stage = BUILD_DIR / ("smoke" if args.smoke else "staging")
    shutil.rmtree(stage, ignore_errors=True)
    if args.smoke:
        os.environ["MNIST_STUDY_FIXTURE"] = str(FIXTURE)
        os.environ["MNIST_STUDY_CACHE_DIR"] = str(BUILD_DIR / "smoke-cache")
    started = time.perf_counter()
    try:
        run_notebooks(notebooks, stage)
    except NotebookFailedError as error:
        progress(f"error: {error}")
        progress("Nothing under notebooks/ or readme_images/ was changed. Fix the cell and re-run.")
        return 1
    except KeyboardInterrupt:
        progress("interrupted: nothing under notebooks/ or readme_images/ was changed.")
        shutil.rmtree(stage, ignore_errors=True)
        return 130
    elapsed = time.perf_counter() - started
    if args.smoke:
        progress(f"smoke run of {len(notebooks)} notebook(s) passed in {elapsed:.0f} s ({stage})")
        return 0
    for path in sorted((stage / "notebooks").iterdir()):
        normalise_notebook(path)
    pairs = staged_files(stage)
    if args.check:
        changed = differences(pairs)
        if changed:
            progress("error: regenerating changed these committed files:")
            for name in changed:
                progress(f"  {name}")
            progress("Run `make figures` and commit the result (or find what made them differ).")
            return 1
        progress(f"verified: {len(pairs)} committed files match their regeneration")
        return 0
    FIGURE_DIR.mkdir(exist_ok=True)
    for staged, target in pairs:
        os.replace(staged, target)
    progress(f"wrote {len(pairs)} files into notebooks/ and readme_images/ in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
