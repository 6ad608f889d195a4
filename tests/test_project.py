"""The project's set-up: pinned versions agree everywhere, every make target is documented."""

from __future__ import annotations

import re
import subprocess
import tomllib

import yaml
from conftest import ROOT


def lock_versions() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[normalise(name)] = version
    return pins


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def environment_versions() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pins = {}
    for entry in env["dependencies"]:
        if isinstance(entry, dict):
            for pip_line in entry["pip"]:
                if "==" in pip_line:
                    name, version = pip_line.split("==")
                    pins[normalise(name)] = version
        elif "=" in entry and not entry.startswith("python="):
            name, version = entry.split("=")
            pins[normalise(name)] = version
    return pins


def test_environment_yml_pins_the_lock_versions() -> None:
    lock, env = lock_versions(), environment_versions()
    disagreements = {
        name: (env[name], lock.get(name)) for name in env if env[name] != lock.get(name)
    }
    assert disagreements == {}, "environment.yml (left) disagrees with requirements.lock (right)"


def test_every_direct_dependency_is_pinned_in_both() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    direct = project["dependencies"] + project["optional-dependencies"]["dev"]
    lock, env = lock_versions(), environment_versions()
    missing = [name for name in map(normalise, direct) if name not in lock or name not in env]
    assert missing == []


def test_environment_yml_uses_python_311_from_conda_forge() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    assert "python=3.11" in env["dependencies"]


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
