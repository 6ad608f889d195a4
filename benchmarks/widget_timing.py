"""What the widgets' benchmarks share: a start timed in a new process, a cache folder, a verdict."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

from mnist_study import settings


def start_seconds(code: str, folder: str) -> float:
    """The seconds ``code`` prints, run in a new process with ``folder`` as the result cache."""
    env = {**os.environ, settings.CACHE_DIR_ENV: folder}
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return float(run.stdout)


@contextlib.contextmanager
def cache_folder(folder: str) -> Iterator[None]:
    """Within the block this process keeps its results in ``folder``; the setting is restored."""
    before = os.environ.get(settings.CACHE_DIR_ENV)
    os.environ[settings.CACHE_DIR_ENV] = folder
    try:
        yield
    finally:
        os.environ.pop(settings.CACHE_DIR_ENV)
        if before is not None:
            os.environ[settings.CACHE_DIR_ENV] = before


def verdict(met: bool) -> str:
    """The word the results file uses."""
    return "met" if met else "NOT met"
