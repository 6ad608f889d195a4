"""Fetch, verify and cache MNIST from the command line (``make data``), or rebuild the fixture.

If no source answers, it prints what each one said and how to place the files by hand, and exits
with status 1, without a traceback (130 on Ctrl-C). Usage::

    python -m tools.fetch_data                  # the full dataset into data/ (make data)
    python -m tools.fetch_data --write-fixture  # rebuild tests/fixtures/mnist_784_fixture.npz
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from mnist_study import settings
from mnist_study.data import MnistUnavailableError, load_mnist, stratified_subset
from mnist_study.digests import FIXTURE, array_sha256
from mnist_study.formats import ARRAY_NAMES
from mnist_study.storage import CACHE_NAME, write_cache
from tools.paths import FIXTURE_FILE

logger = logging.getLogger("mnist_study")


def fetch() -> None:
    """Fetch, verify and cache the full dataset, reporting where it came from."""
    cache = settings.data_dir() / CACHE_NAME
    if cache.exists():
        logger.info(f"reading the local cache {cache}")
    X_train, X_test, _, _ = load_mnist()
    print(
        f"MNIST verified: X_train {X_train.shape} {X_train.dtype}, "
        f"X_test {X_test.shape} {X_test.dtype}, cached in {cache}"
    )


def write_fixture(path: Path) -> None:
    """Rebuild the committed test fixture from the verified full dataset."""
    X_train, X_test, y_train, y_test = load_mnist()
    full = {
        "X_train": X_train,
        "X_test": X_test,
        "y_train": y_train.astype(np.uint8),
        "y_test": y_test.astype(np.uint8),
    }
    subset = stratified_subset(full, FIXTURE.n_train, FIXTURE.n_test, random_state=42)
    write_cache(subset, path)
    for name in ARRAY_NAMES:
        print(f"{name}: {array_sha256(subset[name])}")


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and fetch the dataset or rebuild the fixture."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--write-fixture",
        nargs="?",
        const=FIXTURE_FILE,
        type=Path,
        metavar="PATH",
        help="rebuild the test fixture from the full dataset (default: %(const)s)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.write_fixture:
            write_fixture(args.write_fixture)
        else:
            fetch()
    except MnistUnavailableError as error:
        print(f"\n{error}", file=sys.stderr)
        raise SystemExit(1) from None
    except OSError as error:  # the fixture's path cannot be written
        print(f"could not write {args.write_fixture}: {error.strerror or error}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print("\ninterrupted: nothing was cached", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
