"""Load MNIST exactly as the book does, from the first source that answers, verified by digest.

``load_mnist()`` returns the OpenML ``mnist_784`` arrays: the first 60,000 images for training and
the last 10,000 for testing, ``uint8`` pixels of shape ``(n, 784)`` and labels that are the
strings ``'0'`` to ``'9'``. It reads the local cache (``data/mnist_784.npz``, or the folder named
by ``MNIST_STUDY_DATA_DIR``), else tries the sources of ``sources.py`` in turn and keeps the first
copy whose SHA-256 digests are those of ``digests.py``, caching it. If none answers within about
a minute, ``MnistUnavailableError`` lists what each said and how to place the files by hand.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import filelock
import numpy as np

from mnist_study import settings
from mnist_study.digests import MNIST_784, TEST_FIXTURE, Arrays, DatasetSpec, SourceError, verify
from mnist_study.readers import read_npz
from mnist_study.sources import Deadline, Source, default_sources, manual_instructions

__all__ = ["MIN_SAMPLE", "MnistUnavailableError", "load_mnist", "stratified_subset"]

CACHE_NAME = "mnist_784.npz"
# Ten images of each digit on average: every digit then reaches the training and the test part
# of a stratified subset, and every fold of a 3-fold cross-validation (5 is the rarest, at 9 %).
MIN_SAMPLE = 100
DIGITS = np.array(list("0123456789"))
logger = logging.getLogger(__name__)


class MnistUnavailableError(RuntimeError):
    """No source could provide a verified copy of MNIST; the message says what to do."""


def write_atomically(path: Path, arrays: Arrays) -> None:
    """Write ``arrays`` as a compressed ``.npz``: a temporary file beside it, renamed into place.

    Hand-written: tempfile makes its files 0600; ``open`` lets the umask set the mode.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as stream:
            np.savez_compressed(stream, **arrays)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_cache(cache: Path, spec: DatasetSpec) -> tuple[Arrays | None, str]:
    """The verified arrays of the cache, or None and why not; a damaged cache is removed."""
    if not cache.exists():
        return None, f"{cache} does not exist"
    try:
        return verify(read_npz(cache, spec), spec), ""
    except SourceError as error:
        damage = f"{cache} is damaged or not {spec.name} ({error})"
    try:
        cache.unlink()
    except OSError as error:
        reason = f"{damage} and cannot be removed ({error.strerror}): remove it by hand"
        logger.warning(reason)
        return None, reason
    logger.warning(f"{damage}; removed it, fetching again")
    return None, f"{damage}; removed"


def fetch_lock(data_dir: Path) -> AbstractContextManager[object]:
    """The folder's lock, held: one process reads or fetches while the others wait their turn.

    None to hold if the folder cannot be written: nothing will be cached there.
    """
    lock = filelock.FileLock(data_dir / f".{CACHE_NAME}.lock")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            return lock.acquire(blocking=False)  # released at the end of a with block
        except filelock.Timeout:
            logger.info(f"waiting for another process that is fetching MNIST into {data_dir} …")
            return lock.acquire()
    except OSError:
        return nullcontext()


def obtain_verified(
    data_dir: Path, sources: Iterable[Source], spec: DatasetSpec, deadline: Deadline | None = None
) -> Arrays:
    """Verified arrays from the cache, else from the first source that yields them (then cached).

    ``deadline`` (by default a minute in all, ten seconds for any one answer) starts once no
    other process is fetching into ``data_dir``.
    """
    if data_dir.exists() and not data_dir.is_dir():
        raise MnistUnavailableError(
            f"{data_dir} is a file, not a folder: set {settings.DATA_DIR_ENV} to a folder "
            "(it is created if it does not exist)"
        )
    for folder in (data_dir, *data_dir.parents):
        if folder.is_symlink() and not folder.exists():
            raise MnistUnavailableError(
                f"{folder} is a link to {os.readlink(folder)}, which does not exist: create that "
                f"folder, remove the link, or set {settings.DATA_DIR_ENV} to another folder"
            )
    cache = data_dir / CACHE_NAME
    with fetch_lock(data_dir):
        arrays, reason = read_cache(cache, spec)
        if arrays is not None:
            logger.info(f"read the verified cache {cache}")
            return arrays
        failures = [f"local cache: {reason}"]
        deadline = deadline or Deadline()
        for source in sources:
            logger.info(f"trying {source.name} …")
            try:
                deadline.timeout()  # no source is started once the time allowed has passed
                with tempfile.TemporaryDirectory(prefix="mnist-fetch-") as workdir:
                    arrays = verify(source.fetch(Path(workdir), deadline), spec)
            except SourceError as error:
                logger.warning(f"  {source.name}: {error}")
                failures.append(f"{source.name}: {error}")
                continue
            logger.info(f"verified {spec.name} from {source.name}")
            try:
                write_atomically(cache, arrays)
                logger.info(f"cached it in {cache}")
            except OSError as error:  # the arrays are still returned
                logger.warning(
                    f"Could not cache the verified data in {cache} ({error.strerror or error}): "
                    f"it is used uncached and fetched again next time, unless {cache} can be "
                    f"written or {settings.DATA_DIR_ENV} names another folder."
                )
            return arrays
    tried = "\n".join(f"  - {failure}" for failure in failures)
    raise MnistUnavailableError(
        f"{spec.name} could not be loaded. Sources tried, in order:\n{tried}\n"
        + manual_instructions(data_dir)
    )


def check_sample(sample: int | None, spec: DatasetSpec) -> None:
    """Raise ``ValueError`` unless ``sample`` is None or a whole number in MIN_SAMPLE…n_train."""
    whole = isinstance(sample, int | np.integer) and not isinstance(sample, bool)
    if sample is not None and not (whole and MIN_SAMPLE <= sample <= spec.n_train):
        raise ValueError(
            f"sample must be a whole number of training images from {MIN_SAMPLE} (the smallest "
            f"allowed: about ten of each digit) to {spec.n_train:,} (all of {spec.name}'s), "
            f"got {sample!r}"
        )


def stratified_subset(arrays: Arrays, n_train: int, n_test: int, random_state: int = 42) -> Arrays:
    """A seeded subset with each digit in proportion, keeping the original order."""
    from sklearn.model_selection import train_test_split

    subset = {}
    for part, size in (("train", n_train), ("test", n_test)):
        X, y = arrays[f"X_{part}"], arrays[f"y_{part}"]
        index = np.arange(len(y))
        if size < len(y):
            index = np.sort(
                train_test_split(index, train_size=size, stratify=y, random_state=random_state)[0]
            )
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

    ``sample`` keeps a stratified, seeded subset of that many training images (``MIN_SAMPLE`` at
    least) and the same fraction of the test images. ``fixture``, the path of the small committed
    test fixture (``tests/fixtures/mnist_784_fixture.npz``), reads it instead of the full dataset,
    offline. An empty path is refused, as it would mean the current folder.
    """
    for name, path in (("data_dir", data_dir), ("fixture", fixture)):
        if path is not None and os.fspath(path) == "":
            raise ValueError(f'{name}="" would mean the current folder: give a path, or None')
    spec = TEST_FIXTURE if fixture else MNIST_784
    check_sample(sample, spec)
    if fixture:
        try:
            arrays = verify(read_npz(Path(fixture), spec), spec)
        except SourceError as error:
            raise MnistUnavailableError(f"Test fixture {fixture} is not usable: {error}") from None
    else:
        directory = Path(data_dir) if data_dir is not None else settings.data_dir()
        chosen = default_sources(directory, spec) if sources is None else sources
        arrays = obtain_verified(directory, chosen, spec)
    if sample is not None:
        n_test = round(sample * spec.n_test / spec.n_train)
        arrays = stratified_subset(arrays, sample, n_test, random_state)
    return arrays["X_train"], arrays["X_test"], DIGITS[arrays["y_train"]], DIGITS[arrays["y_test"]]
