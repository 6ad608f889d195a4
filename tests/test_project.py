"""The project's set-up: pinned versions agree everywhere, every make target is documented."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str:
    return normalise(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0])


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


def test_the_pins_agree_and_hold_every_direct_dependency(root, pyproject, locks, environment):
    """environment.yml (conda-forge) pins the reader lock's versions, the development lock agrees
    with it, and each pins every direct dependency of its set."""
    pairs = []
    for entry in environment["dependencies"]:
        if isinstance(entry, dict):
            pairs += [line.split("==") for line in entry["pip"] if "==" in line]
        elif "=" in entry and not entry.startswith("python"):
            pairs.append(entry.split("="))
    conda = {normalise(name): version for name, version in pairs}
    reader, dev = locks["requirements.lock"], locks["requirements-dev.lock"]
    assert environment["channels"] == ["conda-forge"]
    assert {name: (v, reader.get(name)) for name, v in conda.items() if v != reader.get(name)} == {}
    both = dev.keys() & reader.keys()
    assert {name: dev[name] for name in both} == {name: reader[name] for name in both}
    direct = list(map(requirement_name, pyproject["dependencies"]))
    assert [name for name in direct if name not in reader or name not in conda] == []
    lines = (root / "requirements-dev.in").read_text().splitlines()
    direct = [requirement_name(ln) for ln in lines if ln and not ln.startswith(("#", "-"))]
    assert [name for name in direct if name not in dev] == []


def test_the_reader_lock_holds_no_development_tool(locks, pyproject: dict) -> None:
    """Neither the tests' tools nor the notebook runner's: the reader's install runs notebooks."""
    tools = {"playwright", "pytest", "ruff", "pip-tools", "papermill", "nbstripout", "tqdm"}
    assert tools & locks["requirements.lock"].keys() == set()
    assert tools & set(map(requirement_name, pyproject["dependencies"])) == set()
    assert {"papermill", "nbstripout", "tqdm"} <= locks["requirements-dev.lock"].keys()


def test_one_python_range_everywhere(root, pyproject, environment, python_range, release_series):
    """The Makefile, ruff, environment.yml and the README name the range requires-python sets."""
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
