"""Where the library keeps its data and results, wherever and however it is installed."""

from __future__ import annotations

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
