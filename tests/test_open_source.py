"""Licence, citation, CI, dev container and Binder: valid files calling the README's commands."""

from __future__ import annotations

import json
import os
import re

import yaml

from tools.paths import KERNEL_ENVIRONMENT, ROOT


def test_the_licence_and_the_fixture_notice_name_their_terms_and_authors(pyproject: dict) -> None:
    """The MIT licence of pyproject; the MNIST fixture's CC BY-SA 3.0 and its three authors."""
    licence = (ROOT / "LICENSE").read_text()
    assert (pyproject["license"], pyproject["license-files"]) == ("MIT", ["LICENSE"])
    assert licence.startswith("MIT License\n")
    assert re.search(r"^Copyright \(c\) \d{4} The mnist-study authors$", licence, re.M)
    notice = (ROOT / "tests" / "fixtures" / "README.md").read_text()
    for required in ("CC BY-SA 3.0", "creativecommons.org/licenses/by-sa/3.0", "Yann LeCun"):
        assert required in notice
    assert re.search(r"Corinna\s+Cortes", notice) and re.search(r"J\.\s+C\.\s+Burges", notice)


def test_the_citation_file_cites_the_project_the_book_and_mnist(pyproject: dict) -> None:
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
    """CI runs the README's `make test` on the ends of the range; the dev container runs
    `make env`; Binder installs the reader's lock and the package as make does (not editable)."""
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


def test_binder_starts_its_kernels_with_the_memory_setting_of_tools_paths() -> None:
    start = ROOT / "binder" / "start"
    assert os.access(start, os.X_OK)
    lines = [line for line in start.read_text().splitlines() if not line.startswith("#")]
    exports = [f"export {name}={value}" for name, value in KERNEL_ENVIRONMENT.items()]
    assert lines == [*exports, 'exec "$@"']
