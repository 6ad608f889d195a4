"""The study's paths and settings, defined once; the only module that reads environment variables.

``MNIST_STUDY_DATA_DIR`` moves the dataset cache (default ``data/``) and ``MNIST_STUDY_CACHE_DIR``
the cache of model results (default ``.cache/``). Both are read when asked for, not at import.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "BUILD_DIR",
    "CACHE_DIR_ENV",
    "CORES",
    "DATA_DIR_ENV",
    "FIXTURE_FILE",
    "NOTEBOOK_DIR",
    "README_FIGURE_DIR",
    "ROOT",
    "SCRATCH_FIGURE_DIR",
    "cache_dir",
    "data_dir",
]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
README_FIGURE_DIR = ROOT / "readme_images"
BUILD_DIR = ROOT / "build"
# Where a notebook run by hand writes its figures (git-ignored); only the main job writes
# README_FIGURE_DIR.
SCRATCH_FIGURE_DIR = BUILD_DIR / "figures"
# The committed test fixture: 2,000 training and 500 test images of MNIST.
FIXTURE_FILE = ROOT / "tests" / "fixtures" / "mnist_784_fixture.npz"
CORES = os.cpu_count() or 1

DATA_DIR_ENV = "MNIST_STUDY_DATA_DIR"
CACHE_DIR_ENV = "MNIST_STUDY_CACHE_DIR"


def configured_dir(variable: str, default: Path) -> Path:
    """The folder named by the environment ``variable``, else ``default``."""
    configured = os.environ.get(variable)
    return Path(configured).expanduser().resolve() if configured else default


def data_dir() -> Path:
    """The dataset cache: ``$MNIST_STUDY_DATA_DIR``, else ``data/`` at the project root."""
    return configured_dir(DATA_DIR_ENV, ROOT / "data")


def cache_dir() -> Path:
    """The cache of model results: ``$MNIST_STUDY_CACHE_DIR``, else ``.cache/`` at the root."""
    return configured_dir(CACHE_DIR_ENV, ROOT / ".cache")
