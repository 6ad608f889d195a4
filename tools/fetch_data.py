"""Fetch, verify and cache MNIST: ``python -m tools.fetch_data`` (``make data``); with
``--write-fixture [PATH]``, rebuild the test fixture from it. No source answering, or a stop signal,
ends it with one message and no partial file (exit status 1, or 128 + the signal's number)."""

import logging
import signal
import sys
from pathlib import Path

import numpy as np

from mnist_study.data import MnistUnavailableError, load_mnist, stratified_subset, write_atomically
from mnist_study.digests import ARRAY_NAMES, TEST_FIXTURE, array_sha256
from tools.paths import FIXTURE_FILE
from tools.run_notebooks import on_stop


def stop(signum: int, _frame: object) -> None:
    """Unwind as Ctrl-C does, so that every temporary file and child process is cleaned up."""
    raise KeyboardInterrupt(signum)


def main(*args: str) -> int:
    """Fetch the dataset (saying where from, and whether it was cached), or rebuild the fixture."""
    fixture = args[:1] == ("--write-fixture",) and Path(args[1] if args[1:] else FIXTURE_FILE)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    on_stop(stop)
    try:
        X_train, X_test, y_train, y_test = load_mnist()
        print(f"MNIST verified: X_train {X_train.shape} {X_train.dtype}, X_test {X_test.shape}")
        if fixture:
            labels = {"y_train": y_train.astype(np.uint8), "y_test": y_test.astype(np.uint8)}
            full, sizes = {"X_train": X_train, "X_test": X_test, **labels}, TEST_FIXTURE
            subset = stratified_subset(full, sizes.n_train, sizes.n_test, random_state=42)
            write_atomically(fixture, subset)
            for name in ARRAY_NAMES:
                print(f"{name}: {array_sha256(subset[name])}")
    except MnistUnavailableError as error:
        print(f"\n{error}", file=sys.stderr)
        return 1
    except OSError as error:  # the fixture's path cannot be written
        print(f"could not write {fixture}: {error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as error:
        signum = error.args[0] if error.args else signal.SIGINT
        print(f"\nstopped by {signal.Signals(signum).name}: no partial file left", file=sys.stderr)
        return 128 + signum
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
