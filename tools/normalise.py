"""Make an executed notebook what a reader's own run gives: no injected cell, no timings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["normalise_notebook"]

# Stripped on top of nbstripout's own defaults: what papermill and the kernel's version add.
EXTRA_KEYS = "metadata.papermill cell.metadata.papermill metadata.language_info.version"
INJECTED_TAG = "injected-parameters"


def normalise_notebook(path: Path) -> None:
    """Normalise the executed notebook at ``path`` in place.

    Streams are joined as nbconvert does (the kernel sends them in varying chunks), execution
    counts renumbered without papermill's injected cell (a reader's run has none), then the
    ``nbstripout --keep-output --keep-count`` command strips its default keys and ``EXTRA_KEYS``.
    """
    import nbformat
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor

    notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    CoalesceStreamsPreprocessor().preprocess(notebook, {})
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    count = 0
    for cell in code:
        if INJECTED_TAG in cell.metadata.get("tags", []):
            continue
        count += 1
        cell.execution_count = count
        for output in cell.outputs:
            if "execution_count" in output:
                output["execution_count"] = count
    nbformat.write(notebook, path)
    # nbstripout adds keys from `git config`: an empty configuration keeps the result the same
    # on every machine.
    git_free = {"GIT_DIR": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    subprocess.run(
        [
            *(sys.executable, "-m", "nbstripout", "--keep-output", "--keep-count"),
            *("--drop-tagged-cells", INJECTED_TAG, "--extra-keys", EXTRA_KEYS, str(path)),
        ],
        env={**os.environ, **git_free},
        check=True,
        capture_output=True,
    )
