"""Shared test helpers: the committed MNIST fixture, stand-in sources and loopback servers."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mnist_study import settings
from mnist_study.downloads import Deadline
from mnist_study.formats import ARRAY_NAMES, IDX_FILES, SourceError
from mnist_study.sources import Source

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_PATH = ROOT / "tests" / "fixtures" / "mnist_784_fixture.npz"


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep each test away from the real dataset cache."""
    monkeypatch.setenv(settings.DATA_DIR_ENV, str(tmp_path / "default-data"))


@pytest.fixture(scope="session")
def fixture_arrays() -> dict[str, np.ndarray]:
    """The committed fixture's four arrays (uint8 pixels, uint8 digit labels)."""
    with np.load(FIXTURE_PATH) as npz:
        return {name: npz[name] for name in ARRAY_NAMES}


def constant_source(name: str, arrays: dict[str, np.ndarray], calls: list[str]) -> Source:
    """A source that records its use and returns copies of ``arrays``."""

    def fetch(_workdir: Path, _deadline: Deadline) -> dict[str, np.ndarray]:
        calls.append(name)
        return {key: value.copy() for key, value in arrays.items()}

    return Source(name, fetch)


def failing_source(name: str, reason: str, calls: list[str]) -> Source:
    """A source that records its use and fails with ``reason``."""

    def fetch(_workdir: Path, _deadline: Deadline) -> dict[str, np.ndarray]:
        calls.append(name)
        raise SourceError(reason)

    return Source(name, fetch)


def assert_fixture(arrays: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    """Assert that ``arrays`` holds the arrays of ``expected``, equal element by element."""
    for name, value in expected.items():
        np.testing.assert_array_equal(arrays[name], value)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an image (n, 784) or label (n,) array as an IDX file."""
    if array.ndim == 2:
        header = (2051).to_bytes(4, "big") + len(array).to_bytes(4, "big")
        header += (28).to_bytes(4, "big") + (28).to_bytes(4, "big")
    else:
        header = (2049).to_bytes(4, "big") + len(array).to_bytes(4, "big")
    return header + array.astype(np.uint8).tobytes()


def idx_files(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """The four uncompressed IDX files of ``arrays``, by array name."""
    return {name: idx_bytes(arrays[name]) for name in ARRAY_NAMES}


def gz_idx_files(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """The four gzipped IDX files (as mirrors serve them), by file name."""
    return {
        f"{IDX_FILES[name]}.gz": gzip.compress(raw, mtime=0)
        for name, raw in idx_files(arrays).items()
    }


def md5(raw: bytes) -> str:
    """MD5 of some bytes."""
    return hashlib.md5(raw, usedforsecurity=False).hexdigest()


class LoopbackServer:
    """An HTTP server on 127.0.0.1 serving fixed files; ``truncate`` cuts responses short."""

    def __init__(self, files: dict[str, bytes], truncate: bool = False) -> None:
        self.files = files
        self.truncate = truncate
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append(name)
                body = server.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if server.truncate else body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


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
