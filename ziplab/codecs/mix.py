"""`mix`: context mixing over a pretrained neural model — adaptive context models learn this
file while the model brings what it knows of the language; a logistic mixer learns whom to
trust, bit by bit (engine: `mixing`). `--model none` is pure context mixing.

Range coding goes through constriction: one Bernoulli call per step at encode time (8 bits of
every lane), one per bit position at decode time. Measured on 20,000 x 64 bits, a call costs
~1 us plus ~0.1 us per bit, a small part of the model's own time, so no hand-written coder.

Levels (named below) trade memory and speed for context models. Payload: constriction's u32
words; header params: level, lanes, model, and for a neural model the same identity fields as
`nn` (weights, engine and quantisation digests), checked before any decoding work.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..errors import CorruptDataError, ParameterError
from ..hardware import restores_torch_state
from ..models.predictor import BOS
from .kernels import mixing
from .base import Codec, CodingOptions, CodingStats, Decoder, Encoder, Progress
from ..limits import MemoryNeed
from .lanes import MAX_LANES, ExhaustionGuard, LaneLayout, expect_work

NONE = "none"


class Level(NamedTuple):
    table_bits: int  # each of the 7 context tables holds 2^bits 4-byte counters
    mixer_rate: int  # mixer learning rate (error multiplier)
    sse: bool = True  # the two SSE stages after the mixer (off only in the benchmark's ablation)


#: mixer rate 10 was the best of 2, 6, 10, 16, 32 on the first 500,000 bytes of gutenberg dev.txt
LEVELS: dict[int, Level] = {
    1: Level(table_bits=20, mixer_rate=10),  # at most 28 MB of tables
    2: Level(table_bits=22, mixer_rate=10),  # 112 MB
    3: Level(table_bits=24, mixer_rate=10),  # 448 MB
}


def table_bits(level: int, n: int) -> int:
    """Tables no bigger than a block of n bytes can fill (8 bit contexts per byte, x2 headroom),
    so small files do not pay for clearing hundreds of megabytes."""
    return min(LEVELS[level].table_bits, max(16, n.bit_length() + 4))
PROGRESS_EVERY = 64


def _family():
    import constriction

    return constriction.stream.model.Bernoulli(perfect=False)


def _nn():
    from . import get

    return get("nn")


MODEL_KEYS = ("model", "model_sha256", "engine", "quant_sha256", "family", "size", "config")


class MixCodec(Codec):
    name = "mix"
    summary = "context mixing (orders 0-6, word, match) + a neural model's prediction, SSE; constriction"
    format_version = 2
    block_size = 16 << 20  # the context models learn across a whole block: big blocks compress better
    levels = (1, 3)
    default_level = 2
    #: the coder's probabilities are 16-bit, clamped to [1, 65535]: a bit costs >= 2.2e-5 bits,
    #: a byte >= 1.8e-4, so a payload byte holds at most ~45,000 bytes
    max_ratio = float(1 << 16)
    default_lanes = 64
    model_driven = True

    # ---- the coding interface -----------------------------------------------------------
    def open_encoder(self, level: int | None = None, options: CodingOptions = CodingOptions(),
                     progress: Progress | None = None, stats: CodingStats | None = None) -> Encoder:
        """One stream per block whatever `workers` says: the context models learn from all of it."""
        lanes = self.default_lanes if options.lanes is None else int(options.lanes)
        if not 1 <= lanes <= MAX_LANES:
            raise ParameterError(f"lanes must be between 1 and {MAX_LANES}")
        params: dict[str, Any] = {"level": self.check_level(level), "lanes": lanes}
        predictor = None
        if options.model is not None and str(options.model) == NONE:
            params["model"] = NONE
        else:
            nn = _nn()
            params.update(nn.model_params(None, CodingOptions(model=options.model)))
            predictor = nn.build_predictor(params)
            params.update(nn.describe(predictor))
        tables = Tables()
        return Encoder(params, lambda data: encode_block(data, params, predictor, stats, progress, tables), progress,
                       stats,
                       reports_progress=True)

    def open_decoder(self, params: dict, options: CodingOptions = CodingOptions(),
                     progress: Progress | None = None) -> Decoder:
        options.refuse(self.name, ("model", "workers"), " when decoding")
        predictor = None
        if params["model"] != NONE:
            predictor = _nn().decoding_predictor({k: params[k] for k in MODEL_KEYS}, options)
        tables = Tables()
        return Decoder(lambda payload, size: decode_block(payload, size, params, predictor, progress, tables), progress,
                       reports_progress=True)

    def decode_memory(self, params: dict, block_size: int, original_size: int) -> MemoryNeed:
        """Tables sized by the block (`table_bits`), the fixed SSE and match tables, the lanes'
        bytes and one copy of them, and the neural model with one state per lane."""
        n = min(block_size, original_size)
        lay = LaneLayout.of(max(n, 1), params["lanes"])
        shared = mixing.state_bytes(lay.L, lay.T, table_bits(params["level"], n)) + n + (1 << 20)
        predictor = 0
        if params["model"] != NONE:
            from ..models.budget import predictor_bytes

            predictor = predictor_bytes(params["family"], params["config"], lay.L)
        return MemoryNeed(shared=shared, predictor=predictor)

    # ---- header params ---------------------------------------------------------------------
    def params_schema(self) -> dict[str, Any]:
        from .schema import Int

        neural = {k: v for k, v in _nn().params_schema().items() if k in MODEL_KEYS}
        return {"level": Int(*self.levels), "lanes": Int(1, MAX_LANES), **neural}

    def check_params(self, params: Any) -> None:
        """With `model: none` only level, lanes and model may appear; with a model, all of them."""
        from ..errors import FormatError
        from .schema import check

        neural = not isinstance(params, dict) or params.get("model") != NONE
        check(params, self.params_schema(), required=None if neural else frozenset({"level", "lanes", "model"}))
        if not neural and len(params) != 3:
            raise FormatError("mix header names no model but carries a model's fields")
        if neural:
            from .nn import check_model_config

            check_model_config(params["family"], params["config"])


class Tables:
    """One file's mixing state, kept from block to block: each block starts from fresh tables
    (the format says so), but refilling the ones already allocated costs a fraction of
    allocating ~34 MB anew, so a file of many small blocks is not slow for that."""

    def __init__(self) -> None:
        self.state: mixing.State | None = None

    def fresh(self, lanes: int, steps: int, bits: int, neural: bool, sse: bool) -> mixing.State:
        self.state = mixing.new_state(lanes, steps, bits, neural, sse, reuse=self.state)
        return self.state


class _Lanes:
    """The lockstep layout of one block and the neural model's per-step distributions."""

    def __init__(self, n: int, params: dict, predictor: Any, tables: Tables | None = None) -> None:
        self.n = n
        self.layout = LaneLayout.of(n, params["lanes"])
        self.L, self.T = self.layout.L, self.layout.T
        level = LEVELS[params["level"]]
        self.rate = level.mixer_rate
        self.state = (tables or Tables()).fresh(self.L, self.T, table_bits(params["level"], n), predictor is not None,
                                                level.sse)
        self.predictor = predictor
        if predictor is not None:
            expect_work(predictor, n)
        self.model_state = predictor.start(self.L) if predictor is not None else None
        self.cums = np.zeros((self.L, 257), dtype=np.float64)
        self.prev = np.full(self.L, BOS, dtype=np.int64)
        self.starts = np.arange(self.L) * self.T  # where each lane's bytes begin in the block

    def step_model(self, t: int) -> np.ndarray:
        """Cumulative sums of the model's distribution for byte t of every lane (float64, summed
        in index order: the same bits on every machine, as the distribution itself is)."""
        if self.predictor is not None:
            probs, self.model_state = self.predictor.step(self.model_state, self.prev)
            np.cumsum(probs, axis=1, dtype=np.float64, out=self.cums[:, 1:])
        return self.cums

    def advance(self, t: int) -> None:
        self.prev = self.state.buf[self.starts + t].astype(np.int64)


@restores_torch_state
def encode_block(data: np.ndarray, params: dict, predictor: Any, stats: CodingStats | None = None,
                 progress: Progress | None = None, tables: Tables | None = None) -> bytes:
    import constriction

    n = len(data)
    if n == 0:
        return b""
    lanes = _Lanes(n, params, predictor, tables)
    lanes.state.buf[:n] = data
    family = _family()
    encoder = constriction.stream.queue.RangeEncoder()
    p16 = np.zeros((8, lanes.L), dtype=np.int64)
    bits = np.zeros((8, lanes.L), dtype=np.int64)
    ideal = 0.0
    for t in range(lanes.T):
        k = lanes.layout.active(t)
        cums = lanes.step_model(t)
        mixing.encode_step(lanes.state, cums, t, k, lanes.rate, p16, bits)
        p = p16[:, :k].reshape(-1) / 65536.0
        b = bits[:, :k].reshape(-1)
        encoder.encode(b.astype(np.int32), family, p)
        if stats is not None:
            ideal -= float(np.log2(np.where(b == 1, p, 1.0 - p)).sum())
        lanes.layout.report(progress, t)
        lanes.advance(t)
    if stats is not None:
        stats.ideal_bits += ideal
        stats.steps += lanes.T
    return encoder.get_compressed().astype("<u4").tobytes()


@restores_torch_state
def decode_block(payload: bytes, n: int, params: dict, predictor: Any,
                 progress: Progress | None = None, tables: Tables | None = None) -> np.ndarray:
    import constriction

    if n == 0:
        return np.zeros(0, dtype=np.uint8)
    if len(payload) % 4:
        raise CorruptDataError("mix payload is not a whole number of 32-bit words")
    lanes = _Lanes(n, params, predictor, tables)
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
