"""``make bench-warm``: the main job with a filled cache, timed as a person runs it.

1. everything re-executed: ``make figures RERUN=1`` (each result read back from the cache);
2. nothing changed: ``make figures``;
3. one notebook changed: a comment added to the first code cell of ``CHANGED``, then
   ``make figures``; the notebook is then restored from git and ``make figures`` runs it once
   more (its code is the committed code again), which is timed too.

Run it after a run that filled the cache (``make figures``, or ``make bench-cold
BENCH_CACHE=folder`` and then ``make bench-warm BENCH_CACHE=folder``).
"""

import json
import subprocess
import sys

from benchmarks.results import ROOT, TABLE, Meter, record, verdict

CHANGED = "notebooks/01_is_it_a_5.ipynb"
RERUN_GOAL_SECONDS = 30.0  # every notebook re-executed on a filled cache, on the machine measured


def with_comment(path: str) -> None:
    """Add a comment line at the top of the notebook's first code cell (its key changes)."""
    notebook = json.loads((ROOT / path).read_text())
    cell = next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")
    cell["source"] = ["# timed by benchmarks/warm.py\n", *cell["source"]]
    (ROOT / path).write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def main() -> int:
    """Time the four runs, print and record them."""
    meter, make = Meter(), ["make", "--no-print-directory", "figures"]
    rerun = meter.run("everything re-executed: `make figures RERUN=1`", [*make, "RERUN=1"])
    meter.run("nothing changed: `make figures`", make)
    with_comment(CHANGED)
    try:
        meter.run(f"one notebook changed ({CHANGED}): `make figures`", make)
    finally:
        subprocess.run(["git", "checkout", "--", CHANGED], cwd=ROOT, check=True)
    meter.run("the same notebook restored from git: `make figures`", make)
    failed = [row.label for row in meter.rows if row.exit_code]
    record(
        [
            *meter.header("bench-warm"),
            *TABLE,
            *(row.line() for row in meter.rows),
            "",
            f"- everything re-executed: {rerun.wall:.0f} s (goal ≤ {RERUN_GOAL_SECONDS:.0f} s): "
            + verdict(rerun.wall <= RERUN_GOAL_SECONDS),
            f"- runs that failed: {', '.join(failed) or 'none'}",
        ]
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
