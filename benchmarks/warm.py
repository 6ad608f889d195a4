"""``make bench-warm``: the main job with a filled cache, timed as a person runs it.

1. everything re-executed: ``make figures RERUN=1`` (each result read back from the cache);
2. nothing changed: ``make figures``;
3. one notebook changed: a comment added to the first code cell of ``CHANGED``, then
   ``make figures``; the notebook is then restored from git and ``make figures`` runs it once
   more (its code is the committed code again), which is timed too.

Run it after a run that filled the cache (``make figures``, or ``make bench-memory
BENCH_CACHE=.cache``). It writes its own section of ``benchmarks/RESULTS.md``, the rest of the file
left as ``make bench`` wrote it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

from benchmarks.run import ROOT, Row, measure

CHANGED = "notebooks/01_is_it_a_5.ipynb"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
TITLE = "## Warm runs of the main job"


def with_comment(path: str) -> None:
    """Add a comment line at the top of the notebook's first code cell (its key changes)."""
    notebook = json.loads((ROOT / path).read_text())
    cell = next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")
    cell["source"] = ["# timed by benchmarks/warm.py\n", *cell["source"]]
    (ROOT / path).write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def record(section: list[str]) -> None:
    """Replace this benchmark's section of RESULTS.md (or add it at the end)."""
    text = RESULTS.read_text() if RESULTS.exists() else ""
    if TITLE in text:
        before, after = text.split(TITLE, 1)
        rest = after.split("\n## ", 1)
        text = before + ("\n".join(section) + ("\n\n## " + rest[1] if len(rest) > 1 else ""))
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(section)
    RESULTS.write_text(text.rstrip("\n") + "\n")


def main() -> int:
    """Time the four runs, print and record them."""
    env = dict(os.environ)
    make = ["make", "--no-print-directory", "figures"]
    rows: list[Row] = [
        measure("everything re-executed: `make figures RERUN=1`", [*make, "RERUN=1"], env)
    ]
    rows.append(measure("nothing changed: `make figures`", make, env))
    with_comment(CHANGED)
    try:
        rows.append(measure(f"one notebook changed ({CHANGED}): `make figures`", make, env))
    finally:
        subprocess.run(["git", "checkout", "--", CHANGED], cwd=ROOT, check=True)
    rows.append(measure("the same notebook restored from git: `make figures`", make, env))
    section = [
        TITLE,
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `make bench-warm` on a machine "
        f"with {os.cpu_count()} cores, the cache filled by the cold run of `benchmarks/MEMORY.md`.",
        "",
        "| run | wall (s) | CPU (s) | peak PSS (GB) | exit |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {r.label} | {r.wall:.1f} | {r.cpu:.1f} | {r.peak_gb:.2f} | {r.exit_code} |"
            for r in rows
        ),
    ]
    record(section)
    print("\n".join(section))
    return max(row.exit_code for row in rows)


if __name__ == "__main__":
    sys.exit(main())
