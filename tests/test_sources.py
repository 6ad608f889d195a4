"""Each source on its own and each file format's reader, all offline."""

import contextlib
import gzip
import hashlib
import http.server
import io
import json
import logging
import os
import re
import shutil
import socket
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
from mnist_study.digests import TEST_FIXTURE, Arrays, SourceError
from mnist_study.readers import CSV_FILES, IDX_FILES
from mnist_study.sources import NPM_PACKAGE, Deadline

needs_npm = pytest.mark.skipif(shutil.which("npm") is None, reason="no npm client installed")
# A stand-in for sklearn.datasets: it records the call and returns the fixture or, once a file
# "stall" is beside it, never finishes (each answer in time, the whole never).
STAND_IN = """
import json, os, pathlib, time, types
import numpy as np

def fetch_openml(name, **kwargs):
    here = pathlib.Path(__file__).parent
    (here / "call.json").write_text(json.dumps({"name": name, **kwargs}))
    if (here / "stall").exists():
        try:
            time.sleep(600)
        finally:
            (here / "stopped").touch()  # as scikit-learn's temporary files go
    with np.load(os.environ["STAND_IN_ANSWER"]) as npz:
        X = np.vstack([npz["X_train"], npz["X_test"]]).astype(float)
        y = np.concatenate([npz["y_train"], npz["y_test"]]).astype(str).astype(object)
    return types.SimpleNamespace(data=X, target=y)
"""


class Served(http.server.SimpleHTTPRequestHandler):
    """A folder's files; under /trickle/N/ a byte every 20 ms for 30 s, N bytes announced if N."""

    def do_GET(self) -> None:
        if not (trickle := re.match(r"/trickle/(\d+)/", self.path)):
            return super().do_GET()
        self.send_response(200)
        if trickle[1] != "0":
            self.send_header("Content-Length", trickle[1])
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up
            for _ in range(1500):
                self.wfile.write(b"\0")
                self.wfile.flush()
                time.sleep(0.02)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The URL of a loopback HTTP server that serves the files of ``tmp_path / "served"``."""
    (tmp_path / "served").mkdir()
    handler = partial(Served, directory=tmp_path / "served")
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


@pytest.mark.parametrize(
    ("size", "reason"),
    [(10_000_000, r"kB/s\), the rest would take about .* h; gave up with"), (0, "unknown size")],
)
def test_a_download_needs_its_hash_and_time(
    tmp_path, fixture_arrays, served, closed_port_url, caplog, monkeypatch, size, reason
) -> None:
    """Kept only with its published hash (MD5, SHA-256); given up once too slow, leaving no file."""
    files = {**gz_idx_files(fixture_arrays), "mnist.npz": keras_npz(fixture_arrays)}
    for name, body in files.items():
        (tmp_path / "served" / name).write_bytes(body)
    md5s = {n: hashlib.md5(files[f"{s}.gz"]).hexdigest() for n, s in IDX_FILES.items()}
    sha256 = hashlib.sha256(files["mnist.npz"]).hexdigest()
    mirrors, keras = (closed_port_url, served), f"{served}mnist.npz"
    arrays = sources.fetch_idx_mirrors(tmp_path, Deadline(), mirrors, md5s)
    np.testing.assert_equal(arrays, fixture_arrays)
    np.testing.assert_equal(sources.fetch_keras_npz(tmp_path, Deadline(), keras, sha256), arrays)
    wrong, work = dict.fromkeys(IDX_FILES, "0" * 32), tmp_path / "work"
    with pytest.raises(SourceError, match=f"{closed_port_url}.*; {served}.*MD5 hash"):
        sources.fetch_idx_mirrors(work, Deadline(), mirrors, wrong)
    with pytest.raises(SourceError, match="SHA256 hash"):
        sources.fetch_keras_npz(work, Deadline(), keras, "0" * 64)
    monkeypatch.setattr(sources, "PROGRESS_EVERY_S", 1.0)
    deadline, trickle = Deadline(total_s=60 if size else 4, wait_s=2), f"{served}trickle/{size}/"
    started = time.monotonic()
    with caplog.at_level(logging.INFO), pytest.raises(SourceError, match=reason):
        sources.fetch_idx_mirrors(work, deadline, (trickle,))
    assert time.monotonic() - started < sources.SETTLE_S + 5, "not the time allowed"
    assert f"waiting for {trickle}train-images-idx3-ubyte.gz (at most 2 s" in caplog.text
    assert ("0.0 of 10.0 MB received, about" if size else "0.0 MB received") in caplog.text
    assert list(work.iterdir()) == [], "pooch removes what it rejects or gave up on"


def test_openml_asked_as_the_book_asks(tmp_path, fixture_file, fixture_arrays, monkeypatch) -> None:
    """The book's call and split, scikit-learn's own cache; past the deadline, TERM and clean up."""
    stand_in = tmp_path / "sklearn"
    stand_in.mkdir()
    (stand_in / "__init__.py").write_text("")
    (stand_in / "datasets.py").write_text(STAND_IN)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("STAND_IN_ANSWER", str(fixture_file))
    process_wide: list[object] = []
    monkeypatch.setattr(socket, "setdefaulttimeout", process_wide.append)
    arrays = sources.fetch_openml_source(tmp_path, Deadline(), n_train=TEST_FIXTURE.n_train)
    np.testing.assert_equal(arrays, fixture_arrays)
    call = json.loads((stand_in / "call.json").read_text())
    assert (call["name"], call["version"], call["as_frame"]) == ("mnist_784", 1, False)
    assert "data_home" not in call and "cache" not in call, "scikit-learn's own cache"
    assert process_wide == [], "the socket timeout is set in the child only"
    (stand_in / "stall").touch()
    with pytest.raises(SourceError, match="no complete answer within 4 s: gave up"):
        sources.fetch_openml_source(tmp_path, Deadline(total_s=4.0))
    assert (stand_in / "stopped").exists(), "asked to stop (TERM), not killed"


@needs_npm
def test_npm_pack_gives_idx_files(tmp_path, fixture_arrays, monkeypatch, closed_port_url) -> None:
    """The real npm client packs a local copy of the package (its registry on a closed port)."""
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    monkeypatch.setenv("npm_config_registry", closed_port_url)
    package = npm_package_folder(tmp_path / "package", fixture_arrays)
    arrays = sources.fetch_npm_package(tmp_path, Deadline(), str(package))
    np.testing.assert_equal(arrays, fixture_arrays)


@pytest.mark.parametrize(
    ("fetch", "network", "total_s", "reason"),
    [
        (sources.fetch_openml_source, "silent", 60, "timed out"),  # each wait capped at 1 s
        (sources.fetch_idx_mirrors, "silent", 60, "ossci.*timed out.*; http://yann.*timed out"),
        pytest.param(sources.fetch_npm_package, "refused", 60, "ECONNREFUSED", marks=needs_npm),
        pytest.param(sources.fetch_npm_package, "silent", 3, "timeout|timed out", marks=needs_npm),
    ],
)
def test_an_unreachable_network_is_one_plain_failure_within_its_time(
    tmp_path, monkeypatch, closed_port_url, silent_url, fetch, network, total_s, reason
) -> None:
    """The real fetch_openml, requests and npm, sent to a loopback port refusing or silent."""
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
    ("layout", "reason"),
    [
        ("IDX", ""),
        ("mnist.npz", ""),
        ("npm tarball", ""),
        ("CSV", ""),
        ("3 of 4 IDX", r"3 of 4 placed, missing t10k-labels-idx1-ubyte\("),
        ("npz claiming 5,000,000 rows", r"mnist.npz: X_train.npy declares 5,000,000 rows, not the"),
        ("IDX claiming 6,000,000 rows", "declares 6,000,000 rows, not the 2,000 of MNIST test"),
        ("IDX of 2,000 rows and 4.7 GB", "more data than its header declares"),
        ("CSV of 10 GB", "mnist_train.csv: larger than 2,000 rows of 785 numbers: not read"),
    ],
)
def test_placed_files_are_read_or_bombs_refused(tmp_path, fixture_arrays, layout, reason) -> None:
    """IDX (gzipped or not), Keras's npz, npm's tarball, Kaggle's CSV; a bomb is stopped early."""
    files = gz_idx_files(fixture_arrays)
    images, labels = f"{IDX_FILES['X_train']}.gz", f"{IDX_FILES['y_test']}.gz"
    if layout == "IDX":
        files[labels.removesuffix(".gz")] = gzip.decompress(files.pop(labels))
    elif layout == "3 of 4 IDX":
        del files[labels]
    elif layout.startswith("IDX claiming"):
        files[images] = gzip.compress(idx_bytes(fixture_arrays["X_train"], rows=6_000_000))
    elif layout.startswith("IDX of"):
        files[images] = gzip_bomb(idx_bytes(fixture_arrays["X_train"]), 6_000_000 * 784)
    else:  # cut short beside another layout, hiding none
        files = {name: body[: len(body) // 2] for name, body in files.items()}
    if layout == "mnist.npz":
        files[layout] = keras_npz(fixture_arrays)
    elif layout.startswith("npz claiming"):
        files["mnist.npz"] = npz_declaring("X_train.npy", (5_000_000, 784))
    elif layout == "CSV of 10 GB":
        files |= dict.fromkeys(CSV_FILES.values(), b"")
    for name, body in files.items():
        (tmp_path / name).write_bytes(body)
    if layout == "npm tarball":
        package = npm_package_folder(tmp_path / "package", fixture_arrays)
        archive = shutil.make_archive(str(tmp_path / "pack"), "gztar", package.parent, "package")
        Path(archive).rename(tmp_path / f"{NPM_PACKAGE.replace('@', '-')}.tgz")
    elif layout == "CSV":  # one image a row, its label first, the header on one file only
        names = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))
        for part, file_name in CSV_FILES.items():
            table = np.column_stack([fixture_arrays[f"y_{part}"], fixture_arrays[f"X_{part}"]])
            header = names if part == "train" else ""
            np.savetxt(tmp_path / file_name, table, "%d", ",", header=header, comments="")
    elif layout == "CSV of 10 GB":
        os.truncate(tmp_path / "mnist_train.csv", 10**10)  # sparse: no disk used
    started = time.monotonic()
    tracemalloc.start()
    try:
        with pytest.raises(SourceError, match=reason) if reason else contextlib.nullcontext():
            arrays = readers.read_placed_files(tmp_path, TEST_FIXTURE)
            np.testing.assert_equal(arrays, fixture_arrays)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 5 and peak < 50_000_000, f"{peak / 1e6:.0f} MB"
