"""One `mix` stream coded and decoded (a format-2/3 block, or a format-4 substream), and a
format-4 block's substreams coded at once (`encode_substreams`): the lanes, the tables a file
keeps between blocks, the range coder, the processes or threads.

Range coding: constriction's encoder, one Bernoulli call per step (8 bits of every lane). The
decoder is constriction's arithmetic in numba (`kernels.rangebits`), inside the mixing kernel:
decoding a step was 8 calls into constriction and 18 into the kernels, ~3.5 us each, a quarter of
the context models' time at 64 lanes; it is one call now.
"""

from __future__ import annotations

import numpy as np

from ..errors import CorruptDataError
from ..hardware import restores_torch_state
from ..models.predictor import BOS
from ..models.steps_ahead import StepsAhead
from .base import CodingStats, Progress
from .kernels import mixing, mixing_steps, rangebits
from .lanes import EXHAUSTED_SLACK_BITS, LaneLayout, expect_work
from .mix_levels import (
    Level,
    block_substreams,
    level_table,
    mixer_of,
    stream_params,
    table_bits,
)
from .predictive import (
    pack_substreams,
    split_substreams,
    substream_sizes,
    unpack_substreams,
)
from .substream_forks import forking, run_forked
from .substream_threads import run_threads


def _family():
    import constriction

    return constriction.stream.model.Bernoulli(perfect=False)



class Tables:
    """One file's mixing state, kept from block to block: each block starts from fresh tables
    (the format says so), but refilling the ones already allocated costs a fraction of
    allocating ~34 MB anew, so a file of many small blocks is not slow for that."""

    def __init__(self) -> None:
        self.state: mixing.State | None = None

    def fresh(self, lanes: int, steps: int, bits: int, neural: int, level: Level, mixer: int) -> mixing.State:
        self.state = mixing.new_state(lanes, steps, bits, neural, level.sse, reuse=self.state, engine=mixer,
                                      ablate=level.ablate)
        return self.state



def threaded(predictors: list, cpus: int, lanes: int) -> list:
    """Each model's lanes split over threads (at most `cpus`): the bytes do not depend on the
    count (`models.lane_threads`)."""
    from ..models.lane_threads import LaneThreads, thread_count

    threads = thread_count(cpus, lanes)
    return [LaneThreads(p, threads) for p in predictors] if threads > 1 else predictors


class _Lanes:
    """The lockstep layout of one block and the neural models' per-step distributions."""

    def __init__(self, n: int, params: dict, predictors: list, tables: Tables | None = None) -> None:
        self.n = n
        self.layout = LaneLayout.of(n, params["lanes"])
        self.L, self.T = self.layout.L, self.layout.T
        mixer = mixer_of(params)
        level = level_table(params)[params["level"]]
        self.rate = level.mixer_rate
        self.state = (tables or Tables()).fresh(self.L, self.T, table_bits(params["level"], n, mixer),
                                                len(predictors), level, mixer)
        self.predictors = predictors
        for predictor in predictors:
            expect_work(predictor, n)
        self.model_states = [p.start(self.L) for p in predictors]
        self.cums = np.zeros((max(1, len(predictors)), self.L, 257), dtype=np.float64)
        self.prev = np.full(self.L, BOS, dtype=np.int64)
        self.starts = np.arange(self.L) * self.T  # where each lane's bytes begin in the block

    def step_model(self, t: int) -> np.ndarray:
        """Cumulative sums of each model's distribution for byte t of every lane (float64, summed
        in index order: the same bits on every machine, as the distribution itself is)."""
        self.distributions(self.prev, self.cums)
        return self.cums

    def distributions(self, prev: np.ndarray, out: np.ndarray) -> None:
        """One step of every model from the lanes' previous bytes into out[j, lane, 1:]."""
        for j, predictor in enumerate(self.predictors):
            probs, self.model_states[j] = predictor.step(self.model_states[j], prev)
            mixing_steps.cumulative_rows(probs, out[j])

    def ahead(self, torch_threads: int) -> StepsAhead:
        """Encoding: the models' steps on a second thread, each one step ahead of the coder
        (`models.steps_ahead`). Their inputs are the block's own bytes, read from a copy of the
        buffer taken now: what `advance` would read after each step (coding writes only the
        same bytes back), so the steps are the sequential ones."""
        known = self.state.buf.copy()
        bos = np.full(self.L, BOS, dtype=np.int64)

        def compute(t: int, out: np.ndarray) -> None:
            self.distributions(bos if t == 0 else known[self.starts + t - 1].astype(np.int64), out)

        return StepsAhead(compute, self.T, self.cums, torch_threads)

    def advance(self, t: int) -> None:
        self.prev = self.state.buf[self.starts + t].astype(np.int64)


@restores_torch_state
def encode_block(data: np.ndarray, params: dict, predictors: list, stats: CodingStats | None = None,
                 progress: Progress | None = None, tables: Tables | None = None, ahead: bool = False) -> bytes:
    """`ahead`: the models step on a second thread, one step ahead (`_Lanes.ahead`): same bytes."""
    import constriction

    n = len(data)
    if n == 0:
        return b""
    lanes = _Lanes(n, params, predictors, tables)
    lanes.state.buf[:n] = data
    family = _family()
    encoder = constriction.stream.queue.RangeEncoder()
    p16 = np.zeros((8, lanes.L), dtype=np.int64)
    bits = np.zeros((8, lanes.L), dtype=np.int64)
    ideal = 0.0
    steps = lanes.ahead(torch_threads=1) if ahead and predictors else None  # coding's products: 1 thread each
    try:
        for t in range(lanes.T):
            k = lanes.layout.active(t)
            cums = lanes.step_model(t) if steps is None else steps.get(t)
            mixing_steps.encode_step(lanes.state, cums, t, k, lanes.rate, p16, bits)
            p = p16[:, :k].reshape(-1) / 65536.0
            b = bits[:, :k].reshape(-1)
            encoder.encode(b.astype(np.int32), family, p)
            if stats is not None:
                ideal -= float(np.log2(np.where(b == 1, p, 1.0 - p)).sum())
            lanes.layout.report(progress, t)
            if steps is None:
                lanes.advance(t)
    finally:
        if steps is not None:
            steps.close()
    if stats is not None:
        stats.ideal_bits += ideal
        stats.steps += lanes.T
    return encoder.get_compressed().astype("<u4").tobytes()


@restores_torch_state
def decode_block(payload: bytes, n: int, params: dict, predictors: list,
                 progress: Progress | None = None, tables: Tables | None = None) -> np.ndarray:
    """The range decoder runs inside the mixing kernel (`mixing_steps.decode_step`, `rangebits`): one
    compiled call per step decodes what constriction's encoder wrote."""
    if n == 0:
        return np.zeros(0, dtype=np.uint8)
    if len(payload) % 4:
        raise CorruptDataError("mix payload is not a whole number of 32-bit words")
    lanes = _Lanes(n, params, predictors, tables)
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    coder = rangebits.start(words)
    p16 = np.zeros(lanes.L, dtype=np.int64)
    bits = np.zeros(lanes.L, dtype=np.int64)
    past = np.zeros(1)
    for t in range(lanes.T):
        k = lanes.layout.active(t)
        cums = lanes.step_model(t)
        failed = mixing_steps.decode_step(lanes.state, cums, t, k, lanes.rate, coder, words, p16, bits, past,
                                    EXHAUSTED_SLACK_BITS)
        if failed == mixing_steps.BAD_DATA:
            raise CorruptDataError("mix payload cannot be decoded: invalid data")
        if failed:
            raise CorruptDataError("mix payload ends before the data it claims: truncated or corrupt")
        lanes.layout.report(progress, t)
        lanes.advance(t)
    return lanes.state.buf[:n].copy()  # the tables' buffer serves the next block


# ---- format 4: a block in substreams, coded at once -------------------------------------------
def encode_substreams(data: np.ndarray, params: dict, predictors: list, cpus: int, stats: CodingStats | None,
                      progress: Progress | None, pool: list[Tables]) -> bytes:
    """Payload: u8 S | S x u32 lengths | each substream's format-3 payload (`encode_block`).
    Up to `cpus` processes code the substreams; a core left over steps the models ahead
    (`StepsAhead`), and one process alone shares the lanes among threads (`threaded`)."""
    chunks = split_substreams(data, block_substreams(len(data), params))
    sub = stream_params(params)
    procs = _prepare(predictors, [len(c) for c in chunks], sub["lanes"], cpus)
    ahead = bool(predictors) and cpus >= 2 * procs
    models = threaded(predictors, cpus, sub["lanes"]) if procs == 1 else predictors

    def job(i: int, report: Progress | None) -> tuple[bytes, CodingStats | None]:
        part = CodingStats() if stats is not None else None
        tables = _tables(pool, i if procs > 1 else 0)
        return encode_block(chunks[i], sub, models, part, report, tables, ahead), part

    try:
        coded = _run([lambda report, i=i: job(i, report) for i in range(len(chunks))], procs, progress)
    finally:
        _release(models, predictors)
    for _, part in coded:
        if stats is not None and part is not None:
            stats.add(part)
    return pack_substreams([payload for payload, _ in coded])


def decode_substreams(payload: bytes, n: int, params: dict, predictors: list, cpus: int,
                      progress: Progress | None, pool: list[Tables]) -> np.ndarray:
    """The inverse of `encode_substreams`, on up to `cpus` processes."""
    streams = block_substreams(n, params)
    parts = unpack_substreams(payload, streams, "mix")
    sizes = substream_sizes(n, streams)
    sub = stream_params(params)
    procs = _prepare(predictors, sizes, sub["lanes"], cpus)
    models = threaded(predictors, cpus, sub["lanes"]) if procs == 1 else predictors

    def job(i: int, report: Progress | None) -> np.ndarray:
        return decode_block(parts[i], sizes[i], sub, models, report, _tables(pool, i if procs > 1 else 0))

    try:
        outs = _run([lambda report, i=i: job(i, report) for i in range(streams)], procs, progress)
    finally:
        _release(models, predictors)
    return np.concatenate(outs)


def _prepare(predictors: list, sizes: list[int], lanes: int, cpus: int) -> int:
    """Processes for these substreams (at most `cpus`, one per substream); before several start,
    each model's kernels are chosen here, once, for every lane count they will use, so that the
    forked copies inherit the choice instead of timing kernels side by side."""
    procs = max(1, min(cpus, len(sizes)))
    if procs > 1:
        for predictor in predictors:
            expect_work(predictor, sum(sizes))
            for count in sorted({LaneLayout.of(n, lanes).L for n in sizes}):
                predictor.start(count)
    return procs


def _run(jobs: list, procs: int, progress: Progress | None) -> list:
    """job(report) for each job: here, one after another, or in `procs` forked copies of this
    process (Linux), else threads — the same calls on the same inputs either way."""
    if procs <= 1:
        return [job(progress) for job in jobs]
    return (run_forked if forking() else run_threads)(jobs, procs, progress)


def _tables(pool: list[Tables], i: int) -> Tables:
    """Substream i's tables when substreams are coded at once (each process or thread its own),
    pool[0] when one process codes them in turn; kept for the file's next block."""
    while len(pool) <= i:
        pool.append(Tables())
    return pool[i]


def _release(models: list, predictors: list) -> None:
    """Stop the lane threads `threaded` started for one block: no thread outlives a block, so a
    later block can fork safely."""
    if models is not predictors:
        for model in models:
            model.close()


