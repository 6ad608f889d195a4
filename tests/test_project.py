"""The project's set-up: pins, one Python range, licence, citation, CI, Binder, its folders."""

import json
import os
import re
import tomllib
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from mnist_study import settings
from tools.paths import KERNEL_ENVIRONMENT, ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
SPEC = SpecifierSet(PROJECT["requires-python"])
OLDEST = next(Version(s.version) for s in SPEC if s.operator == ">=")
BELOW = next(Version(s.version) for s in SPEC if s.operator == "<")
NEWEST = Version(f"{BELOW.major}.{BELOW.minor - 1}")
SERIES = [f"3.{minor}" for minor in range(OLDEST.minor, NEWEST.minor + 1)]  # oldest first


def read(name: str) -> str:
    return (ROOT / name).read_text()


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str:
    return normalise(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0])


def pins(lock: str) -> dict[str, str]:
    """A lock file's pins, by normalised name."""
    lines = read(lock).splitlines()
    pairs = [line.split("==") for line in lines if line and not line.startswith((" ", "#"))]
    return {normalise(name): version for name, version in pairs}


def test_the_pins_agree_and_hold_every_direct_dependency() -> None:
    """environment.yml, the locks and the direct dependencies agree; readers get no dev tool."""
    environment = read("environment.yml")
    assert yaml.safe_load(environment)["channels"] == ["conda-forge"]
    pairs = re.findall(r"^\s+- ([\w.-]+)==?([\w.]+)$", environment, re.M)  # name=1.0, pip's ==
    conda = {normalise(name): version for name, version in pairs}
    reader, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert {name: (v, reader.get(name)) for name, v in conda.items() if v != reader.get(name)} == {}
    assert {name: (v, dev[name]) for name, v in reader.items() if dev.get(name, v) != v} == {}
    direct = list(map(requirement_name, PROJECT["dependencies"]))
    assert [name for name in direct if name not in reader or name not in conda] == []
    lines = read("requirements-dev.in").splitlines()
    direct_dev = [requirement_name(ln) for ln in lines if ln and not ln.startswith(("#", "-"))]
    assert [name for name in direct_dev if name not in dev] == []
    tools = {"playwright", "pytest", "ruff", "pip-tools", "papermill", "nbstripout", "tqdm"}
    assert tools & reader.keys() == set() and tools & set(direct) == set()
    assert {"papermill", "nbstripout", "tqdm"} <= dev.keys()


def test_the_licence_notice_and_citation_name_their_terms_and_authors() -> None:
    """The MIT licence; the fixture's CC BY-SA 3.0 and authors; CITATION.cff's references."""
    assert (PROJECT["license"], PROJECT["license-files"]) == ("MIT", ["LICENSE"])
    licence = read("LICENSE")
    assert re.match(r"MIT License\n\nCopyright \(c\) \d{4} The mnist-study authors\n", licence)
    notice = read("tests/fixtures/README.md")
    for required in ("CC BY-SA 3.0", "creativecommons.org/licenses/by-sa/3.0", "Yann LeCun"):
        assert required in notice
    assert re.search(r"Corinna\s+Cortes", notice) and re.search(r"J\.\s+C\.\s+Burges", notice)
    citation = yaml.safe_load(read("CITATION.cff"))
    assert citation["cff-version"] == "1.2.0" and {"message", "title"} <= citation.keys()
    assert citation["authors"] == [{"name": "The mnist-study authors"}]
    assert (citation["version"], citation["license"]) == (PROJECT["version"], "MIT")
    book, paper = citation["references"]
    assert (book["type"], book["authors"][0]["family-names"]) == ("book", "Géron")
    assert [a["family-names"] for a in paper["authors"]] == ["LeCun", "Bottou", "Bengio", "Haffner"]


def test_one_python_range_and_ci_the_dev_container_and_binder_build_the_readers_environment():
    """One Python range in every file; CI runs `make test`, the container `make env`, Binder."""
    makefile = read("Makefile")
    candidates = re.search(r"^PYTHON \?= (.+)$", makefile, re.M).group(1).split()
    assert candidates == [f"python{series}" for series in reversed(SERIES)] + ["python3"]
    lowest, highest = ", ".join(map(str, OLDEST.release)), ", ".join(map(str, NEWEST.release))
    assert f"({lowest}) <= sys.version_info[:3] and sys.version_info[:2] <= ({highest})" in makefile
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py3{OLDEST.minor}"
    assert f"- python{PROJECT['requires-python']}\n" in read("environment.yml")
    assert f"CPython {OLDEST} to {NEWEST}" in read("README.md")
    block = re.search(r"```bash\n(.*?)```", read("README.md"), re.S).group(1)
    assert "make test" in [line.split("#")[0].strip() for line in block.splitlines()]
    assert "make test" in read(".ci/run").splitlines()
    (job,) = yaml.safe_load(read(".github/workflows/test.yml"))["jobs"].values()
    assert [step["run"] for step in job["steps"] if "run" in step] == ["make test"]
    assert job["strategy"]["matrix"]["python-version"] == [SERIES[0], SERIES[-1]]
    container = json.loads(read(".devcontainer/devcontainer.json"))
    assert container["postCreateCommand"] == "make env"
    assert re.search(r"/python:(3\.\d+)$", container["image"]).group(1) in SERIES
    assert "-r ../requirements.lock" in read("binder/requirements.txt").splitlines()
    assert read("binder/runtime.txt").strip().removeprefix("python-") in SERIES
    assert all(os.access(ROOT / "binder" / script, os.X_OK) for script in ("postBuild", "start"))
    assert "pip install --no-deps ." in read("binder/postBuild")
    assert "$(PIP) install --no-deps --force-reinstall ." in makefile
    start = read("binder/start").splitlines()
    exports = [f"export {name}={value}" for name, value in KERNEL_ENVIRONMENT.items()]
    assert start[-1] == 'exec "$@"' and [ln for ln in start if ln.startswith("export ")] == exports


def test_the_folders_are_found_from_the_current_directory_or_as_set(tmp_path, monkeypatch) -> None:
    """data/ and .cache/ beside the nearest pyproject.toml, else here; the variables read anew."""
    monkeypatch.delenv(settings.DATA_DIR_ENV)
    monkeypatch.delenv(settings.CACHE_DIR_ENV)
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    monkeypatch.chdir(project / "notebooks")  # where JupyterLab runs a notebook
    assert (settings.data_dir(), settings.cache_dir()) == (project / "data", project / ".cache")
    monkeypatch.setenv(settings.DATA_DIR_ENV, str(tmp_path / "elsewhere"))
    monkeypatch.setenv(settings.CACHE_DIR_ENV, "~")
    assert (settings.data_dir(), settings.cache_dir()) == (tmp_path / "elsewhere", Path.home())
    monkeypatch.chdir(tmp_path)
    if not any((folder / "pyproject.toml").exists() for folder in tmp_path.parents):
        assert settings.project_dir() == tmp_path  # outside a project: the current directory
