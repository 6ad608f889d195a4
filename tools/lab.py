"""JupyterLab for the study: ``python -m tools.lab [--edit]`` is ``make lab [EDIT=1]``; the
screenshot and the browser tests start theirs with ``running_lab``."""

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tornado.web import HTTPError

from tools.paths import KERNEL_ENVIRONMENT, ROOT, SCRATCH_FIGURE_DIR
from tools.run_notebooks import LINUX, on_stop

# JupyterLab's settings on every server started here: no news pop-up, no update check, no autosave;
# on the automated ones, for the screenshot: every cell in the page, long code lines wrapped in its
# narrow picture, no "3 minutes ago" column.
QUIET = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
}
AUTOMATED = {
    **QUIET,
    "@jupyterlab/filebrowser-extension:browser": {"showLastModifiedColumn": False},
    "@jupyterlab/notebook-extension:tracker": {
        "windowingMode": "none",
        "codeCellConfig": {"lineWrap": True},
    },
}
STUDY_NOTEBOOK = re.compile(r"notebooks/\d\d_\w+\.ipynb")  # not JupyterLab's copies, "…-Copy1"


@dataclass
class LabServer:
    """A running JupyterLab server: its process, port and token."""

    process: subprocess.Popen[bytes]
    port: int
    token: str

    def url(self, path: str = "", reset: bool = False) -> str:
        """The address with the token that opens ``path``; ``reset``: without earlier tabs."""
        query = urllib.parse.urlencode({**({"reset": ""} if reset else {}), "token": self.token})
        return f"http://127.0.0.1:{self.port}/lab/tree/{urllib.parse.quote(path)}?{query}"

    def api(self, method: str, endpoint: str, body: Any = None) -> Any:
        """The JSON answer of the server's REST API to ``method`` on ``endpoint``, or None."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/{endpoint}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or "null")


def keep_the_study(path: str, **_: object) -> None:
    """Pre-save hook of ``make lab``: the study's notebooks are never saved over, others are."""
    if STUDY_NOTEBOOK.fullmatch(path):
        raise HTTPError(403, f"make lab keeps {path} as committed: Save Notebook As… saves a copy")


def ready(server: LabServer, info: Path) -> bool:
    """Whether the server has written its port (a free one from ``port`` on) and answers there."""
    with suppress(OSError, ValueError):
        server.port = json.loads(info.read_text())["port"]
        return server.api("GET", "status") is not None
    return False


@contextmanager
def running_lab(
    root: Path, env: dict[str, str] | None = None, log: Path | None = None, people: bool = False,
    save_hook: str | None = None, port: int = 0,
) -> Iterator[LabServer]:  # fmt: skip
    """JupyterLab on ``root``, on loopback ``port`` or a free one near, a new token; stopped after.

    ``env`` is added to the kernels' environment; ``log`` takes the server's output (else: its
    warnings on the terminal); ``save_hook``, a function named here, may refuse saves. A server for
    ``people`` keeps the user's settings and workspaces.
    """
    with tempfile.TemporaryDirectory(prefix="mnist-lab-") as folder:
        temp, token = Path(folder), secrets.token_hex(24)
        # Configuration on JUPYTER_CONFIG_PATH outranks the user's own (whose `token = ""` would
        # turn the token off), and unlike the command line no other user can read it.
        config = {"IdentityProvider": {"token": token}, "ServerApp": {"root_dir": str(root)}}
        config["ServerApp"] |= {"ip": "127.0.0.1", "port": port}
        config["LabApp"] = {"app_settings_dir": f"{temp}/app", "news_url": None}
        if not people:
            config["LabApp"] |= {"user_settings_dir": f"{temp}/user", "workspaces_dir": f"{temp}/w"}
            config["FileCheckpoints"] = {"checkpoint_dir": f"{temp}/checkpoints"}
        if save_hook:
            config["FileContentsManager"] = {"pre_save_hook": f"tools.lab.{save_hook}"}
        files = ("app/overrides.json", "config/jupyter_server_config.json")
        for path, content in zip(files, (QUIET if people else AUTOMATED, config), strict=True):
            (temp / path).parent.mkdir()
            (temp / path).write_text(json.dumps(content))
        command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root"]
        config_path = [f"{temp}/config", os.environ.get("JUPYTER_CONFIG_PATH", "")]
        env = {**os.environ, **KERNEL_ENVIRONMENT, **(env or {})}
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(filter(None, config_path))
        env["JUPYTER_RUNTIME_DIR"] = f"{temp}/runtime"  # where it says its port
        with log.open("wb") if log else nullcontext() as output:
            # cwd: the save hook's; SIGTERM (the server then ends its kernels) if this process dies
            process = subprocess.Popen(
                [*command, *([] if log else ["--log-level=WARN"])], env=env, cwd=ROOT,
                stdin=subprocess.DEVNULL, stdout=output, stderr=output and subprocess.STDOUT,
                start_new_session=True, preexec_fn=lambda: LINUX(1, signal.SIGTERM),
            )  # fmt: skip
        server, deadline = LabServer(process, 0, token), time.monotonic() + 60
        try:
            while not ready(server, temp / "runtime" / f"jpserver-{process.pid}.json"):
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text(errors="replace")[-3000:] if log else ""
                    raise RuntimeError(f"JupyterLab did not answer ({process.poll()})\n{tail}")
                time.sleep(0.25)
            yield server
        finally:
            process.terminate()  # the server ends its kernels first
            process.wait(timeout=30)


def serve(edit: bool) -> None:
    """Run ``make lab``'s JupyterLab until Ctrl-C, or until make ends; print its address."""
    on_stop(signal.default_int_handler)  # make's death too, even by SIGKILL
    hook = None if edit else "keep_the_study"
    with running_lab(ROOT, people=True, save_hook=hook, port=8888) as server:
        print(f"\nJupyterLab is running at\n\n    {server.url('notebooks')}\n")
        if not edit:
            print("It keeps the study's notebooks as committed: Save Notebook As… saves a copy.")
        scratch = SCRATCH_FIGURE_DIR.relative_to(ROOT)
        print(f"Notebooks run here write their figures to {scratch}/; only `make figures` writes "
              "readme_images/.\nPress Ctrl-C to stop it.", flush=True)  # fmt: skip
        try:
            server.process.wait()
        except KeyboardInterrupt:
            print("\nstopping JupyterLab …")


if __name__ == "__main__":
    serve(edit=sys.argv[1:] == ["--edit"])
