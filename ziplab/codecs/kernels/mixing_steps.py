"""A whole byte of every lane through the context-mixing engine (`mixing`), in one compiled call:
the encoder's schedule (`encode_step`) and the decoder's (`decode_step`, with the range decoder of
`rangebits` inside, so a decoded step costs one call instead of 26). Both follow the schedule of
`mixing`'s docstring: for each bit position every active lane is predicted, then coded, then
updated in lane order."""

from __future__ import annotations

import numpy as np
from numba import njit

from .mixing import begin_byte, end_byte, predict_bit, update_bit
from .rangebits import INVALID, decode_bit, exhausted


@njit(cache=True, nogil=True)
def encode_step(S, cums, t: int, active: int, lr: int, out_p, out_bits) -> None:
    """Encoder: all 8 bits of byte t of every active lane, on the decoder's schedule. Writes the
    16-bit probabilities and bits to out_p/out_bits [8, L]."""
    T = S.params[1]
    begin_byte(S, t, active)
    for k in range(8):
        for l in range(active):
            out_bits[k, l] = (S.buf[l * T + t] >> (7 - k)) & 1
        predict_bit(S, cums, k, active, out_p[k])
        update_bit(S, out_bits[k], k, active, lr)
    end_byte(S, t, active)


#: decode_step's answers besides 0 (the byte decoded)
BAD_DATA, PAST_END = 1, 2


@njit(cache=True, nogil=True)
def decode_step(S, cums, t: int, active: int, lr: int, coder, words, p16, bits, past, slack: float) -> int:
    """Decoder: all 8 bits of byte t of every active lane, on encode_step's schedule, read from
    the range decoder `coder` over `words` (`rangebits`) — one call per step. Once every word is
    read, -log2 of each decoded bit's probability is added to past[0]; past `slack` bits the
    payload is decoding padding (PAST_END). BAD_DATA: a quantile no encoder writes."""
    begin_byte(S, t, active)
    for k in range(8):
        predict_bit(S, cums, k, active, p16)
        for l in range(active):
            bit = decode_bit(coder, words, p16[l])
            if bit == INVALID:
                return BAD_DATA
            bits[l] = bit
        if exhausted(coder, words):
            for l in range(active):
                p = p16[l] if bits[l] == 1 else 65536 - p16[l]
                past[0] -= np.log2(max(p / 65536.0, 2.0 ** -24))
            if past[0] > slack:
                return PAST_END
        update_bit(S, bits, k, active, lr)
    end_byte(S, t, active)
    return 0


@njit(cache=True, nogil=True)
def cumulative_rows(probs, out) -> None:
    """out[l, k + 1] = out[l, k] + float64(probs[l, k]), out[l, 0] left as it is (0): the running
    sums numpy's cumsum makes along a row, in the same order, so the same bits — without its
    ~55 µs per 64 x 256 call (a strided pass with a dtype conversion), ~5% of a mix step."""
    L, V = probs.shape
    for l in range(L):
        src = probs[l]
        dst = out[l]
        total = 0.0
        for k in range(V):
            total += np.float64(src[k])
            dst[k + 1] = total
