"""The predictive codecs' coding contract, pinned where the mutation campaign found it loose: the
ideal bits against an independent float64 recount, stats and progress reaching the caller, how
many worker processes a setting asks for (never a count read from the file), the per-substream
lane count, the model override when decoding, and the exact messages of refused headers."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest

import ziplab
from ziplab import codecs, container, limits
from ziplab.codecs.base import CodingOptions, CodingStats
from ziplab.codecs import lanes as lanes_mod, predictive
from ziplab.errors import FormatError, ModelMismatchError

from .conftest import SAMPLES

T1 = str(Path(__file__).resolve().parent / "data" / "golden" / "t1-golden.safetensors")
TEXT = (SAMPLES["text"] * 8)[: predictive.PARALLEL_MIN_BYTES + 5000]  # enough to reach the worker pool


class TwoLevel:
    """A predictor whose every distribution gives bytes 0..127 probability 0.003 and the rest an
    equal share: the ideal bits of a text are then known in closed form."""

    def start(self, lanes: int):
        probs = np.full((lanes, 256), (1 - 128 * np.float32(0.003)) / 128, dtype=np.float32)
        probs[:, :128] = np.float32(0.003)
        return probs

    def step(self, state, prev):
        return state, state


def test_ideal_bits_equal_a_float64_recount():
    data = np.frombuffer(b"abcdefgh" * 700, dtype=np.uint8)
    stats = CodingStats()
    lanes_mod.encode_lanes(TwoLevel(), data, 8, stats)
    want = -len(data) * math.log2(float(np.float32(0.003)))
    assert stats.ideal_bits == pytest.approx(want, rel=1e-12)  # float32 logs would be off by ~1e-7
    assert stats.steps == len(data) // 8


def test_stats_reach_the_caller_by_every_entry_point():
    """compress, compress_file and the encoder all fill the caller's CodingStats, with the same
    bits the lanes' coder counts for the same predictor."""
    data = SAMPLES["text"][:6000]
    by_compress, by_file = CodingStats(), CodingStats()
    ziplab.compress(data, "ctx", 2, lanes=4, stats=by_compress)
    container.compress_file(io.BytesIO(data), io.BytesIO(), "ctx", 2, options=CodingOptions(lanes=4), stats=by_file)
    impl = codecs.get("ctx")
    mine = CodingStats()
    encoder = impl.open_encoder(2, CodingOptions(lanes=4), stats=mine)
    assert encoder.stats is mine
    encoder.encode(np.frombuffer(data, dtype=np.uint8))
    direct = CodingStats()
    lanes_mod.encode_lanes(impl.build_predictor(encoder.params), np.frombuffer(data, dtype=np.uint8), 4, direct)
    assert direct.ideal_bits > 0
    for stats in (by_compress, by_file, mine):
        assert (stats.ideal_bits, stats.steps) == (direct.ideal_bits, direct.steps)


def test_progress_hears_coded_and_stored_blocks_of_a_predictive_codec():
    rng = np.random.default_rng(1)
    data = SAMPLES["text"][:4000] + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    heard: list[int] = []
    blob = ziplab.compress(data, "ctx", lanes=4, block_size=4000, progress=heard.append)
    assert sum(heard) == len(data)
    kinds = [blob[i] for i in _block_kinds(blob)]
    assert kinds == [container.CODED, container.STORED]  # one of each, or the test proves nothing
    heard.clear()
    assert ziplab.decompress(blob, progress=heard.append) == data and sum(heard) == len(data)


def _block_kinds(blob: bytes) -> list[int]:
    """Offsets of each block's kind byte."""
    src = io.BytesIO(blob)
    header = container.read_header(src)
    pos, out = header.header_size, []
    for _ in range(header.blocks):
        raw_len, pay_len, kind, _ = container.BLOCK.unpack(blob[pos:pos + container.BLOCK.size])
        out.append(pos + 8)
        pos += container.BLOCK.size + pay_len
    return out


# ---- worker processes --------------------------------------------------------------------------
class InlinePool:
    """Stands in for the process pool: runs the jobs here, and records the processes in all (the
    pool's, plus the calling one, which codes its share of the substreams)."""

    asked: list[int] = []

    @staticmethod
    def run_jobs(workers: int, fn, jobs, progress=None, local=None):
        InlinePool.asked.append(workers + 1)  # the calling process codes its share too
        mine = local(lambda n: None) if local is not None else None
        return mine, [fn(job) for job in jobs]


@pytest.fixture
def pool(monkeypatch):
    InlinePool.asked = []
    monkeypatch.setattr(predictive, "run_jobs", InlinePool.run_jobs)
    return InlinePool.asked


def test_one_worker_never_starts_a_pool(pool, monkeypatch):
    monkeypatch.setattr(limits, "cpu_count", lambda: 8)
    blob = ziplab.compress(TEXT, "ctx", 1, lanes=4, workers=1)
    assert pool == []
    two = ziplab.compress(TEXT, "ctx", 1, lanes=4, workers=2)
    assert pool == [2]
    pool.clear()
    assert ziplab.decompress(two, workers=1) == TEXT and pool == []
    assert ziplab.decompress(blob) == TEXT and pool == []  # one substream: nothing to share out


def test_compress_defaults_to_one_thread_per_substream_and_the_bytes_do_not_depend_on_it(pool, monkeypatch):
    """nn's default (2 substreams) is coded by 2 copies of this process sharing its model (forked
    on Linux, else threads) where there are 2 CPUs, by 1 where there is one, never in worker
    processes that load their own; -T 1 / -T 2 give the same bytes."""
    threads: list[int] = []
    for runner in ("run_threads", "run_forked"):
        real = getattr(predictive, runner)
        monkeypatch.setattr(predictive, runner,
                            lambda jobs, n, progress, real=real: threads.append(n) or real(jobs, n, progress))
    monkeypatch.setattr(predictive, "PARALLEL_MIN_BYTES", 1024)
    data = TEXT[:6000]
    monkeypatch.setattr(limits, "cpu_count", lambda: 8)
    default = ziplab.compress(data, "nn", lanes=4)
    assert threads == [2]
    monkeypatch.setattr(limits, "cpu_count", lambda: 1)
    assert ziplab.compress(data, "nn", lanes=4) == default and threads == [2]
    assert ziplab.compress(data, "nn", lanes=4, workers=1) == default and threads == [2]
    assert ziplab.compress(data, "nn", lanes=4, workers=2) == default and threads == [2, 2]
    assert ziplab.decompress(default) == data
    assert pool == []  # no worker process was asked for


def test_each_process_codes_its_share_of_the_substreams():
    assert predictive._share(2, 2) == ([0], [1])
    assert predictive._share(5, 2) == ([0, 2, 4], [1, 3])
    assert predictive._share(4, 3) == ([0, 3], [1, 2])
    assert predictive._share(3, 1) == ([0, 1, 2], [])
    assert predictive._processes(None, 4, 3) == 3 and predictive._processes(9, 4, 3) == 4


def test_decoding_workers_default_to_the_cpus_and_never_to_the_files_count(pool, monkeypatch):
    blob = ziplab.compress(TEXT, "ctx", 1, lanes=8, workers=4)
    pool.clear()
    monkeypatch.setattr(limits, "cpu_count", lambda: 8)
    assert ziplab.decompress(blob) == TEXT and pool == [4]  # one per substream, at most one per CPU
    pool.clear()
    monkeypatch.setattr(limits, "cpu_count", lambda: 3)
    assert ziplab.decompress(blob) == TEXT and pool == [3]
    pool.clear()
    assert ziplab.decompress(blob, workers=2) == TEXT and pool == [2]
    pool.clear()
    monkeypatch.setattr(limits, "cpu_count", lambda: 1)  # one CPU: one process
    assert ziplab.decompress(blob) == TEXT and pool == []


def test_decoding_workers_fit_the_memory_budget(pool, monkeypatch):
    """Each worker holds its own predictor and runtime: a budget for two gets two, not four."""
    blob = ziplab.compress(TEXT, "ctx", 1, lanes=8, workers=4)
    header = container.read_header(io.BytesIO(blob))
    need = container.decoding_need(header)
    monkeypatch.setattr(limits, "cpu_count", lambda: 8)
    pool.clear()
    assert ziplab.decompress(blob, memory_limit=need.total(2) + 1) == TEXT and pool == [2]
    pool.clear()
    assert ziplab.decompress(blob, memory_limit=need.total(1)) == TEXT and pool == []
    with pytest.raises(limits.MemoryLimitError, match="needs .* over the limit"):
        ziplab.decompress(blob, memory_limit=need.total(1) - 1)


def test_each_substream_codes_lanes_over_substreams_lanes():
    """lanes=2 over 2 substreams: one lane each (the file says 2 lanes in all)."""
    data = np.frombuffer(SAMPLES["text"][:3000], dtype=np.uint8)
    impl = codecs.get("ctx")
    encoder = impl.open_encoder(1, CodingOptions(lanes=2, workers=2))
    payload = encoder.encode(data)
    predictor = impl.build_predictor(encoder.params)
    halves = predictive.split_substreams(data, 2)
    assert payload == predictive.pack_substreams([lanes_mod.encode_lanes(predictor, h, 1) for h in halves])


# ---- decoding options and refused headers --------------------------------------------------------
def test_nn_decodes_with_the_model_the_user_points_to():
    data = SAMPLES["text"][:1500]
    blob = ziplab.compress(data, "nn", model=T1, lanes=4)
    assert ziplab.decompress(blob, model=T1) == data


def _reheader(blob: bytes, **params) -> bytes:
    """The same file with some header params replaced (a valid header CRC around them)."""
    src = io.BytesIO(blob)
    h = container.read_header(src)
    h.params = {**h.params, **params}
    return h.encode() + blob[h.header_size:]


def test_refused_predictive_headers_say_exactly_why():
    blob = ziplab.compress(SAMPLES["text"][:3000], "ctx", lanes=4, workers=2)
    with pytest.raises(FormatError) as info:
        ziplab.decompress(_reheader(blob, lanes=1))
    assert str(info.value) == "header parameters give a substream fewer than one lane"
    with pytest.raises(FormatError, match="threads"):
        ziplab.decompress(_reheader(blob, threads=2))  # coded single-threaded, always
    with pytest.raises(ModelMismatchError) as info:
        ziplab.decompress(_reheader(blob, fingerprint="0" * 32))
    assert str(info.value) == ("ctx: the model's output on the probe input differs from the encoder's "
                               "(different model, weights, library version or numerics); decoding would give garbage")
