"""nn's substreams on threads sharing one model (`codecs.substream_threads`; forked copies of the
process on Linux, `test_substream_forks`): the same bytes as one thread, no worker process
started, failures and interrupts stop every thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import ziplab
from ziplab.codecs import get, substream_forks, workers
from ziplab.codecs.predictive import PARALLEL_MIN_BYTES
from ziplab.codecs.substream_threads import run_threads

from .test_lane_threads import T1, TEXT


@pytest.mark.parametrize("fork", [False, True], ids=["threads", "forks"])
@pytest.mark.parametrize("model", [None, T1], ids=["shipped-lstm", "t1-transformer"])
def test_threads_give_one_threads_bytes_and_start_no_process(model, fork, monkeypatch):
    monkeypatch.setattr(substream_forks, "FORK", fork and substream_forks.FORK)
    data = (TEXT * (1 + 2 * PARALLEL_MIN_BYTES // len(TEXT)))[:2 * PARALLEL_MIN_BYTES + 1001]
    monkeypatch.setattr(workers, "pool", lambda n: pytest.fail("a worker process was asked for"))
    one = ziplab.compress(data, "nn", model=model, lanes=16, workers=1)
    two = ziplab.compress(data, "nn", model=model, lanes=16, workers=2)
    assert one == two
    assert ziplab.decompress(two, model=model, workers=2) == data == ziplab.decompress(two, model=model, workers=1)


def test_substreams_with_different_lane_counts_are_not_threaded():
    from ziplab.models import load_model

    nn = get("nn")
    assert nn._shared_model(load_model(None), [40, 4000], 16) is None  # a short substream gets fewer lanes
    assert nn._shared_model(load_model(None), [4000, 4000], 16) is not None
    assert get("ctx").steps_share_nothing is False


def test_a_failure_stops_the_other_threads_and_is_raised():
    started = threading.Event()

    def failing(report):
        started.wait(5)
        raise ValueError("substream 1 went wrong")

    def looping(report):
        started.set()
        for _ in range(10_000):
            report(1)
            threading.Event().wait(0.001)
        return "never"

    with pytest.raises(ValueError, match="substream 1"):
        run_threads([looping, failing], 2, None)


def interrupting_progress(calls: list, after: int = 5):
    """A progress callback that raises KeyboardInterrupt at its `after`-th call (a Ctrl-C)."""
    def progress(n):
        calls.append(n)
        if len(calls) == after:
            raise KeyboardInterrupt

    return progress


def busy_job(report, steps: int = 1000):
    """A substream that reports one byte a millisecond for `steps` steps."""
    for _ in range(steps):
        report(1)
        threading.Event().wait(0.001)
    return "done"


def test_an_interrupt_from_progress_stops_every_thread():
    calls = []
    with pytest.raises(KeyboardInterrupt):
        run_threads([busy_job, busy_job, busy_job], 2, interrupting_progress(calls))
    assert len(calls) < 50
    assert not any(t.name.startswith("ziplab-substream") for t in threading.enumerate())


def test_results_come_back_in_order():
    jobs = [lambda report, i=i: (report(i), i * i)[1] for i in range(5)]
    seen = []
    assert run_threads(jobs, 3, seen.append) == [0, 1, 4, 9, 16]
    assert sorted(seen) == [0, 1, 2, 3, 4]
