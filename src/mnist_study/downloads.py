"""Waiting for the network within limits: a deadline for all sources and downloads with pooch.

``Deadline`` says how long the next wait may take (at most ``wait_s`` for any one answer, and
``total_s`` in all); every network call of ``sources.py`` asks it first, and says what it waits for.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mnist_study.formats import SourceError

__all__ = ["Deadline", "download", "socket_timeout"]

logger = logging.getLogger(__name__)


@dataclass
class Deadline:
    """How long the network may keep the loader waiting: in all, and for any one answer."""

    total_s: float = 60.0
    wait_s: float = 10.0
    started: float = field(default_factory=time.monotonic)

    def timeout(self) -> float:
        """Seconds the next wait may take; ``SourceError`` once the total has been spent."""
        remaining = self.total_s - (time.monotonic() - self.started)
        if remaining <= 0:
            raise SourceError(f"gave up: the {self.total_s:g} s allowed for all sources had passed")
        return min(self.wait_s, remaining)


@contextlib.contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    """Give every socket opened inside the block a timeout (urllib's default is to wait forever)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def download(url: str, known_hash: str | None, workdir: Path, deadline: Deadline) -> Path:
    """Download ``url`` into ``workdir`` with pooch (hash-checked, atomic, size and progress)."""
    import pooch

    timeout = deadline.timeout()
    logger.info(f"  waiting for {url} (at most {timeout:.0f} s for each answer) …")
    downloader = pooch.HTTPDownloader(progressbar=sys.stderr.isatty(), timeout=timeout)
    pooch_logger = pooch.get_logger()  # its own line would repeat this one, with the scratch path
    level = pooch_logger.level
    pooch_logger.setLevel(logging.WARNING)
    try:
        path = Path(
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
    finally:
        pooch_logger.setLevel(level)
    logger.info(f"  received {path.stat().st_size / 1e6:.1f} MB")
    return path
