"""JupyterLab for the study: ``make lab`` for people, and the servers that ``tools/screenshot.py``
and ``tests/browser/`` drive.

    python -m tools.lab           # make lab: the study's notebooks cannot be saved over
    python -m tools.lab --edit    # make lab EDIT=1: they can
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tornado.web import HTTPError

from tools.paths import KERNEL_ENVIRONMENT, ROOT, SCRATCH_FIGURE_DIR

# JupyterLab settings for every server started here: no news pop-up, no update check, no autosave.
QUIET_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
}
# ... and for the automated ones: every cell in the page, no "3 minutes ago" column (so that the
# screenshot does not depend on the files' dates).
AUTOMATION_SETTINGS: dict[str, dict[str, Any]] = {
    **QUIET_SETTINGS,
    "@jupyterlab/filebrowser-extension:browser": {"showLastModifiedColumn": False},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}
# The study's notebooks, as paths from the server's root (JupyterLab's copies, "…-Copy1", are not).
STUDY_NOTEBOOK = re.compile(r"notebooks/\d\d_\w+\.ipynb")
# The server ends with the process that started it, even a SIGKILLed one: a shell in the server's
# process group reads a pipe that only that process holds, and at its end stops the group.
GUARD = 'exec 3<&0; (read _ <&3; kill -TERM 0) & exec "$@" </dev/null 3<&-'
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
        """The URL with the token that opens ``path``; ``reset``: without the last visit's tabs."""
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
    """Pre-save hook of the screenshot's server: it saves nothing."""
    raise HTTPError(403, "this JupyterLab saves nothing")


def keep_the_study(path: str, **_: object) -> None:
    """Pre-save hook of ``make lab``: the study's notebooks are never saved over, others are."""
    if STUDY_NOTEBOOK.fullmatch(path):
        raise HTTPError(403, f"make lab keeps {path} as committed: Save Notebook As… saves a copy")


def write_json(path: Path, content: dict) -> None:
    """Write ``content`` as JSON into ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=1))


def lab_command(root_dir: Path, port: int, settings_dir: Path, automated: bool) -> list[str]:
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
    return command + (["--allow-root"] if os.geteuid() == 0 else [])


def wait_until_ready(server: LabServer) -> None:
    """Block until the server answers its status API; raise if it exits or takes too long."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while server.process.poll() is None and time.monotonic() < deadline:
        with suppress(OSError):
            server.api("GET", "status")
            return
        time.sleep(0.25)
    log = server.log.read_text(errors="replace") if server.log and server.log.exists() else ""
    tail = "\n".join(log.splitlines()[-40:])
    raise RuntimeError(f"JupyterLab did not answer (exit status {server.process.poll()})\n{tail}")


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
    save_hook: str | None = None,
    settings: dict[str, dict[str, Any]] | None = None,
    port: int = 0,
) -> Iterator[LabServer]:
    """Run JupyterLab on ``root_dir`` on a loopback port with a fresh token, and stop it after.

    The port is ``port`` if that is free, else any free one. ``env`` is added to this process's
    environment (the kernels inherit it). An ``automated`` server keeps its settings, workspace and
    checkpoints in a temporary folder; ``save_hook``, a function named here, may refuse saves;
    ``settings`` are added to JupyterLab's defaults here, plugin by plugin.
    ``log`` receives the server's output (default: a temporary file for an automated server, the
    terminal for the others).
    """
    token = secrets.token_hex(24)
    with ExitStack() as stack:
        settings_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mnist-lab-")))
        overrides = AUTOMATION_SETTINGS if automated else QUIET_SETTINGS
        for plugin, values in (settings or {}).items():
            overrides = {**overrides, plugin: {**overrides.get(plugin, {}), **values}}
        write_json(settings_dir / "app" / "overrides.json", overrides)
        # Configuration on JUPYTER_CONFIG_PATH outranks the user's own (whose `token = ""` would
        # turn the token off), and unlike the command line no other user can read it.
        server_config = {"IdentityProvider": {"token": token}}
        if save_hook:
            server_config["FileContentsManager"] = {"pre_save_hook": f"tools.lab.{save_hook}"}
        write_json(settings_dir / "config" / "jupyter_server_config.json", server_config)
        config_path = [str(settings_dir / "config"), os.environ.get("JUPYTER_CONFIG_PATH", "")]
        port = free_port(port)
        log = log or (settings_dir / "jupyterlab.log" if automated else None)
        output = stack.enter_context(open(log, "wb")) if log else None
        process = subprocess.Popen(
            ["sh", "-c", GUARD, "sh", *lab_command(root_dir, port, settings_dir, automated)],
            env={
                **os.environ,
                **KERNEL_ENVIRONMENT,
                **(env or {}),
                "JUPYTER_CONFIG_PATH": os.pathsep.join(filter(None, config_path)),
            },
            stdin=subprocess.PIPE,  # the guard's pipe: closed only when this process ends
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            cwd=ROOT,  # where the server imports the save hook from
            start_new_session=True,
        )
        server = LabServer(process, port, token, log)
        try:
            wait_until_ready(server)
            yield server
        finally:
            stop(server)


def lab_for_people(
    root_dir: Path = ROOT, edit: bool = False, log: Path | None = None, port: int = 8888
) -> AbstractContextManager[LabServer]:
    """``make lab``'s server: the user's settings, no autosave, the study kept unless ``edit``."""
    return running_lab(
        root_dir, log=log, automated=False, save_hook=None if edit else "keep_the_study", port=port
    )


def serve(edit: bool = False) -> None:
    """Run ``make lab``'s JupyterLab until Ctrl-C, or until make ends; print its URL."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup's HUP stays ignored
            signal.signal(sig, signal.default_int_handler)
    make = os.getppid()
    with lab_for_people(edit=edit) as server:
        print(f"\nJupyterLab is running at\n\n    {server.lab_url('notebooks')}\n")
        if not edit:
            print("It keeps the study's notebooks as committed: Save Notebook As… saves a copy.")
        print(
            f"Notebooks run here write their figures to {SCRATCH_FIGURE_DIR.relative_to(ROOT)}/; "
            "only `make figures` writes readme_images/.\nPress Ctrl-C to stop it.",
            flush=True,
        )
        try:
            # Polled rather than waited for: a SIGKILLed make leaves this process a new parent.
            while server.process.poll() is None and os.getppid() == make:
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("\nstopping JupyterLab …")


if __name__ == "__main__":
    serve(edit=sys.argv[1:] == ["--edit"])
