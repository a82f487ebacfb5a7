"""constriction's queue range decoder for Bernoulli bits (`mix`), in numba: the arithmetic of
docs/FORMAT.md §7, so a step's eight bits of every lane decode inside one compiled call instead
of eight calls into constriction and sixteen into the mixing kernels (~3.5 µs each: a quarter of
the context models' time per step at 64 lanes). Files are still written by constriction's
encoder; tests/test_rangebits.py decodes its streams here and compares bit for bit.

State (`uint64[4]`): lower, range, point, the index of the next word. All arithmetic is on
unsigned 64-bit integers, modulo 2^64, as in constriction.
"""

from __future__ import annotations

import numpy as np
from numba import njit

LOWER, RANGE, POINT, POS = range(4)
PRECISION = 24
#: decode_bit's answer for data no encoder could have written (a quantile past 2^24)
INVALID = -1

_U24 = np.uint64(PRECISION)
_U32 = np.uint64(32)
_ONE24 = np.uint64(1 << PRECISION)
_ONE32 = np.uint64(1 << 32)


def start(words: np.ndarray) -> np.ndarray:
    """A decoder over `words` (uint32, as the payload holds them): the point is the first two
    words (one: shifted up; none: 0)."""
    n = len(words)
    point = 0
    if n >= 1:
        point = int(words[0]) << 32
    if n >= 2:
        point |= int(words[1])
    return np.array([0, (1 << 64) - 1, point, min(n, 2)], dtype=np.uint64)


@njit(cache=True, nogil=True)
def exhausted(state, words) -> bool:
    """Whether every word has been read into the point (constriction's `maybe_exhausted`)."""
    return state[POS] >= np.uint64(words.size)


@njit(cache=True, nogil=True)
def decode_bit(state, words, p16: int) -> int:
    """One bit whose P(1) is p16 / 65536, as Bernoulli(perfect=False) quantises it:
    P(0) = floor((65536 - p16) * 16777214 / 65536) + 1 units of 2^24, P(1) the rest."""
    lower = state[LOWER]
    rng = state[RANGE]
    point = state[POINT]
    scale = rng >> _U24
    quantile = (point - lower) // scale
    if quantile >= _ONE24:
        return INVALID
    p0 = np.uint64(((65536 - p16) * 16777214) // 65536 + 1)
    if quantile < p0:
        bit = 0
        rng = scale * p0
    else:
        bit = 1
        lower = lower + scale * p0
        rng = scale * (_ONE24 - p0)
    if rng < _ONE32:
        lower = lower << _U32
        rng = rng << _U32
        pos = state[POS]
        word = np.uint64(words[pos]) if pos < np.uint64(words.size) else np.uint64(0)
        point = (point << _U32) | word
        state[POS] = pos + np.uint64(1)
    state[LOWER] = lower
    state[RANGE] = rng
    state[POINT] = point
    return bit
