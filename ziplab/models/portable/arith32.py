"""Engine v3's arithmetic: float32 basic operations, no tables, loops a compiler vectorises.

v2 does a step's non-product work in float64, with the LSTM's sigmoid read from a 64 KB table
and exp from two. Those gathers were about a third of a step. v3 keeps v2's rule (IEEE basic
operations only: + - * /, comparisons, conversions, in a fixed order, no fast-math, so no FMA
contraction and no reassociation) and changes two things:

- **float32** throughout (the models were trained in float32): twice the values per vector
  register, half the memory traffic;
- **no tables**: tanh is a rational function of x² on a clamped range, exp is 2^n · 2^f with
  2^f a polynomial and 2^n built from its IEEE bit pattern. Everything is elementwise, so every
  loop vectorises without gathers.

Sums and maxima that would otherwise be one long sequential chain are *defined* over eight
interleaved partial results combined in a fixed tree (`sum8`, `max8`): the order is part of the
definition, so a compiler that vectorises them computes the same bits as one that does not.

The kernels are compiled with numba's `error_model="numpy"`: a float division by zero gives
IEEE's result instead of raising, which removes the branch that kept division loops scalar. No
division here can see a zero (every divisor is ≥ 1 or a positive scale).

The constants were fitted here (least squares on Chebyshev nodes, float64) and rounded to
float32; they are part of the engine's definition and never change:

- `tanh32`: x·P(x²)/Q(x²), |x| clamped to 9, result clamped to [-1, 1]; within 3.4e-7 of tanh.
- `exp2_frac`: 2^f for f in (-1, 0], degree 6; within 2.1e-7 relative.
"""

from __future__ import annotations

import numba as nb
import numpy as np

f32 = np.float32

# tanh(x) ~ x * P(x^2) / Q(x^2) on |x| <= TANH_CLAMP
TP0, TP1, TP2, TP3, TP4 = f32(9.9999994e-01), f32(1.3384770e-01), f32(3.5002711e-03), f32(2.0695050e-05), f32(1.3489846e-08)
TQ1, TQ2, TQ3, TQ4 = f32(4.6718073e-01), f32(2.5894197e-02), f32(3.2936831e-04), f32(7.8285206e-07)
TANH_CLAMP = f32(9.0)
# 2^f ~ E0 + f (E1 + f (E2 + ...)) on f in (-1, 0]
E0, E1, E2, E3 = f32(1.0), f32(6.9314700e-01), f32(2.4022397e-01), f32(5.5489421e-02)
E4, E5, E6 = f32(9.5770117e-03), f32(1.2730518e-03), f32(1.0851119e-04)
LOG2E32 = f32(1.4426950408889634)
#: exp arguments are clamped here: 2^-120 is a normal float32, so 2^n needs no subnormal path
EXP2_MIN = f32(-120.0)
ZERO, HALF, ONE = f32(0.0), f32(0.5), f32(1.0)
#: v3 quantises activations per row to [-ACT_MAX, ACT_MAX] (int8), as v2 does; v4 to
#: [-ACT_MAX7, ACT_MAX7] (7 bits: see `lstm`), otherwise the same arithmetic
ACT_MAX = f32(127.0)
ACT_MAX7 = f32(63.0)
_ABS32 = np.int32(0x7FFFFFFF)

_jit = nb.njit(cache=True, nogil=True, error_model="numpy")


@_jit
def tanh32(x):
    """tanh for a float32: the rational function on the clamped argument, then clamped to ±1."""
    v = min(max(x, -TANH_CLAMP), TANH_CLAMP)
    u = v * v
    p = TP0 + u * (TP1 + u * (TP2 + u * (TP3 + u * TP4)))
    q = ONE + u * (TQ1 + u * (TQ2 + u * (TQ3 + u * TQ4)))
    t = (v * p) / q
    return min(max(t, -ONE), ONE)


@_jit
def sigmoid32(x):
    """sigmoid(x) = 1/2 + tanh(x/2)/2 (x/2 and the halves are exact)."""
    return HALF + HALF * tanh32(HALF * x)


@_jit
def exp2_frac(f):
    """2^f for float32 f in (-1, 0]."""
    return E0 + f * (E1 + f * (E2 + f * (E3 + f * (E4 + f * (E5 + f * E6)))))


@_jit
def exp_split(d, frac, pow2bits) -> None:
    """First half of exp(d) for float32 d <= 0: y = max(d·log2 e, -120); n = trunc(y) (so
    n = ceil(y), an integer in [-120, 0]); frac[k] = 2^(y - n) from the polynomial,
    pow2bits[k] = the bit pattern of the float32 2^n. exp(d) = frac[k] * (pow2bits viewed as
    float32)[k] (`exp_rows32`). Two loops, so each is plain arithmetic a compiler vectorises."""
    for k in range(d.shape[0]):
        y = max(d[k] * LOG2E32, EXP2_MIN)
        n = np.int32(y)
        frac[k] = exp2_frac(y - f32(n))
        pow2bits[k] = (n + np.int32(127)) << np.int32(23)


@_jit
def exp_rows32(d, out, pow2bits) -> None:
    """out[k] = exp(d[k]) for float32 d <= 0 (`exp_split`); pow2bits is int32 scratch."""
    exp_split(d, out, pow2bits)
    pow2 = pow2bits.view(np.float32)
    for k in range(d.shape[0]):
        out[k] = out[k] * pow2[k]


@_jit
def sum8(x):
    """Sum of a float32 vector defined as eight interleaved partial sums s_q = x[q] + x[q+8] +
    ... (each left to right), combined as ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7)); the length is a
    multiple of 8 (the vocabulary: 256)."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = ZERO
    for i in range(0, x.shape[0], 8):
        s0 = s0 + x[i]
        s1 = s1 + x[i + 1]
        s2 = s2 + x[i + 2]
        s3 = s3 + x[i + 3]
        s4 = s4 + x[i + 4]
        s5 = s5 + x[i + 5]
        s6 = s6 + x[i + 6]
        s7 = s7 + x[i + 7]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@_jit
def max8(x):
    """Largest value of a float32 vector whose length is a multiple of 8 (finite values: the
    same value in any order; written, like sum8, as eight interleaved partial maxima)."""
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = x[0]
    for i in range(0, x.shape[0], 8):
        m0 = max(m0, x[i])
        m1 = max(m1, x[i + 1])
        m2 = max(m2, x[i + 2])
        m3 = max(m3, x[i + 3])
        m4 = max(m4, x[i + 4])
        m5 = max(m5, x[i + 5])
        m6 = max(m6, x[i + 6])
        m7 = max(m7, x[i + 7])
    return max(max(max(m0, m1), max(m2, m3)), max(max(m4, m5), max(m6, m7)))


@_jit
def _row_absmax_bits(x, n, mb):
    """max over x[:n] of |x| as the int32 bit pattern (sign cleared): for finite floats the same
    order as the magnitudes, and an integer maximum vectorises."""
    bits = x[:n].view(np.int32)
    for i in range(n):
        b = bits[i] & _ABS32
        mb = b if b > mb else mb
    return mb


@_jit
def _quantise_into(x, n, inv, out, qmax) -> None:
    """out[:n] = clamp(floor(x * inv + 1/2), ±qmax). `out` starts where the values go (a slice):
    an offset index instead kept the loop from vectorising (2x slower on the LSTM's pair rows)."""
    for i in range(n):
        v = np.floor(x[i] * inv + HALF)
        out[i] = np.int8(min(max(v, -qmax), qmax))


@_jit
def _step_of(mb, cell, qmax):
    """A row's quantisation step from its largest |x| (as bits; `cell` is int32 [1] scratch):
    m / qmax, or 1 for a zero row."""
    cell[0] = mb
    m = cell.view(np.float32)[0]
    return m / qmax if m > ZERO else ONE


@_jit
def quantise_rows32(x, out, scales, qmax=ACT_MAX) -> None:
    """float32 x [L, n] -> int8 out [L, n] in [-qmax, qmax] (float32 qmax: 127 for v3, 63 for
    v4) with each row's own step: v = floor(x / step + 1/2) computed as x * (1/step) + 1/2;
    scales[r] = the step."""
    L, n = x.shape
    cell = np.empty(1, dtype=np.int32)
    for r in range(L):
        s = _step_of(_row_absmax_bits(x[r], n, np.int32(0)), cell, qmax)
        scales[r] = s
        _quantise_into(x[r], n, ONE / s, out[r], qmax)


@_jit
def quantise_pair32(a, b, out, scales, qmax=ACT_MAX) -> None:
    """As quantise_rows32 over the rows of [a | b] (one step per row for both halves), without
    building the concatenation: an LSTM layer's input [h below, own h]."""
    L, na = a.shape
    nb_ = b.shape[1]
    cell = np.empty(1, dtype=np.int32)
    for r in range(L):
        mb = _row_absmax_bits(a[r], na, np.int32(0))
        s = _step_of(_row_absmax_bits(b[r], nb_, mb), cell, qmax)
        scales[r] = s
        inv = ONE / s
        _quantise_into(a[r], na, inv, out[r], qmax)
        _quantise_into(b[r], nb_, inv, out[r, na:], qmax)


@_jit
def dequant_rows32(acc, row_scale, col_scale, bias, out) -> None:
    """out[r, j] = float32(acc[r, j]) * row_scale[r] * col_scale[j] + bias[j], in that order."""
    L, n = acc.shape
    for r in range(L):
        s = row_scale[r]
        for j in range(n):
            out[r, j] = f32(acc[r, j]) * s * col_scale[j] + bias[j]


@_jit
def softmax32(logits, probs, keep_floor, add_floor, e, pow2bits) -> None:
    """float32 logits [L, V] -> probabilities e_j * ((1 - floor) / sum e) + floor / V, with
    e_j = exp(logit_j - max) (`exp_rows32`, `max8`, `sum8`); e and pow2bits are [V] scratch.
    keep_floor = float32(1 - floor) and add_floor = float32(floor / V) are the caller's."""
    L, V = logits.shape
    for r in range(L):
        m = max8(logits[r])
        d = probs[r]  # the output row holds the differences until the end (e must not alias them)
        for j in range(V):
            d[j] = logits[r, j] - m
        exp_rows32(d, e, pow2bits)
        keep = keep_floor / sum8(e)
        for j in range(V):
            probs[r, j] = e[j] * keep + add_floor


@_jit
def lstm_cell32(acc, row_scale, col_scale, base, rows, gain, c, h, pre) -> None:
    """One LSTM layer's cell over L lanes, float32, gates in torch's order i, f, g, o:
    z = float32(acc) * row_scale * col_scale + base[rows]; i, f, o = sigmoid(z), g = tanh(z),
    computed together as tanh(gain · z) with gain 1/2 for i, f, o and 1 for g, then
    sigmoid = 1/2 + tanh/2; c' = f c + i g; h = o tanh(c'). `pre` is [4H] scratch."""
    L, H = c.shape
    G = 4 * H
    for r in range(L):
        rs = row_scale[r]
        b = rows[r]
        for j in range(G):
            pre[j] = tanh32((f32(acc[r, j]) * rs * col_scale[j] + base[b, j]) * gain[j])
        for j in range(H):
            si = HALF + HALF * pre[j]
            sf = HALF + HALF * pre[H + j]
            cn = sf * c[r, j] + si * pre[2 * H + j]
            c[r, j] = cn
            pre[j] = tanh32(cn)
        for j in range(H):
            h[r, j] = (HALF + HALF * pre[3 * H + j]) * pre[j]
