"""What the tools share: the checkout's folders they read and write (the library knows only data
and cache), and the environment they start notebook kernels with."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
README_FIGURE_DIR = ROOT / "readme_images"
BUILD_DIR = ROOT / "build"
# Where a notebook run by hand writes its figures (its parameters cell says so); git-ignored.
SCRATCH_FIGURE_DIR = BUILD_DIR / "figures"
# The committed test fixture (2,000 training and 500 test images), for make smoke and make data.
FIXTURE_FILE = ROOT / "tests" / "fixtures" / "mnist_784_fixture.npz"
# glibc's malloc gives every freed block of 128 KiB or more back to the system (the threshold fixed
# instead of rising as blocks are freed, which leaves holes in the heap that still count as used):
# notebook 06's largest forest then peaks at 1.88 GB instead of 2.07, with the same results.
KERNEL_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": "131072"}
