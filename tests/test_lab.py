"""JupyterLab as ``make lab`` and the screenshot serve it: loopback only, its own token whatever the
user's Jupyter configuration says, the study's notebooks never saved over, no server left behind."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import nbformat
import psutil
import pytest

from tools.lab import LabServer, lab_for_people, running_lab
from tools.paths import NOTEBOOK_DIR, ROOT

FIRST = "01_is_it_a_5.ipynb"
# What a user's ~/.jupyter may hold to serve without a token.
NO_TOKEN_CONFIG = 'c.IdentityProvider.token = ""\nc.ServerApp.token = ""\n'


def jupyter_home(home: Path) -> dict[str, str]:
    """Jupyter's folders for the user, under ``home``, with a configuration without a token."""
    folders = {
        name: str(home / name.lower())
        for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR")
    }
    Path(folders["JUPYTER_CONFIG_DIR"]).mkdir(parents=True)
    (Path(folders["JUPYTER_CONFIG_DIR"]) / "jupyter_server_config.py").write_text(NO_TOKEN_CONFIG)
    return folders


def status_without_token(url: str) -> int | None:
    """The HTTP status of a GET without a token; None if nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as refused:
        return refused.code
    except OSError:
        return None


@pytest.fixture(scope="module")
def people_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabServer, Path]]:
    """``make lab``'s server on a copy of notebook 01, for a user whose config has no token."""
    tree = tmp_path_factory.mktemp("lab")
    (tree / "notebooks").mkdir()
    shutil.copyfile(NOTEBOOK_DIR / FIRST, tree / "notebooks" / FIRST)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in jupyter_home(tree / "home").items():
            patch.setenv(name, value)
        with lab_for_people(tree, log=tree / "jupyterlab.log", port=0) as server:
            yield server, tree


def test_make_lab_listens_on_loopback_only_and_keeps_its_token_when_the_users_config_has_none(
    people_lab,
) -> None:
    server, _ = people_lab
    listening = psutil.Process(server.process.pid).net_connections("tcp")
    assert {c.laddr.ip for c in listening if c.status == psutil.CONN_LISTEN} == {"127.0.0.1"}
    assert status_without_token(f"{server.base_url}api/contents") == 403
    assert server.api("GET", "contents/notebooks")["type"] == "directory"
    assert f"token={server.token}" in server.lab_url("notebooks")


def test_make_lab_saves_a_copy_but_never_over_the_study(people_lab) -> None:
    server, tree = people_lab
    model = server.api("GET", f"contents/notebooks/{FIRST}")
    model["content"]["cells"][0]["source"] = "changed"
    with pytest.raises(urllib.error.HTTPError) as refused:
        server.api("PUT", f"contents/notebooks/{FIRST}", model)
    assert refused.value.code == 403
    assert (tree / "notebooks" / FIRST).read_bytes() == (NOTEBOOK_DIR / FIRST).read_bytes()

    copy = FIRST.replace(".ipynb", "-Copy1.ipynb")  # the name JupyterLab gives a duplicate
    server.api("PUT", f"contents/notebooks/{copy}", model)
    assert nbformat.read(tree / "notebooks" / copy, as_version=4).cells[0].source == "changed"


def test_the_screenshot_server_writes_nothing_next_to_the_notebooks(tmp_path: Path) -> None:
    notebook = tmp_path / "committed.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), notebook)
    committed = notebook.read_bytes()

    with running_lab(tmp_path, save_hook="refuse_save") as server:
        server.api("POST", f"contents/{notebook.name}/checkpoints")
        model = server.api("GET", f"contents/{notebook.name}")
        with pytest.raises(urllib.error.HTTPError) as refused:
            server.api("PUT", f"contents/{notebook.name}", model)

    assert refused.value.code == 403
    assert notebook.read_bytes() == committed
    assert sorted(path.name for path in tmp_path.iterdir()) == [notebook.name]


def started_make_lab(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``make lab`` started as a user starts it (its own process group); it and its URL."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update(jupyter_home(home))
    env["JUPYTERLAB_SETTINGS_DIR"] = str(home / "settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(home / "workspaces")
    make = subprocess.Popen(
        ["make", "-s", "lab"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    printed = b""
    while time.monotonic() < deadline and make.poll() is None:
        if select.select([make.stdout], [], [], 1)[0]:  # not readline: it would buffer the rest
            printed += os.read(make.stdout.fileno(), 4096)
        if url := re.search(rb"http://127\.0\.0\.1:\d+/", printed):
            return make, url.group().decode()
    os.killpg(make.pid, signal.SIGKILL)  # the server ends with its launcher
    make.wait()
    raise AssertionError("make lab printed no URL within 120 s")


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those of ``processes`` still running (a zombie has ended)."""
    running = []
    for process in processes:
        with suppress(psutil.NoSuchProcess):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
    return running


def serving(url: str) -> bool:
    """Whether a server answers at ``url`` (with a refusal: no token is sent)."""
    return status_without_token(f"{url}api/status") is not None


@pytest.mark.parametrize("killed", ["make", "tools.lab"])
def test_make_lab_ends_its_server_when_killed(tmp_path: Path, killed: str) -> None:
    """SIGKILL to make alone, or to the launcher alone: within seconds nothing serves any more."""
    make, url = started_make_lab(tmp_path)
    started = [psutil.Process(make.pid), *psutil.Process(make.pid).children(recursive=True)]
    try:
        assert serving(url)
        victim = next(process for process in started if killed in " ".join(process.cmdline()))
        victim.kill()
        deadline = time.monotonic() + 30
        while alive(started[1:]) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not alive(started[1:]), f"still running after {killed} was killed"
        assert not serving(url)
    finally:
        for process in alive(started):
            process.kill()
        make.wait(timeout=30)
