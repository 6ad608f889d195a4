"""The project's set-up: pins that agree, documented make targets, licence, citation, CI, Binder."""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from tools.paths import KERNEL_ENVIRONMENT, ROOT


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
    """environment.yml, the locks and the direct dependencies agree; readers get no dev tool."""
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


def test_the_licence_notice_and_citation_name_their_terms_and_authors(pyproject: dict) -> None:
    """The MIT licence; the fixture's CC BY-SA 3.0 and authors; CITATION.cff's references."""
    licence = (ROOT / "LICENSE").read_text()
    assert (pyproject["license"], pyproject["license-files"]) == ("MIT", ["LICENSE"])
    assert licence.startswith("MIT License\n")
    assert re.search(r"^Copyright \(c\) \d{4} The mnist-study authors$", licence, re.M)
    notice = (ROOT / "tests" / "fixtures" / "README.md").read_text()
    for required in ("CC BY-SA 3.0", "creativecommons.org/licenses/by-sa/3.0", "Yann LeCun"):
        assert required in notice
    assert re.search(r"Corinna\s+Cortes", notice) and re.search(r"J\.\s+C\.\s+Burges", notice)
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and {"message", "title"} <= citation.keys()
    assert citation["authors"] == [{"name": "The mnist-study authors"}]
    assert (citation["version"], citation["license"]) == (pyproject["version"], "MIT")
    book, paper = citation["references"]
    assert (book["type"], book["edition"], book["year"]) == ("book", "3rd", 2022)
    assert book["authors"][0]["family-names"] == "Géron"
    assert paper["type"] == "article" and paper["journal"] == "Proceedings of the IEEE"
    assert [a["family-names"] for a in paper["authors"]] == ["LeCun", "Bottou", "Bengio", "Haffner"]


def test_ci_the_dev_container_and_binder_build_the_readers_environment(release_series) -> None:
    """CI runs `make test`, the dev container `make env`, Binder the reader's lock."""
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    assert "make test" in [line.split("#")[0].strip() for line in block.splitlines()]
    assert "make test" in (ROOT / ".ci" / "run").read_text().splitlines()
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "test.yml").read_text())
    (job,) = workflow["jobs"].values()
    assert [step["run"] for step in job["steps"] if "run" in step] == ["make test"]
    assert job["runs-on"] == "ubuntu-latest"
    assert job["strategy"]["matrix"]["python-version"] == [release_series[0], release_series[-1]]
    container = json.loads((ROOT / ".devcontainer" / "devcontainer.json").read_text())
    assert container["postCreateCommand"] == "make env"
    assert re.search(r"/python:(3\.\d+)$", container["image"]).group(1) in release_series
    binder = ROOT / "binder"
    assert "-r ../requirements.lock" in (binder / "requirements.txt").read_text().splitlines()
    assert (binder / "runtime.txt").read_text().strip().removeprefix("python-") in release_series
    assert os.access(binder / "postBuild", os.X_OK)
    assert "pip install --no-deps ." in (binder / "postBuild").read_text()
    assert "$(PIP) install --no-deps --force-reinstall ." in (ROOT / "Makefile").read_text()
    start = (binder / "start").read_text().splitlines()
    exports = [f"export {name}={value}" for name, value in KERNEL_ENVIRONMENT.items()]
    assert os.access(binder / "start", os.X_OK) and start[-1] == 'exec "$@"'
    assert [line for line in start if line.startswith("export ")] == exports
