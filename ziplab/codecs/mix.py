"""`mix`: context mixing over a pretrained neural model — adaptive context models learn this
file while the model brings what it knows of the language; a logistic mixer learns whom to
trust, bit by bit (engine: `mixing`). `--model none` is pure context mixing.

Format 4 cuts a block into substreams (two at every level; fewer for a small block), each coded
as a format-3 block of its own — its own tables, its own lanes, its own range coder — so that
forked copies of this process (threads where the platform does not fork) code them at once,
sharing the loaded model (`substream_forks`). The bytes depend on the header's counts only,
never on `-T`. Measured on 1 MiB of held-out text (l5, level 2, `benchmarks/results/mix.json`):
two substreams of 64 lanes compress *better* than one stream of 64 (the tables of a contiguous
half learn its statistics instead of those of 64 places at once) and code in about half the time
on two cores.

Range coding: constriction's encoder, one Bernoulli call per step (8 bits of every lane). The
decoder is constriction's arithmetic in numba (`kernels.rangebits`), inside the mixing kernel:
decoding a step was 8 calls into constriction and 18 into the kernels, ~3.5 us each, a quarter of
the context models' time at 64 lanes; it is one call now.

Levels (named below) trade memory, speed and neural models: each level of format 3 mixes the
shipped models its row names (`--model` replaces them with one model, or `none`). Payload:
constriction's u32 words; header params: level, lanes, mixer engine (format 3: `mixer`), model,
and for each neural model the same identity fields as `nn` (weights, engine and quantisation
digests; the second model's with the suffix `_2`), checked before any decoding work. Format 2
files (mixer engine 2, one model) keep decoding with their own level table.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..errors import CorruptDataError, ParameterError
from ..hardware import restores_torch_state
from ..models.predictor import BOS
from ..models.steps_ahead import StepsAhead
from .kernels import mixing, rangebits
from .base import Codec, CodingOptions, CodingStats, Decoder, Encoder, Progress
from ..limits import MemoryNeed
from .lanes import EXHAUSTED_SLACK_BITS, MAX_LANES, LaneLayout, expect_work
from .predictive import MAX_STREAMS as MAX_SUBSTREAMS
from .predictive import pack_substreams, split_substreams, substream_sizes, unpack_substreams
from .substream_forks import forking, run_forked
from .substream_threads import run_threads

NONE = "none"


#: the shipped models the levels mix (ziplab/models/shipped/NAME.safetensors)
FAST_MODEL = "l4-gutenberg"
STRONG_MODEL = "l5-gutenberg-large"


class Level(NamedTuple):
    table_bits: int  # each context table holds 2^bits 4-byte counters
    mixer_rate: int  # mixer learning rate (error multiplier)
    sse: bool = True  # the two SSE stages after the mixer (off only in the benchmark's ablation)
    models: tuple[str, ...] = ()  # format 3: the shipped models mixed unless --model says otherwise
    ablate: int = 0  # engine-3 parts left out (`mixing.NO_*`; only the benchmark's ablation sets it)
    substreams: int = 1  # format 4: a block's substreams, each with tables of its own (`block_substreams`)


#: formats 3 and 4 (mixer engine 3). Mixer rate 16 was the best of 6, 10, 16, 24, 32 on the first
#: 500,000 bytes of gutenberg dev.txt; the models per level come from the Pareto table in
#: benchmarks/results/mix.json (`pareto`). Tables are per substream: format 4 holds one set per
#: process that codes (two at most, at every level), format 3 one.
#: Two substreams of 64 lanes were chosen on a validation text (1 MiB of the Canterbury books
#: lcet10, plrabn12, alice29; l5, level 2): 1.7407 bpb against 1.7739 for one stream of 64 lanes;
#: 4 x 32 lanes 1.7464, 8 x 16 1.7461, 4 x 64 1.7492, 16 x 16 1.7720 (too little for each table)
LEVELS: dict[int, Level] = {
    1: Level(table_bits=20, mixer_rate=16, models=(FAST_MODEL,), substreams=2),  # at most 48 MB of tables each
    2: Level(table_bits=22, mixer_rate=16, models=(STRONG_MODEL,), substreams=2),  # 192 MB
    # two models (l5 + l4) measured 1.5509 against l5 alone's 1.5469 at level 2: the weaker l4
    # costs more than it brings, so the strongest level is l5 with the biggest tables
    3: Level(table_bits=24, mixer_rate=16, models=(STRONG_MODEL,), substreams=2),  # 768 MB
}
#: lanes of each substream unless --lanes says otherwise (--lanes counts those of all substreams)
LANES_PER_SUBSTREAM = 64
#: a block's substreams hold at least this many bytes: a smaller block is cut into fewer (a small
#: file is one substream), so fresh tables and a second process are paid for where they pay
SUBSTREAM_MIN_BYTES = 1 << 16
#: format 2 (mixer engine 2, one model): mixer rate 10 was the best of 2, 6, 10, 16, 32
LEVELS_V2: dict[int, Level] = {
    1: Level(table_bits=20, mixer_rate=10),  # at most 28 MB of tables
    2: Level(table_bits=22, mixer_rate=10),  # 112 MB
    3: Level(table_bits=24, mixer_rate=10),  # 448 MB
}
MIXER = 3  # the mixer engine new files are coded with


def level_table(params: dict) -> dict[int, Level]:
    return LEVELS if mixer_of(params) >= 3 else LEVELS_V2


def mixer_of(params: dict) -> int:
    """The mixer engine a header names: format 2 headers carry none (engine 2)."""
    return int(params.get("mixer", 2))


def table_bits(level: int, n: int, mixer: int = MIXER) -> int:
    """Tables no bigger than a block of n bytes can fill (8 bit contexts per byte, x2 headroom),
    so small files do not pay for clearing hundreds of megabytes."""
    table = LEVELS if mixer >= 3 else LEVELS_V2
    return min(table[level].table_bits, max(16, n.bit_length() + 4))
PROGRESS_EVERY = 64


def block_substreams(n: int, params: dict) -> int:
    """Substreams of an n-byte block: the header's count, fewer for a small block (format 4);
    formats 2 and 3 code a block as one stream (their headers carry no count)."""
    most = int(params.get("substreams", 1))
    return max(1, min(most, n // SUBSTREAM_MIN_BYTES))


def stream_params(params: dict) -> dict:
    """The params one substream is coded with: its share of the lanes (format 4)."""
    return {**params, "lanes": params["lanes"] // int(params.get("substreams", 1))}


def _family():
    import constriction

    return constriction.stream.model.Bernoulli(perfect=False)


def _nn():
    from . import get

    return get("nn")


MODEL_KEYS = ("model", "model_sha256", "engine", "quant_sha256", "family", "size", "config")
SECOND = "_2"  # suffix of the second model's header fields


def model_fields(params: dict, j: int) -> dict | None:
    """Model j's identity fields under their `nn` names (None when the header has no model j)."""
    suffix = "" if j == 0 else SECOND
    if params.get("model") == NONE or f"model{suffix}" not in params:
        return None
    return {k: params[k + suffix] for k in MODEL_KEYS}


class MixCodec(Codec):
    name = "mix"
    summary = "context mixing (orders 0-6, word, match) + a neural model's prediction, SSE; constriction"
    format_version = 4
    older_versions = (2, 3)
    block_size = 16 << 20  # the context models learn across a whole block: big blocks compress better
    levels = (1, 3)
    default_level = 2
    #: the coder's probabilities are 16-bit, clamped to [1, 65535]: a bit costs >= 2.2e-5 bits,
    #: a byte >= 1.8e-4, so a payload byte holds at most ~45,000 bytes
    max_ratio = float(1 << 16)
    model_driven = True
    lane_threads = True  # format 2/3 (one stream per block): threads share each model's lanes

    # ---- the coding interface -----------------------------------------------------------
    def open_encoder(self, level: int | None = None, options: CodingOptions = CodingOptions(),
                     progress: Progress | None = None, stats: CodingStats | None = None) -> Encoder:
        """Each block in the level's substreams (`block_substreams`; no more than the lanes),
        coded at once by up to `workers` processes (default: one per CPU) — the bytes are the same
        at any count. `--engine` naming an older engine writes format 3 (one stream per block, 64
        lanes by default), which the ziplab versions that wrote that engine decode."""
        level = self.check_level(level)
        if options.lanes is not None and not 1 <= int(options.lanes) <= MAX_LANES:
            raise ParameterError(f"lanes must be between 1 and {MAX_LANES}")
        params: dict[str, Any] = {"level": level, "mixer": MIXER}
        specs = LEVELS[level].models if options.model is None else (str(options.model),)
        predictors = []
        if specs == (NONE,):
            if options.engine is not None:
                raise ParameterError("mix: --engine names a model's engine, and this level codes without a model")
            params["model"] = NONE
        nn = _nn()
        for j, spec in enumerate(s for s in specs if s != NONE):
            fields = nn.model_params(None, CodingOptions(model=spec, engine=options.engine))
            predictor = nn.build_predictor(fields)
            fields.update(nn.describe(predictor))
            params.update({k + (SECOND if j else ""): v for k, v in fields.items()})
            predictors.append(predictor)
        cpus = _cpus(options)
        if options.engine is not None and _older_engine(params):
            params["lanes"] = LANES_PER_SUBSTREAM if options.lanes is None else int(options.lanes)
            models, tables = _threaded(predictors, cpus, params["lanes"]), Tables()
            return Encoder(params, lambda data: encode_block(data, params, models, stats, progress, tables, cpus > 1),
                           progress, stats, reports_progress=True, version=3)
        streams = LEVELS[level].substreams
        params["lanes"] = LANES_PER_SUBSTREAM * streams if options.lanes is None else int(options.lanes)
        params["substreams"] = min(streams, params["lanes"])  # --lanes 1: one stream of one lane
        pool: list[Tables] = []
        return Encoder(params, lambda data: encode_substreams(data, params, predictors, cpus, stats, progress, pool),
                       progress, stats, reports_progress=True)

    def open_decoder(self, params: dict, options: CodingOptions = CodingOptions(),
                     progress: Progress | None = None) -> Decoder:
        """`--model` stands in for the first model (a checkpoint moved since encoding); the second
        is found by its header name."""
        options.refuse(self.name, ("model", "workers"), " when decoding")
        predictors = []
        for j in range(2):
            fields = model_fields(params, j)
            if fields is not None:
                predictors.append(_nn().decoding_predictor(fields, options if j == 0 else CodingOptions()))
        cpus = _cpus(options)
        pool: list[Tables] = []
        if "substreams" in params:
            return Decoder(lambda payload, size: decode_substreams(payload, size, params, predictors, cpus, progress,
                                                                   pool),
                           progress, reports_progress=True)
        predictors = _threaded(predictors, cpus, int(params["lanes"]))
        tables = Tables()
        return Decoder(lambda payload, size: decode_block(payload, size, params, predictors, progress, tables),
                       progress, reports_progress=True)

    def decode_memory(self, params: dict, block_size: int, original_size: int) -> MemoryNeed:
        """Tables sized by a substream (`table_bits`), the fixed SSE and match tables, the lanes'
        bytes, and the neural model with one state per lane: held by each process that codes
        (format 4; one process codes every substream in turn with one set), besides the block
        and its copy. Formats 2/3: one stream, its tables held once."""
        from ..models.budget import predictor_bytes

        n = min(block_size, original_size)
        streams = block_substreams(n, params)
        sub = stream_params(params)
        part = -(-n // streams)
        lay = LaneLayout.of(max(part, 1), sub["lanes"])
        models = [f for f in (model_fields(params, j) for j in range(2)) if f is not None]
        mixer = mixer_of(params)
        tables = mixing.state_bytes(lay.L, lay.T, table_bits(params["level"], part, mixer), mixer, len(models))
        predictor = sum(predictor_bytes(f["family"], f["config"], lay.L) for f in models)
        if "substreams" not in params:
            return MemoryNeed(shared=tables + n + (1 << 20), predictor=predictor)
        return MemoryNeed(shared=2 * n + (1 << 20), predictor=tables + predictor, streams=streams)

    # ---- header params ---------------------------------------------------------------------
    def params_schema(self) -> dict[str, Any]:
        from .schema import Int

        neural = {k: v for k, v in _nn().params_schema().items() if k in MODEL_KEYS}
        second = {k + SECOND: v for k, v in neural.items()}
        return {"level": Int(*self.levels), "lanes": Int(1, MAX_LANES), "mixer": Int(MIXER, MIXER),
                "substreams": Int(1, MAX_SUBSTREAMS), **neural, **second}

    def check_params(self, params: Any) -> None:
        """Level, lanes and model always; `mixer` in format 3 headers; with a model, all of its
        fields; a second model's fields all or none (format 3 only)."""
        from ..errors import FormatError
        from .nn import check_model_config
        from .schema import check

        given = params if isinstance(params, dict) else {}
        base = {"level", "lanes", "model"} | {k for k in ("mixer", "substreams") if k in given}
        check(params, self.params_schema(), required=frozenset(base))
        if "substreams" in params:
            if "mixer" not in params:
                raise FormatError("mix header names substreams without a mixer engine")
            if params["lanes"] < params["substreams"]:
                raise FormatError("header parameters give a substream fewer than one lane")
        models = 0 if params["model"] == NONE else 1
        if models:
            missing = [k for k in MODEL_KEYS if k not in params]
            if missing:
                raise FormatError(f"header parameter {missing[0]!r} is missing")
            second = [k + SECOND for k in MODEL_KEYS if k + SECOND in params]
            if second and (len(second) != len(MODEL_KEYS) or "mixer" not in params):
                raise FormatError("mix header carries part of a second model's fields")
            models += bool(second)
        if len(params) != len(base) + len(MODEL_KEYS) * models - (1 if models else 0):
            raise FormatError("mix header names no model but carries a model's fields")
        for j in range(models):
            fields = model_fields(params, j)
            check_model_config(fields["family"], fields["config"])


    def model_sharing(self, params: dict) -> str:
        """Format 4: substreams in forked copies of this process; formats 2/3: lane threads."""
        return "forks" if "substreams" in params else "threads"

    def check_version_params(self, version: int, params: dict) -> None:
        """Format 4 headers count substreams; those of formats 2 and 3 cannot."""
        from ..errors import FormatError

        if ("substreams" in params) != (version >= 4):
            raise FormatError(f"a format {version} mix header {'lacks' if version >= 4 else 'cannot carry'} "
                              "the substream count")


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


def _older_engine(params: dict) -> bool:
    """Whether the first model runs an engine older than its family's newest (format 3 then)."""
    from ..models.portable import engines

    return params["engine"] != engines(params["family"])[1]


def _cpus(options: CodingOptions) -> int:
    """Threads coding may use: `-T` (default one per CPU), at most the CPUs."""
    cpus = options.resolved_limits().cpus
    return min(options.workers or cpus, cpus)


def _threaded(predictors: list, cpus: int, lanes: int) -> list:
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
            np.cumsum(probs, axis=1, dtype=np.float64, out=out[j, :, 1:])

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
            mixing.encode_step(lanes.state, cums, t, k, lanes.rate, p16, bits)
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
    """The range decoder runs inside the mixing kernel (`mixing.decode_step`, `rangebits`): one
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
        failed = mixing.decode_step(lanes.state, cums, t, k, lanes.rate, coder, words, p16, bits, past,
                                    EXHAUSTED_SLACK_BITS)
        if failed == mixing.BAD_DATA:
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
    (`StepsAhead`), and one process alone shares the lanes among threads (`_threaded`)."""
    chunks = split_substreams(data, block_substreams(len(data), params))
    sub = stream_params(params)
    procs = _prepare(predictors, [len(c) for c in chunks], sub["lanes"], cpus)
    ahead = bool(predictors) and cpus >= 2 * procs
    models = _threaded(predictors, cpus, sub["lanes"]) if procs == 1 else predictors

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
    models = _threaded(predictors, cpus, sub["lanes"]) if procs == 1 else predictors

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
    """Stop the lane threads `_threaded` started for one block: no thread outlives a block, so a
    later block can fork safely."""
    if models is not predictors:
        for model in models:
            model.close()


CODEC = MixCodec()
