"""Where the library keeps its data and results, wherever and however it is installed."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from mnist_study import settings


def test_the_folders_are_the_projects_found_from_the_current_directory_or_as_set(
    tmp_path, monkeypatch
) -> None:
    """data/ and .cache/ beside the nearest pyproject.toml, else here; the variables read anew."""
    monkeypatch.delenv(settings.DATA_DIR_ENV)
    monkeypatch.delenv(settings.CACHE_DIR_ENV)
    (tmp_path / "project" / "notebooks").mkdir(parents=True)
    (tmp_path / "project" / "pyproject.toml").write_text("")
    monkeypatch.chdir(tmp_path / "project" / "notebooks")  # where JupyterLab runs a notebook
    assert settings.data_dir() == tmp_path / "project" / "data"
    assert settings.cache_dir() == tmp_path / "project" / ".cache"
    monkeypatch.setenv(settings.DATA_DIR_ENV, str(tmp_path / "elsewhere"))
    monkeypatch.setenv(settings.CACHE_DIR_ENV, "~")
    assert settings.data_dir() == tmp_path / "elsewhere"
    assert settings.cache_dir() == Path.home()
    monkeypatch.chdir(tmp_path)
    if not any((folder / "pyproject.toml").exists() for folder in tmp_path.parents):
        assert settings.project_dir() == tmp_path  # outside a project: the current directory


def test_no_path_file_names_the_checkout() -> None:
    """Installed, not linked by a .pth file (read in the locale's encoding: non-ASCII broke it)."""
    site = Path(sysconfig.get_paths()["purelib"])
    checkout = str(Path(__file__).resolve().parents[1])
    assert [p.name for p in site.glob("*.pth") if checkout in p.read_text(errors="replace")] == []


def test_the_package_works_from_a_non_ascii_folder_under_the_c_locale(tmp_path) -> None:
    """A project folder named in Unicode, found from its notebooks/ under LC_ALL=C."""
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
    )
    assert result.returncode == 0 and result.stdout == b"True\n", result.stderr
