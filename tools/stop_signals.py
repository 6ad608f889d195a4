"""The signals that end a run (Ctrl-C, a ``kill``, a closed terminal), turned into one exception."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["STOP_SIGNALS", "Stopped", "ignore_stop_signals", "stop_signals_raise"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(BaseException):
    """The run received ``signum``; the exit status is 128 + ``signum``, as a shell reports it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """While in the block, SIGINT, SIGTERM and SIGHUP raise :class:`Stopped`."""

    def stop(signum: int, _frame: object) -> None:
        raise Stopped(signum)

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def ignore_stop_signals() -> None:
    """Ignore them until the block of :func:`stop_signals_raise` ends (stopping is under way)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
