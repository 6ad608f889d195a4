"""JupyterLab for the study: ``make lab`` for people, and the server the browser automation drives.

``serve`` starts JupyterLab from this environment (whose ``python3`` kernel has the package
installed) on a loopback port with a token, opened on ``notebooks/``. ``running_lab`` starts a
server for the screenshot (``tools/screenshot.py``) and the browser test (``tests/browser/``).

    python -m tools.lab    # make lab
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tornado.web import HTTPError

from tools.paths import KERNEL_ENVIRONMENT, ROOT, SCRATCH_FIGURE_DIR

__all__ = ["LabServer", "main", "running_lab", "serve"]

# JupyterLab settings for every server started here: no "Jupyter news" pop-up, no update check.
QUIET_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}
# ... and for the automated ones: nothing saved behind the driver's back, every cell in the page,
# no "3 minutes ago" column (so that the screenshot does not depend on the files' dates).
AUTOMATION_SETTINGS: dict[str, dict[str, Any]] = {
    **QUIET_SETTINGS,
    "@jupyterlab/filebrowser-extension:browser": {"showLastModifiedColumn": False},
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}
STARTUP_TIMEOUT_S = 60


@dataclass
class LabServer:
    """A running JupyterLab server: its process, address and token."""

    process: subprocess.Popen[bytes]
    port: int
    token: str
    log: Path | None

    @property
    def base_url(self) -> str:
        """The server's root URL."""
        return f"http://127.0.0.1:{self.port}/"

    def lab_url(self, path: str = "", reset: bool = False) -> str:
        """The URL, with the token, that opens ``path`` (relative to the server's root).

        ``reset`` starts from an empty workspace instead of restoring the tabs of the last visit.
        """
        query = {"reset": ""} if reset else {}
        query["token"] = self.token
        return f"{self.base_url}lab/tree/{urllib.parse.quote(path)}?{urllib.parse.urlencode(query)}"

    def api(self, method: str, endpoint: str, body: Any = None) -> Any:
        """Call the server's REST API with an optional JSON body; its JSON answer, or None."""
        request = urllib.request.Request(
            f"{self.base_url}api/{endpoint}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = response.read()
        return json.loads(answer) if answer else None

    def shutdown_kernels(self) -> None:
        """Close every notebook session, which shuts down its kernel."""
        for session in self.api("GET", "sessions"):
            self.api("DELETE", f"sessions/{session['id']}")

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log (empty when it logs to the terminal)."""
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def free_port(preferred: int = 0) -> int:
    """A free loopback port: ``preferred`` if it is free, else one the system picks."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def refuse_save(**_: object) -> None:
    """Contents-manager pre-save hook for the screenshot: the committed notebooks stay read-only."""
    raise HTTPError(403, "this JupyterLab shows the committed notebooks read-only")


def lab_command(
    root_dir: Path, port: int, settings_dir: Path, automated: bool, read_only: bool
) -> list[str]:
    """The ``jupyter lab`` command line of ``running_lab``."""
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root_dir}",
        f"--LabApp.app_settings_dir={settings_dir / 'app'}",
        "--LabApp.news_url=None",
    ]
    if automated:
        command += [
            f"--LabApp.user_settings_dir={settings_dir / 'user'}",
            f"--LabApp.workspaces_dir={settings_dir / 'workspaces'}",
            f"--FileCheckpoints.checkpoint_dir={settings_dir / 'checkpoints'}",
        ]
    else:
        command.append("--Application.log_level=WARN")
    if read_only:
        command.append("--FileContentsManager.pre_save_hook=tools.lab.refuse_save")
    if os.geteuid() == 0:
        command.append("--allow-root")
    return command


def wait_until_ready(server: LabServer) -> None:
    """Block until the server answers its status API; raise if it exits or takes too long."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"JupyterLab exited with status {server.process.returncode}\n{server.log_tail()}"
            )
        try:
            server.api("GET", "status")
            return
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(
        f"JupyterLab did not answer within {STARTUP_TIMEOUT_S} s\n{server.log_tail()}"
    )


def stop(server: LabServer) -> None:
    """Shut the kernels down, then stop the server's whole process group."""
    if server.process.poll() is None:
        with suppress(OSError):
            server.shutdown_kernels()
    with suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


@contextmanager
def running_lab(
    root_dir: Path,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    automated: bool = True,
    read_only: bool = False,
    port: int = 0,
) -> Iterator[LabServer]:
    """Run JupyterLab on ``root_dir`` on a loopback port with a fresh token, and stop it after.

    The port is ``port`` if that is free, else any free one. ``env`` is added to this process's
    environment (the kernels inherit it). An ``automated`` server keeps its settings, workspace and
    checkpoints in a temporary folder and never autosaves; a ``read_only`` one refuses every save.
    ``log`` receives the server's output (default: a file in that temporary folder for an automated
    server, the terminal for the others).
    """
    token = secrets.token_hex(24)
    with ExitStack() as stack:
        settings_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mnist-lab-")))
        (settings_dir / "app").mkdir()
        overrides = AUTOMATION_SETTINGS if automated else QUIET_SETTINGS
        (settings_dir / "app" / "overrides.json").write_text(json.dumps(overrides, indent=1))
        port = free_port(port)
        if automated and log is None:
            log = settings_dir / "jupyterlab.log"
        output = stack.enter_context(open(log, "wb")) if log else None
        process = subprocess.Popen(
            lab_command(root_dir, port, settings_dir, automated, read_only),
            env={**os.environ, **KERNEL_ENVIRONMENT, **(env or {}), "JUPYTER_TOKEN": token},
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            cwd=ROOT,  # where the server imports this module's refuse_save from
            start_new_session=True,
        )
        server = LabServer(process, port, token, log)
        try:
            wait_until_ready(server)
            yield server
        finally:
            stop(server)


def serve() -> None:
    """Run JupyterLab on the project (opened on ``notebooks/``) until Ctrl-C; print its URL."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    with running_lab(ROOT, automated=False, port=8888) as server:
        print(f"\nJupyterLab is running at\n\n    {server.lab_url('notebooks')}\n")
        print(
            f"Notebooks run here write their figures to {SCRATCH_FIGURE_DIR}/ "
            "(git-ignored); only `make figures` writes readme_images/.\nPress Ctrl-C to stop it.",
            flush=True,
        )
        try:
            server.process.wait()
        except KeyboardInterrupt:
            print("\nstopping JupyterLab …")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
