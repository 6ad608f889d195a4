"""Each source on its own and each file format's reader, all offline."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import textwrap
import threading
import time
import tracemalloc
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from mnist_study import readers, sources
from mnist_study.digests import TEST_FIXTURE, SourceError
from mnist_study.readers import CSV_FILES, IDX_FILES
from mnist_study.sources import NPM_PACKAGE, Deadline

Arrays = dict[str, np.ndarray]
needs_npm = pytest.mark.skipif(shutil.which("npm") is None, reason="no npm client installed")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The URL of a loopback HTTP server that serves the files of ``tmp_path / "served"``."""
    (tmp_path / "served").mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=tmp_path / "served")
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
        httpd.shutdown()


def idx_bytes(array: np.ndarray, rows: int | None = None) -> bytes:
    """Images (n, 784) or labels (n,) as an IDX file, its header declaring ``rows`` if given."""
    dims = [2051, rows or len(array), 28, 28] if array.ndim == 2 else [2049, rows or len(array)]
    return b"".join(d.to_bytes(4, "big") for d in dims) + array.tobytes()


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
    name, version = NPM_PACKAGE.split("@")
    (folder / "package.json").write_text(json.dumps({"name": name, "version": version}))
    for name, stem in IDX_FILES.items():
        (folder / "data" / stem).write_bytes(idx_bytes(arrays[name]))
    return folder


def write_csv(path: Path, images: np.ndarray, labels: np.ndarray, header: bool = True) -> None:
    """One image a row, its label first, as the Kaggle copy has them (with its header or not)."""
    names = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))
    table = np.column_stack([labels, images])
    np.savetxt(path, table, "%d", ",", header=names if header else "", comments="")


def test_downloads_are_kept_only_with_their_published_hash(
    tmp_path, fixture_arrays, served, closed_port_url
) -> None:
    """The mirrors in turn (MD5), then Keras's mnist.npz (SHA-256): a mismatch is refused."""
    files = {**gz_idx_files(fixture_arrays), "mnist.npz": keras_npz(fixture_arrays)}
    for name, body in files.items():
        (tmp_path / "served" / name).write_bytes(body)
    md5s = {n: hashlib.md5(files[f"{s}.gz"]).hexdigest() for n, s in IDX_FILES.items()}
    sha256 = hashlib.sha256(files["mnist.npz"]).hexdigest()
    mirrors, keras = (closed_port_url, served), f"{served}mnist.npz"
    arrays = sources.fetch_idx_mirrors(tmp_path, Deadline(), mirrors, md5s)
    np.testing.assert_equal(arrays, fixture_arrays)
    np.testing.assert_equal(sources.fetch_keras_npz(tmp_path, Deadline(), keras, sha256), arrays)
    (tmp_path / "again").mkdir()
    wrong = dict.fromkeys(IDX_FILES, "0" * 32)
    with pytest.raises(SourceError, match=f"{closed_port_url}.*; {served}.*MD5 hash"):
        sources.fetch_idx_mirrors(tmp_path / "again", Deadline(), mirrors, wrong)
    with pytest.raises(SourceError, match="SHA256 hash"):
        sources.fetch_keras_npz(tmp_path / "again", Deadline(), keras, "0" * 64)
    assert list((tmp_path / "again").iterdir()) == [], "pooch removes what it rejects"


def stand_in_sklearn(folder: Path, body: str) -> str:
    """A package ``sklearn`` whose ``datasets.fetch_openml(name, **kwargs)`` runs ``body``."""
    package = folder / "stand-in" / "sklearn"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "datasets.py").write_text(
        "import json, os, time, types\nimport numpy as np\n\n"
        "def fetch_openml(name, **kwargs):\n" + textwrap.indent(body, "    ")
    )
    return str(package.parent)


def test_openml_is_asked_as_the_book_asks_in_a_child_process_and_split_as_the_book_splits(
    tmp_path, fixture_file, fixture_arrays, monkeypatch
) -> None:
    """A stand-in scikit-learn records the call; its own cache is used; no process-wide timeout."""
    answer = f"""
json.dump({{'name': name, **kwargs}}, open({str(tmp_path / "call.json")!r}, 'w'))
with np.load({str(fixture_file)!r}) as npz:
    X = np.vstack([npz['X_train'], npz['X_test']]).astype(float)
    y = np.concatenate([npz['y_train'], npz['y_test']]).astype(str).astype(object)
return types.SimpleNamespace(data=X, target=y)
"""
    monkeypatch.setenv("PYTHONPATH", stand_in_sklearn(tmp_path, answer))
    process_wide: list[object] = []
    monkeypatch.setattr(socket, "setdefaulttimeout", process_wide.append)
    arrays = sources.fetch_openml_source(tmp_path, Deadline(), n_train=TEST_FIXTURE.n_train)
    np.testing.assert_equal(arrays, fixture_arrays)
    call = json.loads((tmp_path / "call.json").read_text())
    assert (call["name"], call["version"], call["as_frame"]) == ("mnist_784", 1, False)
    assert "data_home" not in call and "cache" not in call, "scikit-learn's own cache"
    assert process_wide == [], "the socket timeout is set in the child only"


def test_openml_that_never_finishes_is_stopped_at_the_deadline_and_cleans_up(
    tmp_path, monkeypatch
) -> None:
    """Its answers each come in time, the whole never does: the child is asked to stop (TERM)."""
    pid, scratch = tmp_path / "pid", tmp_path / "scratch"
    endless = f"""
open({str(pid)!r}, 'w').write(str(os.getpid()))
os.mkdir({str(scratch)!r})
try:
    time.sleep(600)
finally:
    os.rmdir({str(scratch)!r})  # as scikit-learn's temporary folder goes
"""
    monkeypatch.setenv("PYTHONPATH", stand_in_sklearn(tmp_path, endless))
    started = time.monotonic()
    with pytest.raises(SourceError, match="no complete answer within 4 s: gave up"):
        sources.fetch_openml_source(tmp_path, Deadline(total_s=4.0))
    assert time.monotonic() - started < 4 + 5
    assert pid.exists() and not scratch.exists(), "stopped by TERM, not killed"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid.read_text()), 0)


@needs_npm
def test_npm_pack_gives_the_packages_idx_files(
    tmp_path, fixture_arrays, monkeypatch, closed_port_url
) -> None:
    """The real npm client packs a local copy of the package (its registry on a closed port)."""
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    monkeypatch.setenv("npm_config_registry", closed_port_url)
    package = npm_package_folder(tmp_path / "package", fixture_arrays)
    arrays = sources.fetch_npm_package(tmp_path, Deadline(), str(package))
    np.testing.assert_equal(arrays, fixture_arrays)


@pytest.mark.parametrize(
    ("fetch", "network", "total_s", "reason"),
    [
        (sources.fetch_openml_source, "refused", 60, "refused"),
        (sources.fetch_openml_source, "silent", 60, "timed out"),  # each wait capped at 1 s
        pytest.param(sources.fetch_npm_package, "refused", 60, "ECONNREFUSED", marks=needs_npm),
        pytest.param(sources.fetch_npm_package, "silent", 3, "timeout|timed out", marks=needs_npm),
    ],
)
def test_an_unreachable_openml_or_npm_registry_is_one_plain_failure_within_its_time(
    tmp_path, monkeypatch, closed_port_url, silent_url, fetch, network, total_s, reason
) -> None:
    """The real fetch_openml and npm client, sent to a loopback port that refuses or is silent."""
    url = closed_port_url if network == "refused" else silent_url
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "scikit_learn_data"))
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    monkeypatch.setenv("npm_config_registry", url)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    for variable in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(variable, url)
    started = time.monotonic()
    with warnings.catch_warnings(record=True) as caught, pytest.raises(SourceError, match=reason):
        warnings.simplefilter("always")
        fetch(tmp_path, Deadline(total_s, wait_s=1.0))
    assert time.monotonic() - started < 10
    assert [str(warning.message) for warning in caught] == []


@pytest.mark.parametrize("layout", ["IDX", "mnist.npz", "npm tarball", "CSV"])
def test_files_placed_by_hand_are_read_in_each_layout_damaged_idx_files_hiding_none(
    tmp_path, fixture_arrays, layout
) -> None:
    """The IDX files (gzipped or not), Keras's mnist.npz, npm's tarball or Kaggle's CSV files."""
    for name, raw in gz_idx_files(fixture_arrays).items():
        if layout != "IDX":  # cut short, beside another copy
            (tmp_path / name).write_bytes(raw[: len(raw) // 2])
        elif name.startswith("t10k-labels"):
            (tmp_path / name.removesuffix(".gz")).write_bytes(gzip.decompress(raw))
        else:
            (tmp_path / name).write_bytes(raw)
    if layout == "mnist.npz":
        (tmp_path / layout).write_bytes(keras_npz(fixture_arrays))
    elif layout == "npm tarball":
        package = npm_package_folder(tmp_path / "package", fixture_arrays)
        archive = shutil.make_archive(str(tmp_path / "pack"), "gztar", package.parent, "package")
        Path(archive).rename(tmp_path / f"{NPM_PACKAGE.replace('@', '-')}.tgz")
    elif layout == "CSV":
        for part, file_name in CSV_FILES.items():
            arrays = fixture_arrays[f"X_{part}"], fixture_arrays[f"y_{part}"]
            write_csv(tmp_path / file_name, *arrays, header=part == "train")
    np.testing.assert_equal(readers.read_placed_files(tmp_path, TEST_FIXTURE), fixture_arrays)
    if layout == "IDX":  # one of the four missing is named
        (tmp_path / "t10k-labels-idx1-ubyte").unlink()
        with pytest.raises(SourceError, match=r"3 of 4 placed, missing t10k-labels-idx1-ubyte\("):
            readers.read_placed_files(tmp_path, TEST_FIXTURE)


def npz_declaring(member: str, shape: tuple[int, ...]) -> bytes:
    """An ``.npz`` of one uint8 ``member`` whose header declares ``shape``; 1 MB of data follows."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as npz, npz.open(member, "w") as npy:
        header = {"descr": "|u1", "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(npy, header)
        npy.write(bytes(1 << 20))
    return buffer.getvalue()


def gzip_bomb(prefix: bytes, size: int) -> bytes:
    """A gzip file of ``prefix`` and ``size`` zero bytes, a thousandth that size (CRC wrong)."""
    compressor, chunk = zlib.compressobj(9, zlib.DEFLATED, 31), 1 << 24
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    piece = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return head + piece * (size // chunk) + compressor.flush()


@pytest.mark.parametrize(
    ("bomb", "reason"),
    [
        ("npz claiming 5,000,000 rows", r"mnist.npz: X_train.npy declares 5,000,000 rows, not the"),
        ("IDX.gz claiming 6,000,000 rows", "declares 6,000,000 rows, not the 2,000 of MNIST test"),
        ("IDX.gz of 2,000 rows and 4.7 GB", "more data than its header declares"),
        ("CSV of 10 GB", "mnist_train.csv: larger than 2,000 rows of 785 numbers: not read"),
    ],
)
def test_a_decompression_bomb_placed_by_hand_is_refused_at_its_header_in_little_memory(
    tmp_path, fixture_arrays, bomb, reason
) -> None:
    """A few MB that expand to gigabytes: the reader stops at what MNIST holds."""
    files = {stem: idx_bytes(fixture_arrays[name]) for name, stem in IDX_FILES.items()}
    images = IDX_FILES["X_train"]
    if bomb.startswith("npz"):
        files = {"mnist.npz": npz_declaring("X_train.npy", (5_000_000, 784))}
    elif bomb.startswith("IDX.gz claiming"):
        files[images] = gzip.compress(idx_bytes(fixture_arrays["X_train"], rows=6_000_000))
    elif bomb.startswith("IDX.gz of"):
        files[images] = gzip_bomb(files[images], 6_000_000 * 784)
    else:
        files = dict.fromkeys(CSV_FILES.values(), b"")
    for name, body in files.items():
        (tmp_path / name).write_bytes(body)
    if bomb.startswith("CSV"):
        os.truncate(tmp_path / "mnist_train.csv", 10**10)  # sparse: no disk used
    started = time.monotonic()
    tracemalloc.start()
    try:
        with pytest.raises(SourceError, match=reason):
            readers.read_placed_files(tmp_path, TEST_FIXTURE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 5 and peak < 50_000_000, f"{peak / 1e6:.0f} MB"
