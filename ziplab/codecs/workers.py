"""Worker processes for the model-driven codecs: pools that report progress as they go and stop
at once when the parent is interrupted.

Each pool's workers share two things with the parent: a counter of bytes coded (the parent
polls it to drive its progress bar) and a stop flag (set when the parent is interrupted or a
job fails; a worker checks it at every progress report, a few dozen coding steps apart, and
abandons its job). Workers ignore SIGINT: Ctrl-C reaches the whole process group, and only the
parent decides what happens then.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

#: seconds between the parent's looks at its workers (progress, signals)
POLL_SECONDS = 0.1


class Cancelled(Exception):
    """Raised inside a worker whose parent asked it to stop."""


@dataclass
class Pool:
    executor: ProcessPoolExecutor
    stop: Any  # multiprocessing.Event
    done: Any  # multiprocessing.Value('q'): bytes coded by the current run's jobs


# pragma: no mutate start
# (process plumbing: a mutant here hangs worker pools until the campaign's timeout; the
# multi-process round trips in test_hardening and test_portable cover it)
_pools: dict[int, Pool] = {}
_pools_owner = os.getpid()
#: in a worker process: the parent's stop flag and progress counter
_shared: dict[str, Any] = {}


def _init_worker(stop: Any, done: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _shared.update(stop=stop, done=done)


def worker_progress(n: int) -> None:
    """A coding loop's progress callback inside a worker: count the bytes, stop if asked (a job
    run outside a pool, as tests do, has no parent to tell)."""
    if not _shared:
        return
    if _shared["stop"].is_set():
        raise Cancelled("stopped by the parent process")
    with _shared["done"].get_lock():
        _shared["done"].value += n


def pool(workers: int) -> Pool:
    """This process's pool of `workers` spawned processes (made once, kept for later blocks)."""
    global _pools_owner
    if _pools_owner != os.getpid():  # a forked child: the parent's pools are not its own
        _pools.clear()
        _pools_owner = os.getpid()
    if workers not in _pools:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        stop, done = ctx.Event(), ctx.Value("q", 0)
        executor = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(stop, done))
        _pools[workers] = Pool(executor, stop, done)
    return _pools[workers]


def run_jobs(workers: int, fn: Callable[[Any], Any], jobs: Sequence[Any],
             progress: Callable[[int], None] | None = None,
             local: Callable[[Callable[[int], None]], Any] | None = None) -> tuple[Any, list[Any]]:
    """fn(job) for every job on a pool of `workers` processes, while the calling process runs
    `local(report)` (its own share of the work, reporting its bytes through `report`); returns
    (what `local` returned, the jobs' results in order). `progress` hears the bytes coded here
    and in the workers as they go; if it raises (an interrupt), the workers are told to stop and
    this returns only once they have."""
    p = pool(workers)
    with p.done.get_lock():
        p.done.value = 0
    p.stop.clear()
    with _sigint_ignored():  # processes start here and inherit it: Ctrl-C mid-start-up is the parent's
        futures = [p.executor.submit(fn, job) for job in jobs]
    reported = 0

    def pull() -> None:
        nonlocal reported
        now = p.done.value
        if progress is not None:
            progress(now - reported)
        reported = now

    def report(n: int) -> None:
        if progress is not None:
            progress(n)
        pull()

    try:
        mine = local(report) if local is not None else None
        while True:
            _, pending = wait(futures, timeout=POLL_SECONDS, return_when=FIRST_EXCEPTION)
            pull()
            failed = [f for f in futures if f.done() and not f.cancelled() and f.exception() is not None]
            if failed:
                raise failed[0].exception()  # type: ignore[misc]
            if not pending:
                return mine, [f.result() for f in futures]
    except BaseException:
        p.stop.set()
        for f in futures:
            f.cancel()
        wait(futures)
        raise
    finally:
        p.stop.clear()


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while worker processes are started: an ignored signal stays ignored across
    exec, so a worker never turns a Ctrl-C into a traceback of its own, even before its
    initializer runs. (Outside the main thread signals cannot be changed: nothing to do.)"""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@atexit.register
def shutdown_pools() -> None:
    """Stop the worker processes (also at exit). A process that is itself a pool worker must call
    this before returning: multiprocessing joins its children before atexit handlers run."""
    for p in _pools.values():
        p.stop.set()
        p.executor.shutdown(cancel_futures=True)
    _pools.clear()
# pragma: no mutate end
