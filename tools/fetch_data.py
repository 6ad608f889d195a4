"""Fetch, verify and cache MNIST from the command line (``make data``), or rebuild the fixture.

If no source answers, it prints what each one said and how to place the files by hand, and exits
with status 1, without a traceback. Ctrl-C, SIGTERM or SIGHUP stop it with a line saying so and
no partial file left (exit status 128 + the signal's number). Usage::

    python -m tools.fetch_data                  # the full dataset into data/ (make data)
    python -m tools.fetch_data --write-fixture  # rebuild tests/fixtures/mnist_784_fixture.npz
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

import numpy as np

from mnist_study.data import MnistUnavailableError, load_mnist, stratified_subset, write_atomically
from mnist_study.digests import ARRAY_NAMES, TEST_FIXTURE, array_sha256
from tools.paths import FIXTURE_FILE


class Stopped(BaseException):
    """A signal asked the command to stop (a BaseException, as KeyboardInterrupt is)."""


def stop(signum: int, _frame: object) -> None:
    """Unwind as Ctrl-C does, so that every temporary file and child process is cleaned up."""
    raise Stopped(signum)


def main(argv: list[str] | None = None) -> None:
    """Fetch the dataset (saying where from, and whether it was cached), or rebuild the fixture."""
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
    signal.signal(signal.SIGTERM, stop)
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # nohup's choice is kept
        signal.signal(signal.SIGHUP, stop)
    try:
        X_train, X_test, y_train, y_test = load_mnist()
        print(f"MNIST verified: X_train {X_train.shape} {X_train.dtype}, X_test {X_test.shape}")
        if args.write_fixture:
            labels = {"y_train": y_train.astype(np.uint8), "y_test": y_test.astype(np.uint8)}
            full = {"X_train": X_train, "X_test": X_test, **labels}
            subset = stratified_subset(
                full, TEST_FIXTURE.n_train, TEST_FIXTURE.n_test, random_state=42
            )
            write_atomically(args.write_fixture, subset)
            for name in ARRAY_NAMES:
                print(f"{name}: {array_sha256(subset[name])}")
    except MnistUnavailableError as error:
        print(f"\n{error}", file=sys.stderr)
        raise SystemExit(1) from None
    except OSError as error:  # the fixture's path cannot be written
        print(f"could not write {args.write_fixture}: {error.strerror or error}", file=sys.stderr)
        raise SystemExit(1) from None
    except (KeyboardInterrupt, Stopped) as error:
        signum = error.args[0] if isinstance(error, Stopped) else signal.SIGINT
        name = signal.Signals(signum).name
        print(f"\nstopped by {name}: no partial file is left", file=sys.stderr)
        raise SystemExit(128 + signum) from None


if __name__ == "__main__":
    main()
