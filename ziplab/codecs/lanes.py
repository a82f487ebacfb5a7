"""Lanes: a block coded as L contiguous segments that advance in lockstep, one predictor step and
one constriction call per step for all of them — the layout every model-driven codec (nn, ctx,
lm, mix) shares.

Lane i holds symbols [i*T, (i+1)*T) with T = ceil(n / L); L is a pure function of n and the
header's lane count (`lane_count`), so the decoder derives the same layout. Lanes that have run
out are fed nothing (only the first `active(t)` lanes code at step t) but keep their place in the
batch, so the batch shape stays fixed and the decoder, repeating exactly the encoder's calls,
sees bitwise identical probabilities.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import CorruptDataError
from ..hardware import restores_torch_state
from ..models.predictor import BOS, Predictor
from .base import CodingStats, Progress

#: a lane gets at least this many bytes, so small inputs are not shredded into cold starts
MIN_LANE_BYTES = 256
#: lanes per block (per substream for nn and ctx): one bound for every lane-coded codec
MAX_LANES = 4096
PROBE = b"ziplab fingerprint probe: It was the best of times, it was the worst of times.\x00\xff\n"
PROBE_STEPS = 8


def _family():
    import constriction

    return constriction.stream.model.Categorical(perfect=False)


def lane_count(n: int, lanes: int, min_lane: int = MIN_LANE_BYTES) -> int:
    """Lanes actually used for n symbols: a pure function of n, so the decoder derives it too."""
    return max(1, min(lanes, n // min_lane))


PROGRESS_EVERY = 64  # steps between progress calls


@dataclass(frozen=True)
class LaneLayout:
    """n bytes in L lanes of T = ceil(n / L) steps: `full` lanes run all T steps and, when
    `rem` > 0, one more runs `rem` steps. Closed forms, so a layout costs nothing whatever n."""

    n: int
    L: int
    T: int
    full: int
    rem: int

    @classmethod
    def of(cls, n: int, lanes: int, min_lane: int = MIN_LANE_BYTES) -> "LaneLayout":
        L = lane_count(n, lanes, min_lane)
        T = -(-n // L)
        full, rem = divmod(n, T)
        return cls(n, L, T, full, rem)

    def active(self, t: int) -> int:
        """Lanes still running at step t (they are the first ones)."""
        return self.full + (t < self.rem)

    def done(self, steps: int) -> int:
        """Bytes coded by the first `steps` steps."""
        return self.full * min(self.T, steps) + min(self.rem, steps)

    def report(self, progress: Callable[[int], None] | None, t: int) -> None:
        """Tell `progress` the bytes of the last PROGRESS_EVERY steps, after step t."""
        if progress is not None and ((t + 1) % PROGRESS_EVERY == 0 or t + 1 == self.T):
            progress(self.done(t + 1) - self.done(t + 1 - ((t % PROGRESS_EVERY) + 1)))


#: a range coder's state holds at most this many bits beyond the words it has read; a decoder
#: that has read every word and still decodes symbols worth more than this (plus slack for
#: quantisation) is decoding padding: the payload is truncated or corrupt
EXHAUSTED_SLACK_BITS = 1024.0


class ExhaustionGuard:
    """Catches a payload that ends long before its claimed size, after at most
    EXHAUSTED_SLACK_BITS of decoding past its end — not after the whole claimed block."""

    def __init__(self, what: str) -> None:
        self.what, self.bits = what, 0.0

    def check(self, decoder: Any, probs: np.ndarray) -> None:
        """After a step that decoded symbols of probability `probs` (any shape)."""
        if decoder.maybe_exhausted():
            self.past_end(probs)

    def past_end(self, probs: np.ndarray) -> None:
        """Count symbols of probability `probs` decoded after the payload's last word was read."""
        self.bits -= float(np.log2(np.maximum(probs, 2.0 ** -24), dtype=np.float64).sum())
        if self.bits > EXHAUSTED_SLACK_BITS:
            raise CorruptDataError(f"{self.what} payload ends before the data it claims: truncated or corrupt")


@restores_torch_state
def encode_lanes(predictor: Predictor, chunk: np.ndarray, lanes: int, stats: CodingStats | None = None,
                 progress: Progress | None = None, min_lane: int = MIN_LANE_BYTES, start: int = BOS) -> bytes:
    """Code `chunk` (bytes, or token ids for the `lm` codec: any integer dtype, kept as given)
    in lanes of at least `min_lane` symbols; `start` is fed before each lane's first symbol."""
    import constriction

    n = len(chunk)
    if n == 0:
        return b""
    lay = LaneLayout.of(n, lanes, min_lane)
    L, T = lay.L, lay.T
    expect_work(predictor, n)
    grid = np.zeros(L * T, dtype=chunk.dtype)  # one symbol of memory per coded symbol (plus one transient copy)
    grid[:n] = chunk
    grid = np.ascontiguousarray(grid.reshape(L, T).T)  # [T, L]: row t = byte t of every lane
    family = _family()
    encoder = constriction.stream.queue.RangeEncoder()
    state = predictor.start(L)
    prev = np.full(L, start, dtype=np.int64)
    ideal = 0.0  # -log2 of each coded symbol's probability, summed per step
    lane = np.arange(L)
    for t in range(T):
        probs, state = predictor.step(state, prev)
        k = lay.active(t)
        encoder.encode(grid[t, :k].astype(np.int32), family, probs[:k])
        if stats is not None:
            ideal -= float(np.log2(probs[lane[:k], grid[t, :k]], dtype=np.float64).sum())
        lay.report(progress, t)
        prev = grid[t]
    if stats is not None:
        stats.ideal_bits += ideal
        stats.steps += T
    return encoder.get_compressed().astype("<u4").tobytes()


def expect_work(predictor: Predictor, n: int) -> None:
    """Tell a predictor that can use it how many bytes are coming (it may pick faster kernels
    that cost a start-up); speed only, never the probabilities."""
    expect = getattr(predictor, "expect", None)
    if expect is not None:
        expect(n)


@restores_torch_state
def decode_lanes(predictor: Predictor, payload: bytes, n: int, lanes: int,
                 progress: Callable[[int], None] | None = None, min_lane: int = MIN_LANE_BYTES, start: int = BOS,
                 dtype: type = np.uint8) -> np.ndarray:
    """The inverse of `encode_lanes` (same `min_lane` and `start`); `dtype` holds the symbols."""
    import constriction

    if n == 0:
        return np.zeros(0, dtype=dtype)
    if len(payload) % 4:
        raise CorruptDataError("neural payload is not a whole number of 32-bit words")
    lay = LaneLayout.of(n, lanes, min_lane)
    L, T = lay.L, lay.T
    expect_work(predictor, n)
    grid = np.zeros((T, L), dtype=dtype)
    family = _family()
    guard = ExhaustionGuard("neural")
    lane = np.arange(L)
    try:
        decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
        state = predictor.start(L)
        prev = np.full(L, start, dtype=np.int64)
        for t in range(T):
            probs, state = predictor.step(state, prev)
            k = lay.active(t)
            grid[t, :k] = decoder.decode(family, probs[:k])
            guard.check(decoder, probs[lane[:k], grid[t, :k]])
            prev = grid[t]
            lay.report(progress, t)
    except (ValueError, RuntimeError, AssertionError) as exc:
        raise CorruptDataError(f"neural payload cannot be decoded: {exc}") from None
    return grid.T.reshape(-1)[:n]


@restores_torch_state
def fingerprint(predictor: Predictor, lanes: int) -> str:
    """Hash of the predictor's exact output on a fixed probe, at the coding batch shape.

    A different model, different weights or different numerics (library, thread count, CPU
    kernels) change it, so decoding can refuse up front instead of emitting garbage."""
    probe = np.frombuffer(PROBE, dtype=np.uint8).astype(np.int64)
    h = hashlib.sha256()
    state = predictor.start(lanes)
    prev = np.full(lanes, BOS, dtype=np.int64)
    for t in range(PROBE_STEPS):
        probs, state = predictor.step(state, prev)
        h.update(np.ascontiguousarray(probs, dtype=np.float32).tobytes())
        prev = np.roll(probe, t)[:lanes] if lanes <= len(probe) else np.resize(np.roll(probe, t), lanes)
    return h.hexdigest()[:32]
