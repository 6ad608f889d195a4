"""Every pinned package has a wheel for every supported Python (asks the package registry)."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import ROOT
from test_project import LOCKS, lock_versions, normalise, python_range, release_series

# The oldest admitted release of the oldest series (pip takes "3.11" for 3.11.0), then each series.
PYTHONS = [str(python_range()[0]), *release_series()[1:]]


def pip(*args: str) -> subprocess.CompletedProcess:
    """Run this environment's pip, with one retry and a short timeout per request."""
    command = [sys.executable, "-m", "pip", "--retries", "1", "--timeout", "30", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True)


def dry_run(python: str, target: Path) -> subprocess.CompletedProcess:
    """Resolve both locks for `python` from wheels alone, installing nothing."""
    locks = [arg for lock in LOCKS for arg in ("-r", lock)]
    return pip(
        "install",
        "--dry-run",
        "--target",
        str(target),
        "--python-version",
        python,
        "--only-binary=:all:",
        *locks,
    )


@pytest.fixture(scope="module")
def resolutions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess]:
    """One dry run per supported Python, side by side (they mostly wait on the registry)."""
    with ThreadPoolExecutor(len(PYTHONS)) as pool:
        runs = pool.map(lambda p: dry_run(p, tmp_path_factory.mktemp(p)), PYTHONS)
        return dict(zip(PYTHONS, runs, strict=True))


def would_install(stdout: str) -> dict[str, str]:
    """The name and version of each distribution on pip's "Would install" line."""
    line = next(line for line in stdout.splitlines() if line.startswith("Would install "))
    pairs = (item.rsplit("-", 1) for item in line.removeprefix("Would install ").split())
    return {normalise(name): version for name, version in pairs}


@pytest.mark.parametrize("python", PYTHONS)
def test_the_locks_install_from_wheels_alone(python: str, resolutions: dict) -> None:
    result = resolutions[python]
    if result.returncode != 0 and pip("index", "versions", "pip").returncode != 0:
        pytest.skip(f"no package registry answered: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stderr[-2000:]
    pinned = {name: version for lock in LOCKS for name, version in lock_versions(lock).items()}
    assert would_install(result.stdout) == pinned
