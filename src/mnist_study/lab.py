"""JupyterLab for the study: ``make lab`` for people, and the browser automation behind the tests.

``serve`` starts JupyterLab from this environment (whose ``python3`` kernel has the package
installed) on a loopback port with a token, opened on ``notebooks/``. ``running_lab`` and
``chromium_page`` start a server and a headless Chromium for the browser test, which runs each
notebook through the menus with ``run_all_cells``, and for ``screenshot``, the README's picture of
where the notebooks live.

    python -m mnist_study.lab serve         # make lab
    python -m mnist_study.lab screenshot    # make screenshot
"""

from __future__ import annotations

import argparse
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
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright
from tornado.web import HTTPError

from mnist_study import settings

__all__ = [
    "LabServer",
    "chromium_page",
    "main",
    "notebook_problems",
    "run_all_cells",
    "running_lab",
    "screenshot",
    "serve",
]

ROOT = settings.ROOT
SCREENSHOT = ROOT / "readme_images" / "jupyter_notebook_location.png"
FIRST_NOTEBOOK = "notebooks/01_is_it_a_5.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}
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
# The code cells' prompts and the kernel status of the notebook on show, read in the page.
RUN_STATE_JS = """() => {
    const panel = document.querySelector(".jp-NotebookPanel:not(.lm-mod-hidden)");
    if (!panel) return null;
    const prompts = [...panel.querySelectorAll(".jp-CodeCell .jp-InputArea-prompt")];
    const indicator = panel.querySelector(".jp-Notebook-ExecutionIndicator");
    return {
        prompts: prompts.map((prompt) => prompt.textContent.trim()),
        status: indicator ? indicator.dataset.status : null,
    };
}"""


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
        command.append("--FileContentsManager.pre_save_hook=mnist_study.lab.refuse_save")
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
            env={**os.environ, **(env or {}), "JUPYTER_TOKEN": token},
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )
        server = LabServer(process, port, token, log)
        try:
            wait_until_ready(server)
            yield server
        finally:
            stop(server)


@contextmanager
def chromium_page() -> Iterator[Page]:
    """A page of Debian's headless Chromium, driven by playwright, closed after use."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: install Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield browser.new_page(viewport=VIEWPORT)
        finally:
            browser.close()


def open_notebook(page: Page, server: LabServer, path: str, timeout_s: float = 60) -> None:
    """Open ``path`` alone in JupyterLab and wait until its kernel is connected and idle."""
    page.goto(server.lab_url(path, reset=True))
    kernel_status = page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$"))
    kernel_status.wait_for(timeout=timeout_s * 1000)


def widen_file_browser(page: Page, width: int) -> None:
    """Drag the file browser's right edge to ``width`` pixels, so that long file names fit."""
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle:visible").first
    box = handle.bounding_box()
    if box is None:
        raise RuntimeError("the file browser's edge is not on the page")
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(width, y, steps=10)
    page.mouse.up()


def click_menu(page: Page, menu: str, command: str) -> None:
    """Choose a menu entry the way a person does: the menu bar title, then the item."""
    page.locator(".lm-MenuBar-itemLabel", has_text=menu).first.click()
    page.locator(f'.lm-Menu-item[data-command="{command}"]').click()


def wait_for_run(page: Page, timeout_s: float) -> None:
    """Wait until a Run All has finished: no cell queued or running, the kernel idle, twice."""
    deadline = time.monotonic() + timeout_s
    settled = 0
    while settled < 2:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the notebook was still running after {timeout_s:.0f} s")
        state = page.evaluate(RUN_STATE_JS)
        started = state and any(prompt != "[ ]:" for prompt in state["prompts"])
        done = started and "[*]:" not in state["prompts"] and state["status"] == "idle"
        settled = settled + 1 if done else 0
        page.wait_for_timeout(500)


def run_all_cells(page: Page, server: LabServer, path: str, timeout_s: float = 600) -> None:
    """Open the notebook ``path``, clear its outputs, run all cells from the menu, and save it."""
    open_notebook(page, server, path)
    click_menu(page, "Edit", "editmenu:clear-all")
    click_menu(page, "Run", "runmenu:run-all")
    wait_for_run(page, timeout_s)
    click_menu(page, "File", "docmanager:save")
    page.locator(".lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)").wait_for()


def notebook_problems(notebook: Path) -> list[str]:
    """What a run left wrong in a saved notebook: errors, and code cells that never ran."""
    cells = json.loads(notebook.read_text())["cells"]
    code_cells = [cell for cell in cells if cell["cell_type"] == "code"]
    problems = []
    for number, cell in enumerate(code_cells, start=1):
        errors = [output for output in cell["outputs"] if output["output_type"] == "error"]
        problems += [f"code cell {number}: {e['ename']}: {e['evalue']}" for e in errors]
        if cell["execution_count"] is None and "".join(cell["source"]).strip():
            problems.append(f"code cell {number}: not executed")
    return problems


def screenshot(output: Path = SCREENSHOT) -> None:
    """Save a picture of JupyterLab listing ``notebooks/`` with the first notebook's outputs."""
    with running_lab(ROOT, read_only=True) as server, chromium_page() as page:
        open_notebook(page, server, FIRST_NOTEBOOK)
        widen_file_browser(page, 360)
        page.locator(".jp-DirListing-item", has_text=Path(FIRST_NOTEBOOK).name).wait_for()
        first_figure = page.locator(".jp-NotebookPanel .jp-RenderedImage img").first
        first_figure.evaluate("(image) => image.scrollIntoView({block: 'center'})")
        page.wait_for_function("[...document.images].every((image) => image.complete)")
        page.evaluate("document.fonts.ready")
        page.screenshot(path=output)
    print(f"wrote {output}")


def serve() -> None:
    """Run JupyterLab on the project (opened on ``notebooks/``) until Ctrl-C; print its URL."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    with running_lab(ROOT, automated=False, port=8888) as server:
        print(f"\nJupyterLab is running at\n\n    {server.lab_url('notebooks')}\n")
        print("Press Ctrl-C to stop it.", flush=True)
        try:
            server.process.wait()
        except KeyboardInterrupt:
            print("\nstopping JupyterLab …")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="start JupyterLab on notebooks/ (make lab)")
    shot = commands.add_parser("screenshot", help="save the README's JupyterLab picture")
    shot.add_argument("--output", type=Path, default=SCREENSHOT, help="PNG file to write")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve()
    else:
        screenshot(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
