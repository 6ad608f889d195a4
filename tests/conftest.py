"""Shared test fixtures: the committed MNIST fixture, a data folder of its own, loopback servers."""

from __future__ import annotations

import http.server
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from mnist_study import settings
from mnist_study.digests import ARRAY_NAMES

ROOT = settings.ROOT
FIXTURE_PATH = settings.FIXTURE_FILE


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep each test away from the real dataset cache."""
    monkeypatch.setenv(settings.DATA_DIR_ENV, str(tmp_path / "default-data"))


@pytest.fixture(scope="session")
def fixture_arrays() -> dict[str, np.ndarray]:
    """The committed fixture's four arrays (uint8 pixels, uint8 digit labels)."""
    with np.load(FIXTURE_PATH) as npz:
        return {name: npz[name] for name in ARRAY_NAMES}


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """Serve fixed files over HTTP on 127.0.0.1: ``serve(files, truncate=False)`` is its URL.

    ``truncate`` cuts every answer in half; ``serve.requests`` lists the files asked for."""
    servers = []
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.rsplit("/", 1)[-1]
            requests.append(name)
            body = self.server.files.get(name)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if self.server.truncate else body)

        def log_message(self, *args: object) -> None:
            pass

    def start(files: dict[str, bytes], truncate: bool = False) -> str:
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.files, httpd.truncate = files, truncate
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/"

    start.requests = requests
    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def closed_port_url() -> Iterator[str]:
    """A loopback URL on which nothing listens (connections are refused at once)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield f"http://127.0.0.1:{port}/"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A loopback URL whose server accepts connections and never answers (a silent network)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)  # the kernel completes the handshakes; nothing reads or replies
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Send every HTTP(S) request through the proxy ``url`` (a loopback URL): ``proxy(url)``."""

    def use(url: str) -> None:
        for variable in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            monkeypatch.setenv(variable, url)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        urllib.request.install_opener(None)  # urllib reads the proxies when it first opens a URL

    yield use
    urllib.request.install_opener(None)
