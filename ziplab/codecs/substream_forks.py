"""Substreams coded in forked copies of this process, sharing the loaded model page for page
(`nn`, on Linux).

Threads of one process share one model (`substream_threads`), but every coding step hands the
GIL back and forth a dozen times between its kernels: on two cores the shipped LSTM's 64-lane
step went from ~300 µs alone to ~400 µs beside a second thread, and the coding loop to ~510.
A child forked once the predictor is built and its kernels are chosen starts coding at once —
no interpreter, no imports, no model to load — and steps at the speed of one thread alone (the
weights stay shared copy-on-write). The bytes are those of one thread: each substream is the
same calls on the same inputs, whichever process makes them.

Each child codes every `procs`-th substream and writes records to its pipe: progress counts,
then its results (pickled), or the exception that stopped it. The parent codes its own share,
reading the pipes at each of its progress reports, so progress, failures and interrupts reach
it within a few dozen steps: a child's failure is raised here (and stops the parent's share),
and any failure or interrupt in the parent kills the children before it propagates. A child
ignores SIGINT (the terminal sends it to the whole group; the parent decides) and never returns
into the caller's code: it leaves by `os._exit`.

Forking is used only on Linux, where it is the default start method and torch, numba and
numpy survive it; elsewhere `forking()` says no and the caller uses threads.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, NoReturn, Sequence

from ..errors import ZiplabError

#: records on a child's pipe: tag, then a count (progress) or a length (the pickle that follows)
RECORD = struct.Struct("<cQ")
PROGRESS, RESULT, FAILURE = b"p", b"r", b"e"
#: seconds between the parent's looks at its children once its own share is done
POLL_SECONDS = 0.1
#: whether substreams may go to forked processes on this platform (tests switch it off)
FORK = sys.platform.startswith("linux") and hasattr(os, "fork")

Job = Callable[[Callable[[int], None] | None], Any]


def forking() -> bool:
    """Whether `run_forked` can run here (else the caller codes the substreams on threads)."""
    return FORK


def run_forked(jobs: Sequence[Job], procs: int, progress: Callable[[int], None] | None) -> list[Any]:
    """job(report) for every job, in `procs` processes (this one and procs - 1 forked children,
    each taking every procs-th job); results in order. Results must pickle."""
    procs = max(1, min(procs, len(jobs)))
    shares = [list(range(c, len(jobs), procs)) for c in range(procs)]
    children: list[_Child] = []
    try:
        for share in shares[1:]:
            children.append(_fork([jobs[i] for i in share], share))

        def report(n: int) -> None:
            if progress is not None:
                progress(n)
            for child in children:
                child.drain(progress)

        results = {i: jobs[i](report) for i in shares[0]}
        while not all(child.finished for child in children):
            waiting = [child.fd for child in children if not child.finished]
            select.select(waiting, [], [], POLL_SECONDS)
            report(0)  # the caller's progress is also its safe point for signals
        for child in children:
            results.update(zip(child.share, child.results))
        return [results[i] for i in range(len(jobs))]
    finally:
        for child in children:
            child.close()


@dataclass
class _Child:
    """The parent's end of one forked child: its pipe, what has arrived, and its results."""

    pid: int
    fd: int
    share: list[int]
    buf: bytearray = field(default_factory=bytearray)
    results: list[Any] | None = None
    eof: bool = False
    reaped: bool = False

    @property
    def finished(self) -> bool:
        return self.results is not None

    def drain(self, progress: Callable[[int], None] | None) -> None:
        """Read what the child has written so far; pass its progress on, keep its results, raise
        its failure (or a ZiplabError if it died without saying why)."""
        while not self.eof:
            try:
                chunk = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                self.eof = True
            self.buf += chunk
        while len(self.buf) >= RECORD.size:
            tag, value = RECORD.unpack_from(self.buf)
            if tag == PROGRESS:
                del self.buf[:RECORD.size]
                if progress is not None:
                    progress(value)
                continue
            end = RECORD.size + value
            if len(self.buf) < end:
                break
            blob = bytes(self.buf[RECORD.size:end])
            del self.buf[:end]
            if tag == RESULT:
                self.results = pickle.loads(blob)
                return
            raise pickle.loads(blob)
        if self.eof and self.results is None:
            raise ZiplabError(f"a coding process ended without its result ({self._status()})")

    def _status(self) -> str:
        _, status = os.waitpid(self.pid, 0)
        self.reaped = True
        if os.WIFSIGNALED(status):
            return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
        return f"exit status {os.WEXITSTATUS(status)}"

    def close(self) -> None:
        """Stop the child if it is still coding, reap it and close its pipe."""
        if not self.reaped:
            if not self.finished:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            os.waitpid(self.pid, 0)
            self.reaped = True
        os.close(self.fd)


def _fork(jobs: list[Job], share: list[int]) -> _Child:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected; its results are checked
        os.close(read)
        _child(jobs, write)
    os.close(write)
    os.set_blocking(read, False)
    return _Child(pid, read, share)


def _child(jobs: list[Job], fd: int) -> NoReturn:  # pragma: no cover - runs in the forked child
    """Run the jobs, write their results (or what stopped them) and leave without returning into
    the caller: no atexit handlers, no flushing of buffers the parent also holds."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                signal.signal(sig, signal.SIG_DFL)
        torch = sys.modules.get("torch")
        if torch is not None and torch.get_num_threads() != 1:
            torch.set_num_threads(1)
        results = [job(lambda n: _write(fd, RECORD.pack(PROGRESS, n))) for job in jobs]
        blob = pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL)
        _write(fd, RECORD.pack(RESULT, len(blob)) + blob)
        code = 0
    except BaseException as exc:  # noqa: BLE001 - every failure goes to the parent
        try:
            blob = _picklable(exc)
            _write(fd, RECORD.pack(FAILURE, len(blob)) + blob)
        except BaseException:  # noqa: BLE001 - the parent then reports an ending without results
            pass
    finally:
        os._exit(code)


def _picklable(exc: BaseException) -> bytes:
    """The exception pickled, or (if it does not survive pickling) a ZiplabError saying what it was."""
    try:
        blob = pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(blob)
        return blob
    except Exception:  # noqa: BLE001
        return pickle.dumps(ZiplabError(f"a coding process failed: {type(exc).__name__}: {exc}"))


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
