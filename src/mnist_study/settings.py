"""Where the library keeps its data and results; the only module that reads environment variables.

``MNIST_STUDY_DATA_DIR`` names the dataset cache and ``MNIST_STUDY_CACHE_DIR`` the cache of model
results. Without them, both live in the project folder: the nearest of the current directory and
its parents that holds ``pyproject.toml`` (so a notebook run from ``notebooks/`` in JupyterLab and
the runner find the same ``data/`` and ``.cache/``), else the current directory. The rule does not
depend on where the package is installed. Both are read when asked for, not at import.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_DIR_ENV", "CORES", "DATA_DIR_ENV", "cache_dir", "data_dir", "project_dir"]

CORES = os.cpu_count() or 1
DATA_DIR_ENV = "MNIST_STUDY_DATA_DIR"
CACHE_DIR_ENV = "MNIST_STUDY_CACHE_DIR"


def project_dir() -> Path:
    """The nearest of the current directory and its parents holding ``pyproject.toml``, else it."""
    here = Path.cwd().resolve()
    return next(
        (folder for folder in (here, *here.parents) if (folder / "pyproject.toml").is_file()), here
    )


def configured_dir(variable: str, default: str) -> Path:
    """The folder named by the environment ``variable``, else ``default`` in the project folder."""
    configured = os.environ.get(variable)
    return Path(configured).expanduser().resolve() if configured else project_dir() / default


def data_dir() -> Path:
    """The dataset cache: ``$MNIST_STUDY_DATA_DIR``, else ``data/`` in the project folder."""
    return configured_dir(DATA_DIR_ENV, "data")


def cache_dir() -> Path:
    """The cache of model results: ``$MNIST_STUDY_CACHE_DIR``, else the project's ``.cache/``."""
    return configured_dir(CACHE_DIR_ENV, ".cache")
