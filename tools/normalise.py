"""Make an executed notebook what a reader's own run gives: no injected cell, no timings."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbconvert.preprocessors import CoalesceStreamsPreprocessor
from nbstripout import strip_output

__all__ = ["INJECTED_TAG", "normalise_notebook"]

INJECTED_TAG = "injected-parameters"
# What nbstripout's command strips by default, and what papermill and the kernel's version add.
EXTRA_KEYS = [
    *("metadata.signature", "metadata.widgets", "cell.metadata.collapsed"),
    *("cell.metadata.ExecuteTime", "cell.metadata.execution", "cell.metadata.heading_collapsed"),
    *("cell.metadata.hidden", "cell.metadata.scrolled", "metadata.papermill"),
    *("cell.metadata.papermill", "metadata.language_info.version"),
]


def normalise_notebook(notebook: nbformat.NotebookNode, path: Path) -> None:
    """Write the executed ``notebook`` to ``path``, normalised.

    Streams are joined as nbconvert does (the kernel sends them in varying chunks), execution
    counts renumbered without the injected parameters cell (a reader's run has none), then
    nbstripout (``--keep-output --keep-count``) drops that cell and ``EXTRA_KEYS``.
    """
    CoalesceStreamsPreprocessor().preprocess(notebook, {})
    count = 0
    for cell in notebook.cells:
        if cell.cell_type != "code" or INJECTED_TAG in cell.metadata.get("tags", []):
            continue
        count += 1
        cell.execution_count = count
        for output in cell.outputs:
            if "execution_count" in output:
                output["execution_count"] = count
    strip_output(
        notebook,
        keep_output=True,
        keep_count=True,
        keep_id=False,
        extra_keys=EXTRA_KEYS,
        drop_tagged_cells=[INJECTED_TAG],
    )
    nbformat.write(notebook, path)
