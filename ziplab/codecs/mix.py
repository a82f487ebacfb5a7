"""`mix`: context mixing over a pretrained neural model — adaptive context models learn this
file while the model brings what it knows of the language; a logistic mixer learns whom to
trust, bit by bit (engine: `mixing`). `--model none` is pure context mixing.

Range coding goes through constriction: one Bernoulli call per step at encode time (8 bits of
every lane), one per bit position at decode time. Measured on 20,000 x 64 bits, a call costs
~1 us plus ~0.1 us per bit, a small part of the model's own time, so no hand-written coder.

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
from .kernels import mixing
from .base import Codec, CodingOptions, CodingStats, Decoder, Encoder, Progress
from ..limits import MemoryNeed
from .lanes import MAX_LANES, ExhaustionGuard, LaneLayout, expect_work

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


#: format 3 (mixer engine 3). Mixer rate 16 was the best of 6, 10, 16, 24, 32 on the first
#: 500,000 bytes of gutenberg dev.txt; the models per level come from the Pareto table in
#: benchmarks/results/mix.json (`pareto`)
LEVELS: dict[int, Level] = {
    1: Level(table_bits=20, mixer_rate=16, models=(FAST_MODEL,)),  # at most 48 MB of tables
    2: Level(table_bits=22, mixer_rate=16, models=(STRONG_MODEL,)),  # 192 MB
    # two models (l5 + l4) measured 1.5509 against l5 alone's 1.5469 at level 2: the weaker l4
    # costs more than it brings, so the strongest level is l5 with the biggest tables
    3: Level(table_bits=24, mixer_rate=16, models=(STRONG_MODEL,)),  # 768 MB
}
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
    format_version = 3
    older_versions = (2,)
    block_size = 16 << 20  # the context models learn across a whole block: big blocks compress better
    levels = (1, 3)
    default_level = 2
    #: the coder's probabilities are 16-bit, clamped to [1, 65535]: a bit costs >= 2.2e-5 bits,
    #: a byte >= 1.8e-4, so a payload byte holds at most ~45,000 bytes
    max_ratio = float(1 << 16)
    default_lanes = 64
    model_driven = True
    lane_threads = True

    # ---- the coding interface -----------------------------------------------------------
    def open_encoder(self, level: int | None = None, options: CodingOptions = CodingOptions(),
                     progress: Progress | None = None, stats: CodingStats | None = None) -> Encoder:
        """One stream per block (the context models learn from all of it); `workers` threads share
        each model's lanes where there are enough of them (`lane_threads.thread_count`), one per
        CPU by default — the bytes are the same at any count."""
        lanes = self.default_lanes if options.lanes is None else int(options.lanes)
        if not 1 <= lanes <= MAX_LANES:
            raise ParameterError(f"lanes must be between 1 and {MAX_LANES}")
        level = self.check_level(level)
        params: dict[str, Any] = {"level": level, "lanes": lanes, "mixer": MIXER}
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
        ahead = _cpus(options) > 1  # the models' steps on a core of their own (encoding only)
        predictors = _threaded(predictors, options, lanes)
        tables = Tables()
        return Encoder(params, lambda data: encode_block(data, params, predictors, stats, progress, tables, ahead),
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
        predictors = _threaded(predictors, options, int(params["lanes"]))
        tables = Tables()
        return Decoder(lambda payload, size: decode_block(payload, size, params, predictors, progress, tables),
                       progress, reports_progress=True)

    def decode_memory(self, params: dict, block_size: int, original_size: int) -> MemoryNeed:
        """Tables sized by the block (`table_bits`), the fixed SSE and match tables, the lanes'
        bytes and one copy of them, and the neural model with one state per lane."""
        from ..models.budget import predictor_bytes

        n = min(block_size, original_size)
        lay = LaneLayout.of(max(n, 1), params["lanes"])
        models = [f for f in (model_fields(params, j) for j in range(2)) if f is not None]
        mixer = mixer_of(params)
        shared = (mixing.state_bytes(lay.L, lay.T, table_bits(params["level"], n, mixer), mixer, len(models))
                  + n + (1 << 20))
        predictor = sum(predictor_bytes(f["family"], f["config"], lay.L) for f in models)
        return MemoryNeed(shared=shared, predictor=predictor)

    # ---- header params ---------------------------------------------------------------------
    def params_schema(self) -> dict[str, Any]:
        from .schema import Int

        neural = {k: v for k, v in _nn().params_schema().items() if k in MODEL_KEYS}
        second = {k + SECOND: v for k, v in neural.items()}
        return {"level": Int(*self.levels), "lanes": Int(1, MAX_LANES), "mixer": Int(MIXER, MIXER), **neural,
                **second}

    def check_params(self, params: Any) -> None:
        """Level, lanes and model always; `mixer` in format 3 headers; with a model, all of its
        fields; a second model's fields all or none (format 3 only)."""
        from ..errors import FormatError
        from .nn import check_model_config
        from .schema import check

        base = {"level", "lanes", "model"} | ({"mixer"} if isinstance(params, dict) and "mixer" in params else set())
        check(params, self.params_schema(), required=frozenset(base))
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


def _cpus(options: CodingOptions) -> int:
    """Threads coding may use: `-T` (default one per CPU), at most the CPUs."""
    cpus = options.resolved_limits().cpus
    return min(options.workers or cpus, cpus)


def _threaded(predictors: list, options: CodingOptions, lanes: int) -> list:
    """Each model's lanes split over threads (`-T`, default one per CPU): the bytes do not depend
    on the count (`models.lane_threads`)."""
    from ..models.lane_threads import LaneThreads, thread_count

    threads = thread_count(_cpus(options), lanes)
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
    import constriction

    if n == 0:
        return np.zeros(0, dtype=np.uint8)
    if len(payload) % 4:
        raise CorruptDataError("mix payload is not a whole number of 32-bit words")
    lanes = _Lanes(n, params, predictors, tables)
    family = _family()
    p16 = np.zeros(lanes.L, dtype=np.int64)
    guard = ExhaustionGuard("mix")
    try:
        decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
        for t in range(lanes.T):
            k = lanes.layout.active(t)
            cums = lanes.step_model(t)
            mixing.begin_byte(lanes.state, t, k)
            for bit in range(8):
                mixing.predict_bit(lanes.state, cums, bit, k, p16)
                got = decoder.decode(family, p16[:k] / 65536.0)
                if decoder.maybe_exhausted():
                    guard.past_end(np.where(got == 1, p16[:k], 65536 - p16[:k]) / 65536.0)
                mixing.update_bit(lanes.state, got.astype(np.int64), bit, k, lanes.rate)
            mixing.end_byte(lanes.state, t, k)
            lanes.layout.report(progress, t)
            lanes.advance(t)
    except (ValueError, RuntimeError, AssertionError) as exc:
        raise CorruptDataError(f"mix payload cannot be decoded: {exc}") from None
    return lanes.state.buf[:n].copy()  # the tables' buffer serves the next block


CODEC = MixCodec()
