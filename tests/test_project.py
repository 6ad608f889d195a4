"""The project's set-up: pinned versions agree everywhere, every make target is documented."""

from __future__ import annotations

import re
import subprocess
import tomllib

import yaml
from conftest import ROOT
from packaging.specifiers import SpecifierSet
from packaging.version import Version

LOCKS = ("requirements.lock", "requirements-dev.lock")


def lock_versions(lock: str) -> dict[str, str]:
    """The pins of one lock file, by normalised name."""
    pins = {}
    for line in (ROOT / lock).read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, version = line.split("==")
            pins[normalise(name)] = version
    return pins


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str:
    return normalise(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0])


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def python_range() -> tuple[Version, Version]:
    """The oldest Python that requires-python admits, and the newest 3.x release series."""
    spec = SpecifierSet(project()["requires-python"])
    oldest = next(Version(s.version) for s in spec if s.operator == ">=")
    below = next(Version(s.version) for s in spec if s.operator == "<")
    return oldest, Version(f"{below.major}.{below.minor - 1}")


def dev_requirements() -> list[str]:
    lines = (ROOT / "requirements-dev.in").read_text().splitlines()
    return [line for line in lines if line and not line.startswith(("#", "-"))]


def environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def environment_versions() -> dict[str, str]:
    pins = {}
    for entry in environment()["dependencies"]:
        if isinstance(entry, dict):
            for pip_line in entry["pip"]:
                if "==" in pip_line:
                    name, version = pip_line.split("==")
                    pins[normalise(name)] = version
        elif "=" in entry and not entry.startswith("python"):
            name, version = entry.split("=")
            pins[normalise(name)] = version
    return pins


def test_environment_yml_pins_the_reader_lock_versions() -> None:
    lock, env = lock_versions("requirements.lock"), environment_versions()
    disagreements = {
        name: (env[name], lock.get(name)) for name in env if env[name] != lock.get(name)
    }
    assert disagreements == {}, "environment.yml (left) disagrees with requirements.lock (right)"


def test_every_direct_dependency_is_pinned() -> None:
    reader, dev = lock_versions("requirements.lock"), lock_versions("requirements-dev.lock")
    env = environment_versions()
    missing = [
        name
        for name in map(requirement_name, project()["dependencies"])
        if name not in reader or name not in env
    ]
    missing += [name for name in map(requirement_name, dev_requirements()) if name not in dev]
    assert missing == []


def test_the_development_lock_agrees_with_the_reader_lock() -> None:
    reader, dev = lock_versions("requirements.lock"), lock_versions("requirements-dev.lock")
    assert {name: dev[name] for name in dev.keys() & reader.keys()} == {
        name: reader[name] for name in dev.keys() & reader.keys()
    }


def test_the_reader_lock_holds_no_development_tool() -> None:
    reader = lock_versions("requirements.lock")
    assert {"playwright", "pytest", "ruff", "pip-tools"} & reader.keys() == set()


def release_series() -> list[str]:
    """Each supported 3.x series, oldest first."""
    oldest, newest = python_range()
    return [f"3.{minor}" for minor in range(oldest.minor, newest.minor + 1)]


def test_one_python_range_everywhere() -> None:
    oldest, newest = python_range()
    makefile = (ROOT / "Makefile").read_text()
    candidates = re.search(r"^PYTHON \?= (.+)$", makefile, re.M).group(1).split()
    assert candidates == [f"python{series}" for series in reversed(release_series())] + ["python3"]
    lowest, highest = ", ".join(map(str, oldest.release)), ", ".join(map(str, newest.release))
    assert f"({lowest}) <= sys.version_info[:3] and sys.version_info[:2] <= ({highest})" in makefile
    ruff = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]
    assert ruff["target-version"] == f"py3{oldest.minor}"
    assert f"python{project()['requires-python']}" in environment()["dependencies"]
    assert f"CPython {oldest} to {newest}" in (ROOT / "README.md").read_text()


def test_environment_yml_uses_conda_forge() -> None:
    assert environment()["channels"] == ["conda-forge"]


def test_make_help_lists_every_target() -> None:
    makefiles = [ROOT / "Makefile", *sorted((ROOT / "mk").glob("*.mk"))]
    phony = {
        target
        for makefile in makefiles
        for line in re.findall(r"^\.PHONY: (.+)$", makefile.read_text(), re.M)
        for target in line.split()
    }
    shown = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = {line.split()[0] for line in shown.splitlines()[1:] if line.startswith("  ")}
    assert listed == phony
