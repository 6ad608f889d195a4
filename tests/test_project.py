"""The project's set-up: pins that agree, one Python range, licence, citation, CI, Binder."""

from __future__ import annotations

import json
import os
import re
import tomllib

import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tools.paths import KERNEL_ENVIRONMENT, ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
ENVIRONMENT = yaml.safe_load((ROOT / "environment.yml").read_text())
SPEC = SpecifierSet(PROJECT["requires-python"])
OLDEST = next(Version(s.version) for s in SPEC if s.operator == ">=")
BELOW = next(Version(s.version) for s in SPEC if s.operator == "<")
NEWEST = Version(f"{BELOW.major}.{BELOW.minor - 1}")
SERIES = [f"3.{minor}" for minor in range(OLDEST.minor, NEWEST.minor + 1)]  # oldest first


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str:
    return normalise(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0])


def pins(lock: str) -> dict[str, str]:
    """A lock file's pins, by normalised name."""
    lines = (ROOT / lock).read_text().splitlines()
    pairs = [line.split("==") for line in lines if line and not line.startswith((" ", "#"))]
    return {normalise(name): version for name, version in pairs}


def test_the_pins_agree_and_hold_every_direct_dependency() -> None:
    """environment.yml, the locks and the direct dependencies agree; readers get no dev tool."""
    pairs = []
    for entry in ENVIRONMENT["dependencies"]:
        if isinstance(entry, dict):
            pairs += [line.split("==") for line in entry["pip"] if "==" in line]
        elif "=" in entry and not entry.startswith("python"):
            pairs.append(entry.split("="))
    conda = {normalise(name): version for name, version in pairs}
    reader, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert ENVIRONMENT["channels"] == ["conda-forge"]
    assert {name: (v, reader.get(name)) for name, v in conda.items() if v != reader.get(name)} == {}
    both = dev.keys() & reader.keys()
    assert {name: dev[name] for name in both} == {name: reader[name] for name in both}
    direct = list(map(requirement_name, PROJECT["dependencies"]))
    assert [name for name in direct if name not in reader or name not in conda] == []
    lines = (ROOT / "requirements-dev.in").read_text().splitlines()
    direct_dev = [requirement_name(ln) for ln in lines if ln and not ln.startswith(("#", "-"))]
    assert [name for name in direct_dev if name not in dev] == []
    tools = {"playwright", "pytest", "ruff", "pip-tools", "papermill", "nbstripout", "tqdm"}
    assert tools & reader.keys() == set() and tools & set(direct) == set()
    assert {"papermill", "nbstripout", "tqdm"} <= dev.keys()


def test_one_python_range_everywhere() -> None:
    """The Makefile, ruff, environment.yml and the README name the range requires-python sets."""
    makefile = (ROOT / "Makefile").read_text()
    candidates = re.search(r"^PYTHON \?= (.+)$", makefile, re.M).group(1).split()
    assert candidates == [f"python{series}" for series in reversed(SERIES)] + ["python3"]
    lowest, highest = ", ".join(map(str, OLDEST.release)), ", ".join(map(str, NEWEST.release))
    assert f"({lowest}) <= sys.version_info[:3] and sys.version_info[:2] <= ({highest})" in makefile
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py3{OLDEST.minor}"
    assert f"python{PROJECT['requires-python']}" in ENVIRONMENT["dependencies"]
    assert f"CPython {OLDEST} to {NEWEST}" in (ROOT / "README.md").read_text()


def test_the_licence_notice_and_citation_name_their_terms_and_authors() -> None:
    """The MIT licence; the fixture's CC BY-SA 3.0 and authors; CITATION.cff's references."""
    licence = (ROOT / "LICENSE").read_text()
    assert (PROJECT["license"], PROJECT["license-files"]) == ("MIT", ["LICENSE"])
    assert licence.startswith("MIT License\n")
    assert re.search(r"^Copyright \(c\) \d{4} The mnist-study authors$", licence, re.M)
    notice = (ROOT / "tests" / "fixtures" / "README.md").read_text()
    for required in ("CC BY-SA 3.0", "creativecommons.org/licenses/by-sa/3.0", "Yann LeCun"):
        assert required in notice
    assert re.search(r"Corinna\s+Cortes", notice) and re.search(r"J\.\s+C\.\s+Burges", notice)
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and {"message", "title"} <= citation.keys()
    assert citation["authors"] == [{"name": "The mnist-study authors"}]
    assert (citation["version"], citation["license"]) == (PROJECT["version"], "MIT")
    book, paper = citation["references"]
    assert (book["type"], book["edition"], book["year"]) == ("book", "3rd", 2022)
    assert book["authors"][0]["family-names"] == "Géron"
    assert paper["type"] == "article" and paper["journal"] == "Proceedings of the IEEE"
    assert [a["family-names"] for a in paper["authors"]] == ["LeCun", "Bottou", "Bengio", "Haffner"]


def test_ci_the_dev_container_and_binder_build_the_readers_environment() -> None:
    """CI runs `make test`, the dev container `make env`, Binder the reader's lock."""
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    assert "make test" in [line.split("#")[0].strip() for line in block.splitlines()]
    assert "make test" in (ROOT / ".ci" / "run").read_text().splitlines()
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "test.yml").read_text())
    (job,) = workflow["jobs"].values()
    assert [step["run"] for step in job["steps"] if "run" in step] == ["make test"]
    assert job["runs-on"] == "ubuntu-latest"
    assert job["strategy"]["matrix"]["python-version"] == [SERIES[0], SERIES[-1]]
    container = json.loads((ROOT / ".devcontainer" / "devcontainer.json").read_text())
    assert container["postCreateCommand"] == "make env"
    assert re.search(r"/python:(3\.\d+)$", container["image"]).group(1) in SERIES
    binder = ROOT / "binder"
    assert "-r ../requirements.lock" in (binder / "requirements.txt").read_text().splitlines()
    assert (binder / "runtime.txt").read_text().strip().removeprefix("python-") in SERIES
    assert os.access(binder / "postBuild", os.X_OK)
    assert "pip install --no-deps ." in (binder / "postBuild").read_text()
    assert "$(PIP) install --no-deps --force-reinstall ." in (ROOT / "Makefile").read_text()
    start = (binder / "start").read_text().splitlines()
    exports = [f"export {name}={value}" for name, value in KERNEL_ENVIRONMENT.items()]
    assert os.access(binder / "start", os.X_OK) and start[-1] == 'exec "$@"'
    assert [line for line in start if line.startswith("export ")] == exports
