"""Shared test fixtures: the committed MNIST fixture, a data folder of its own, loopback URLs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mnist_study import settings
from mnist_study.digests import ARRAY_NAMES

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_PATH = ROOT / "tests" / "fixtures" / "mnist_784_fixture.npz"


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep each test away from the real dataset cache (and npm from asking for its updates)."""
    monkeypatch.setenv(settings.DATA_DIR_ENV, str(tmp_path / "default-data"))
    monkeypatch.setenv("npm_config_update_notifier", "false")


@pytest.fixture(scope="session")
def fixture_arrays() -> dict[str, np.ndarray]:
    """The committed fixture's four arrays (uint8 pixels, uint8 digit labels)."""
    with np.load(FIXTURE_PATH) as npz:
        return {name: npz[name] for name in ARRAY_NAMES}


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
