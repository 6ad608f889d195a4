"""Where the library keeps its data and results, wherever and however it is installed."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from mnist_study import settings


@pytest.fixture
def clear_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.DATA_DIR_ENV, raising=False)
    monkeypatch.delenv(settings.CACHE_DIR_ENV, raising=False)


@pytest.mark.usefixtures("clear_environment")
def test_the_folders_are_the_projects_found_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")  # where JupyterLab runs a notebook
    assert settings.data_dir() == tmp_path / "data"
    assert settings.cache_dir() == tmp_path / ".cache"
    monkeypatch.setenv(settings.DATA_DIR_ENV, str(tmp_path / "elsewhere"))
    monkeypatch.setenv(settings.CACHE_DIR_ENV, "~")
    assert settings.data_dir() == tmp_path / "elsewhere"
    assert settings.cache_dir() == Path.home()


@pytest.mark.usefixtures("clear_environment")
def test_outside_a_project_the_folders_are_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    if any((folder / "pyproject.toml").exists() for folder in tmp_path.parents):
        pytest.skip("the temporary folder lies inside a project")
    assert settings.data_dir() == tmp_path / "data"


def test_no_path_file_names_the_checkout() -> None:
    """The package is installed, not linked by a .pth file that Python reads in the locale's
    encoding (a non-ASCII checkout path under LC_ALL=C stopped Python from starting)."""
    site = Path(sysconfig.get_paths()["purelib"])
    checkout = str(Path(__file__).resolve().parents[1])
    assert [p.name for p in site.glob("*.pth") if checkout in p.read_text(errors="replace")] == []


def test_the_package_works_from_a_non_ascii_folder_under_the_c_locale(tmp_path: Path) -> None:
    project = tmp_path / "étude ü"
    (project / "notebooks").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MNIST_STUDY_", "LC_"))},
        "LC_ALL": "C",
        "PYTHONPATH": "",
    }
    code = "from mnist_study import settings; print(settings.data_dir().parent.name == 'étude ü')"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project / "notebooks",
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
