"""The checkout's folders that the tools read and write (the library knows only data and cache)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
README_FIGURE_DIR = ROOT / "readme_images"
BUILD_DIR = ROOT / "build"
# Where a notebook run by hand writes its figures (its parameters cell says so); git-ignored.
SCRATCH_FIGURE_DIR = BUILD_DIR / "figures"
# The committed test fixture (2,000 training and 500 test images), for make smoke and make data.
FIXTURE_FILE = ROOT / "tests" / "fixtures" / "mnist_784_fixture.npz"
