"""Substreams in forked copies of this process (`codecs.substream_forks`): results in order,
progress passed on, a child's failure raised here with its own type, a child that dies without
its result reported in one line, and an interrupt here kills the children."""

from __future__ import annotations

import functools
import os
import signal
import time
from pathlib import Path

import pytest

import ziplab
from ziplab.codecs import substream_forks, workers
from ziplab.codecs.predictive import PARALLEL_MIN_BYTES
from ziplab.errors import CorruptDataError, ZiplabError

from .test_lane_threads import TEXT
from .test_substream_threads import busy_job, interrupting_progress

pytestmark = pytest.mark.skipif(not substream_forks.forking(), reason="forks substreams only on Linux")


def test_results_come_back_in_order_with_every_progress_report():
    jobs = [lambda report, i=i: ([report(i) for _ in range(3)], i * i, os.getpid())[1:] for i in range(5)]
    seen = []
    results = substream_forks.run_forked(jobs, 3, seen.append)
    assert [square for square, _ in results] == [0, 1, 4, 9, 16]
    assert {pid for _, pid in results[0::3]} == {os.getpid()}  # this process's share: jobs 0 and 3
    assert os.getpid() not in {results[1][1], results[2][1]} and results[1][1] == results[4][1]
    assert sorted(n for n in seen if n) == sorted([1, 2, 3, 4] * 3)


def test_a_childs_failure_is_raised_here_with_its_type_and_stops_this_share():
    def failing(report):
        raise CorruptDataError("substream 1 is corrupt")

    def looping(report):
        for _ in range(10_000):
            report(1)
            time.sleep(0.001)
        return "never"

    start = time.perf_counter()
    with pytest.raises(CorruptDataError, match="substream 1 is corrupt"):
        substream_forks.run_forked([looping, failing], 2, None)
    assert time.perf_counter() - start < 5


def test_an_unpicklable_failure_still_arrives_as_one_line():
    class Local(Exception):
        pass

    def failing(report):
        raise Local("cannot travel")

    with pytest.raises(ZiplabError, match="Local: cannot travel"):
        substream_forks.run_forked([lambda report: 0, failing], 2, None)


def test_a_child_that_dies_is_reported_not_waited_for():
    def dying(report):
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(ZiplabError, match="ended without its result.*SIGKILL"):
        substream_forks.run_forked([lambda report: 0, dying], 2, None)


def test_an_interrupt_here_kills_the_children_and_reaps_them(monkeypatch):
    pids = []
    real_fork = substream_forks._fork

    def fork(jobs, share):
        child = real_fork(jobs, share)
        pids.append(child.pid)
        return child

    monkeypatch.setattr(substream_forks, "_fork", fork)
    job = functools.partial(busy_job, steps=100_000)
    with pytest.raises(KeyboardInterrupt):
        substream_forks.run_forked([job, job, job], 3, interrupting_progress([]))
    assert len(pids) == 2
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # already reaped: no zombie left behind


def test_nn_codes_through_forks_and_a_corrupt_substream_is_one_error(monkeypatch):
    data = (TEXT * (1 + 2 * PARALLEL_MIN_BYTES // len(TEXT)))[:2 * PARALLEL_MIN_BYTES + 999]
    monkeypatch.setattr(workers, "pool", lambda n: pytest.fail("a worker process was asked for"))
    blob = ziplab.compress(data, "nn", lanes=16, workers=2)
    assert ziplab.decompress(blob, workers=2) == data
    assert ziplab.compress(data, "nn", lanes=16, workers=1) == blob
    bad = bytearray(blob)
    bad[len(bad) // 2 + 200] ^= 0x40  # in the second substream's words
    with pytest.raises((CorruptDataError, ZiplabError)):
        ziplab.decompress(bytes(bad), workers=2)


@pytest.mark.parametrize("codec, options", [("nn", {"lanes": 16}), ("mix", {"level": 1, "model": "none", "lanes": 8})],
                         ids=["nn", "mix"])
def test_ctrl_c_stops_a_forked_decode_and_leaves_no_process_or_file(tmp_path, codec, options):
    import subprocess
    import sys

    data = (TEXT * (1 + 600_000 // len(TEXT)))[:600_000]
    options = dict(options)
    (tmp_path / "a.zl").write_bytes(ziplab.compress(data, codec, options.pop("level", None), workers=2, **options))
    p = subprocess.Popen([sys.executable, "-m", "ziplab", "-d", "-q", "--workers", "2", "a.zl"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while not list(tmp_path.glob(".*.part")) and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    children = Path(f"/proc/{p.pid}/task/{p.pid}/children")
    while p.poll() is None and time.time() < deadline and not children.read_text().split():
        time.sleep(0.02)
    assert children.read_text().split(), "no substream was forked"
    time.sleep(0.3)  # the child is decoding
    os.killpg(p.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the parent and its child alike
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and b"Traceback" not in err, err[-800:]
    assert sorted(q.name for q in tmp_path.iterdir()) == ["a.zl"]
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.killpg(p.pid, 0)  # nothing of the group is left running
