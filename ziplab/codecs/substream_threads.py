"""Substreams coded on threads of one process, sharing one predictor (`nn`).

`nn` splits a block into substreams that are coded independently; worker processes each load the
model and import torch again, which costs a second or two per process before the first byte.
The portable engines keep every buffer a step writes in the step's own state and their numba
kernels and torch's products release the GIL, so threads of one process can code the
substreams at once with one copy of the model. The bytes are those of one thread: each
substream is the same calls on the same inputs.

Two things are shared and handled here: the kernel choice (made once, on this thread, before the
others start, for the lane count every substream uses: the threads then only re-check it, which
reads the weights) and torch's settings (this thread pins and restores them around all the
threads; each thread sets its own OpenMP count to one, since that count is per thread).
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

from ..hardware import torch_state_restored

class Stopped(Exception):
    """Raised by a thread's next progress report once another substream's thread failed or was
    interrupted: this one stops too."""


def run_threads(jobs: Sequence[Callable[[Callable[[int], None] | None], Any]], threads: int,
                progress: Callable[[int], None] | None) -> list[Any]:
    """job(report) for every job, `threads` at a time (this thread runs the first share), each
    reporting coded bytes through `report`; results in order. The first failure (or an
    interrupt raised by `progress`) stops the others at their next report and is raised here."""
    stop = threading.Event()
    lock = threading.Lock()

    def report(n: int) -> None:
        if stop.is_set():
            raise Stopped()
        if progress is not None:
            with lock:
                progress(n)

    def run(job: Callable) -> Any:
        torch = sys.modules.get("torch")
        if torch is not None and torch.get_num_threads() != 1:
            torch.set_num_threads(1)
        try:
            return job(report)
        except BaseException:
            stop.set()
            raise

    with torch_state_restored(), ThreadPoolExecutor(max_workers=max(1, threads - 1),
                                                    thread_name_prefix="ziplab-substream") as pool:
        mine = list(range(0, len(jobs), threads))
        futures = {i: pool.submit(run, job) for i, job in enumerate(jobs) if i not in mine}
        results: dict[int, Any] = {}
        failures: list[BaseException] = []
        try:  # an interrupt while waiting here stops the threads too (they stop at their next report)
            for i in mine:
                try:
                    results[i] = run(jobs[i])
                except Stopped:  # another thread failed first: its error is raised below
                    break
                except Exception as exc:  # noqa: BLE001 - raised below, the first one wins
                    failures.append(exc)
                    break
            for i, f in futures.items():
                try:
                    results[i] = f.result()
                except Stopped:
                    pass
                except Exception as exc:  # noqa: BLE001
                    failures.append(exc)
        except BaseException:
            stop.set()
            raise
        if failures:
            raise failures[0]
    return [results[i] for i in range(len(jobs))]
