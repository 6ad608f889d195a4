"""Shared test fixtures: the committed MNIST fixture, isolated caches, loopback URLs."""

import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mnist_study import settings
from mnist_study.digests import ARRAY_NAMES
from tools.paths import FIXTURE_FILE


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test's own empty dataset and results caches (``tmp_path / "cache"``); npm quiet."""
    monkeypatch.setenv(settings.DATA_DIR_ENV, str(tmp_path / "default-data"))
    monkeypatch.setenv(settings.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("npm_config_update_notifier", "false")


@pytest.fixture(scope="session")
def fixture_file() -> Path:
    """The committed MNIST fixture (2,000 training and 500 test images)."""
    return FIXTURE_FILE


@pytest.fixture(scope="session")
def fixture_arrays() -> dict[str, np.ndarray]:
    """The committed fixture's four arrays (uint8 pixels, uint8 digit labels)."""
    with np.load(FIXTURE_FILE) as npz:
        return {name: npz[name] for name in ARRAY_NAMES}


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL on which nothing listens (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A loopback URL whose server accepts connections and never answers (a silent network)."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as sock:  # nothing reads or replies
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
