"""The project's set-up: pinned versions agree everywhere, every make target is documented."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.version import Version


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def locks(root: Path) -> dict[str, dict[str, str]]:
    """The pins of each lock file, by normalised name."""
    pins: dict[str, dict[str, str]] = {}
    for lock in ("requirements.lock", "requirements-dev.lock"):
        lines = (root / lock).read_text().splitlines()
        pairs = [line.split("==") for line in lines if line and not line.startswith((" ", "#"))]
        pins[lock] = {normalise(name): version for name, version in pairs}
    return pins


@pytest.fixture(scope="module")
def environment(root: Path) -> dict:
    return yaml.safe_load((root / "environment.yml").read_text())


@pytest.fixture(scope="module")
def environment_versions(environment: dict) -> dict[str, str]:
    """The pins of environment.yml, conda's and pip's, by normalised name."""
    entries = []
    for entry in environment["dependencies"]:
        if isinstance(entry, dict):
            entries += [line.split("==") for line in entry["pip"] if "==" in line]
        elif "=" in entry and not entry.startswith("python"):
            entries.append(entry.split("="))
    return {normalise(name): version for name, version in entries}


def requirement_name(line: str) -> str:
    return normalise(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0])


def test_environment_yml_pins_the_reader_lock_versions(locks, environment_versions) -> None:
    lock, env = locks["requirements.lock"], environment_versions
    disagreements = {
        name: (env[name], lock.get(name)) for name in env if env[name] != lock.get(name)
    }
    assert disagreements == {}, "environment.yml (left) disagrees with requirements.lock (right)"


def test_every_direct_dependency_is_pinned(
    root: Path, pyproject: dict, locks, environment_versions
) -> None:
    reader, dev = locks["requirements.lock"], locks["requirements-dev.lock"]
    missing = [
        name
        for name in map(requirement_name, pyproject["dependencies"])
        if name not in reader or name not in environment_versions
    ]
    lines = (root / "requirements-dev.in").read_text().splitlines()
    direct = [line for line in lines if line and not line.startswith(("#", "-"))]
    missing += [name for name in map(requirement_name, direct) if name not in dev]
    assert missing == []


def test_the_development_lock_agrees_with_the_reader_lock(locks) -> None:
    reader, dev = locks["requirements.lock"], locks["requirements-dev.lock"]
    both = dev.keys() & reader.keys()
    assert {name: dev[name] for name in both} == {name: reader[name] for name in both}


def test_the_reader_lock_holds_no_development_tool(locks, pyproject: dict) -> None:
    """Neither the tests' tools nor the notebook runner's: the reader's install runs notebooks."""
    tools = {"playwright", "pytest", "ruff", "pip-tools", "papermill", "nbstripout", "tqdm"}
    assert tools & locks["requirements.lock"].keys() == set()
    assert tools & set(map(requirement_name, pyproject["dependencies"])) == set()
    assert {"papermill", "nbstripout", "tqdm"} <= locks["requirements-dev.lock"].keys()


def test_one_python_range_everywhere(
    root: Path,
    pyproject: dict,
    environment: dict,
    python_range: tuple[Version, Version],
    release_series: list[str],
) -> None:
    oldest, newest = python_range
    makefile = (root / "Makefile").read_text()
    candidates = re.search(r"^PYTHON \?= (.+)$", makefile, re.M).group(1).split()
    assert candidates == [f"python{series}" for series in reversed(release_series)] + ["python3"]
    lowest, highest = ", ".join(map(str, oldest.release)), ", ".join(map(str, newest.release))
    assert f"({lowest}) <= sys.version_info[:3] and sys.version_info[:2] <= ({highest})" in makefile
    ruff = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["ruff"]
    assert ruff["target-version"] == f"py3{oldest.minor}"
    assert f"python{pyproject['requires-python']}" in environment["dependencies"]
    assert f"CPython {oldest} to {newest}" in (root / "README.md").read_text()


def test_environment_yml_uses_conda_forge(environment: dict) -> None:
    assert environment["channels"] == ["conda-forge"]


def test_make_help_lists_every_target(root: Path) -> None:
    """Every phony target a person may ask for (not those of the make inside a run)."""
    makefiles = [root / "Makefile", *sorted((root / "mk").glob("*.mk"))]
    texts = [makefile.read_text().split("\nifdef MNIST_STUDY_RUN\n")[0] for makefile in makefiles]
    phony = {
        target
        for text in texts
        for line in re.findall(r"^\.PHONY: (.+)$", text, re.M)
        for target in line.split()
    } - {"FORCE"}
    command = ["make", "--no-print-directory", "help"]
    shown = subprocess.run(command, cwd=root, capture_output=True, text=True, check=True).stdout
    listed = {line.split()[0] for line in shown.splitlines()[1:] if line.startswith("  ")}
    assert listed == phony
