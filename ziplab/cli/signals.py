"""Ctrl-C, SIGTERM and SIGHUP during compress/decompress: remove the partial output and exit with
the conventional code (128 + signal), never in the middle of a numba kernel.

An exception raised by a signal handler can land inside numba's dispatcher and crash the process
(seen as a segfault when lzh -9 was interrupted). So the handler only records the signal; the
coding loops call `checkpoint()` between blocks and every few dozen coding steps (through their
progress callback), where raising is safe, and the usual clean-up (temp file removal) runs. A
second signal before that raises at once: the user insists."""

from __future__ import annotations

import contextlib
import signal
from typing import Callable, Iterator

HANDLED = (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None))


class Interrupted(BaseException):
    """Raised at a safe point after a signal; BaseException so no `except Exception` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


_pending: list[int] = []


def _handler(signum: int, frame: object) -> None:
    _pending.append(signum)
    if len(_pending) > 1:
        raise Interrupted(signum)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    _pending.clear()
    previous = {}
    for sig in HANDLED:
        if sig is not None:
            with contextlib.suppress(ValueError, OSError):  # not the main thread: leave signals alone
                previous[sig] = signal.signal(sig, _handler)
    try:
        yield
        checkpoint()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        _pending.clear()


def received() -> int | None:
    """The first signal that arrived, if any."""
    return _pending[0] if _pending else None


def pending() -> bool:
    """Whether a signal arrived (for loops that stop on their own terms, like training)."""
    return bool(_pending)


def checkpoint() -> None:
    """Raise Interrupted if a signal arrived since the last call."""
    if _pending:
        raise Interrupted(_pending[0])


def with_checkpoint(callback: Callable[[int], None] | None) -> Callable[[int], None]:
    """A progress callback that first checks for signals (the coding loops' safe points)."""
    def report(n: int) -> None:
        checkpoint()
        if callback is not None:
            callback(n)

    return report
