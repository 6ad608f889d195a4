"""Licence, citation, CI, dev container and Binder: valid files calling the README's commands."""

from __future__ import annotations

import json
import os
import re

import yaml

from tools.paths import KERNEL_ENVIRONMENT, ROOT


def readme_commands() -> list[str]:
    """The commands of the README's code block (without their comments)."""
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_the_licence_file_is_the_mit_licence_of_pyproject(pyproject: dict) -> None:
    licence = (ROOT / "LICENSE").read_text()
    assert pyproject["license"] == "MIT"
    assert pyproject["license-files"] == ["LICENSE"]
    assert licence.startswith("MIT License\n")
    assert re.search(r"^Copyright \(c\) \d{4} The mnist-study authors$", licence, re.M)


def test_the_fixture_notice_names_the_dataset_terms_and_authors() -> None:
    notice = (ROOT / "tests" / "fixtures" / "README.md").read_text()
    for required in ("CC BY-SA 3.0", "creativecommons.org/licenses/by-sa/3.0", "Yann LeCun"):
        assert required in notice
    assert re.search(r"Corinna\s+Cortes", notice) and re.search(r"J\.\s+C\.\s+Burges", notice)


def test_the_citation_file_cites_the_project_the_book_and_mnist(pyproject: dict) -> None:
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert {"message", "title", "authors"} <= citation.keys()
    assert citation["authors"] == [{"name": "The mnist-study authors"}]
    assert citation["version"] == pyproject["version"]
    assert citation["license"] == pyproject["license"]
    book, paper = citation["references"]
    assert (book["type"], book["edition"], book["year"]) == ("book", "3rd", 2022)
    assert book["authors"][0]["family-names"] == "Géron"
    assert paper["type"] == "article" and paper["journal"] == "Proceedings of the IEEE"
    assert [a["family-names"] for a in paper["authors"]] == ["LeCun", "Bottou", "Bengio", "Haffner"]


def test_the_workflow_runs_the_readme_test_command_on_the_ends_of_the_range(
    release_series: list[str],
) -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "test.yml").read_text())
    (job,) = workflow["jobs"].values()
    commands = [step["run"] for step in job["steps"] if "run" in step]
    ci_run = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands == ["make test"]
    assert "make test" in readme_commands() and "make test" in ci_run
    assert job["runs-on"] == "ubuntu-latest"
    assert job["strategy"]["matrix"]["python-version"] == [
        release_series[0],
        release_series[-1],
    ]


def test_the_dev_container_builds_the_readers_environment(release_series: list[str]) -> None:
    container = json.loads((ROOT / ".devcontainer" / "devcontainer.json").read_text())
    assert container["postCreateCommand"] == "make env"
    series = re.search(r"/python:(3\.\d+)$", container["image"]).group(1)
    assert series in release_series


def test_binder_installs_the_readers_lock_and_the_package_as_make_does(
    release_series: list[str],
) -> None:
    binder = ROOT / "binder"
    requirements = (binder / "requirements.txt").read_text().splitlines()
    assert "-r ../requirements.lock" in requirements
    runtime = (binder / "runtime.txt").read_text().strip()
    assert runtime.removeprefix("python-") in release_series
    post_build = (binder / "postBuild").read_text()
    assert os.access(binder / "postBuild", os.X_OK)
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --no-deps ." in post_build  # not editable, as make env
    assert "$(PIP) install --no-deps --force-reinstall ." in makefile


def test_binder_starts_its_kernels_with_the_memory_setting_of_tools_paths() -> None:
    start = ROOT / "binder" / "start"
    assert os.access(start, os.X_OK)
    lines = [line for line in start.read_text().splitlines() if not line.startswith("#")]
    assert lines == [
        *(f"export {name}={value}" for name, value in KERNEL_ENVIRONMENT.items()),
        'exec "$@"',
    ]
