"""``make lab`` as a user starts it: loopback only, its own token whatever the user's configuration
says, the study's notebooks never saved over, no server left behind."""

import os
import re
import select
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import suppress
from pathlib import Path

import psutil
import pytest

from tools.lab import LabServer, keep_the_study
from tools.paths import NOTEBOOK_DIR, ROOT

FIRST = "01_is_it_a_5.ipynb"


def status_without_token(url: str) -> int | None:
    """The HTTP status of a GET without a token; None if nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as refused:
        return refused.code
    except OSError:
        return None


@pytest.mark.parametrize("killed", ["make", "tools.lab"])
def test_make_lab_keeps_the_study_and_ends_its_server_when_killed(tmp_path: Path, killed) -> None:
    """A user whose config serves without a token; then SIGKILL to make alone, or to the launcher
    alone: within seconds nothing serves any more."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env |= {f"JUPYTER_{name}_DIR": str(tmp_path / name) for name in ("CONFIG", "DATA", "RUNTIME")}
    env |= {f"JUPYTERLAB_{name}_DIR": str(tmp_path / name) for name in ("SETTINGS", "WORKSPACES")}
    (tmp_path / "CONFIG").mkdir()
    no_token = 'c.IdentityProvider.token = ""\nc.ServerApp.token = ""\n'
    (tmp_path / "CONFIG" / "jupyter_server_config.py").write_text(no_token)
    committed = (NOTEBOOK_DIR / FIRST).read_bytes()
    make = subprocess.Popen(["make", "-s", "lab"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    started, printed, deadline = [], b"", time.monotonic() + 120
    try:
        while not (url := re.search(rb"http://127\.0\.0\.1:(\d+)/\S+token=(\w+)", printed)):
            assert make.poll() is None and time.monotonic() < deadline, printed
            if select.select([make.stdout], [], [], 1)[0]:  # not readline: it would buffer
                printed += os.read(make.stdout.fileno(), 4096)
        started = [psutil.Process(make.pid), *psutil.Process(make.pid).children(recursive=True)]
        server = LabServer(None, int(url.group(1)), url.group(2).decode())
        sockets = [c for p in started for c in p.net_connections("tcp")]
        assert {c.laddr.ip for c in sockets if c.status == psutil.CONN_LISTEN} == {"127.0.0.1"}
        assert status_without_token(f"http://127.0.0.1:{server.port}/api/contents") == 403
        model = server.api("GET", f"contents/notebooks/{FIRST}")
        with pytest.raises(urllib.error.HTTPError) as refused:
            server.api("PUT", f"contents/notebooks/{FIRST}", model)
        assert refused.value.code == 403 and "Save Notebook As" in refused.value.read().decode()
        assert (NOTEBOOK_DIR / FIRST).read_bytes() == committed
        keep_the_study(path=f"notebooks/{FIRST[:-6]}-Copy1.ipynb")  # Save Notebook As… may save
        next(p for p in started if killed in " ".join(p.cmdline())).kill()
        psutil.wait_procs(started[1:], timeout=30)
        assert not [p for p in started[1:] if p.is_running() and p.status() != "zombie"]
        assert status_without_token(f"http://127.0.0.1:{server.port}/api/status") is None
    finally:
        for process in started:
            with suppress(psutil.Error):
                process.kill()
        make.wait(timeout=30)
