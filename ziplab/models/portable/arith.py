"""Arithmetic that gives the same bits on every CPU: the building blocks of portable inference.

Two rules make a computation reproducible on any x86-64 (with or without AVX2/AVX-512), ARM,
any thread count and any BLAS:

1. **Matrix products only over small integers.** Weights are int8 per output column, inputs are
   integers scaled per row, and every product and every partial sum stays below 2^24 in
   magnitude. Then an fp32 GEMM computes the exact integer result in *any* summation order, with
   or without FMA, blocked or not — the fast vendor BLAS is kept and its choices cannot matter.
2. **Everything else in float64 with IEEE basic operations only** (+ - * / sqrt, floor), in a
   fixed order, in numba kernels compiled without fast-math (so no reassociation and no FMA
   contraction). Those operations are correctly rounded by the IEEE standard, so they agree
   everywhere. Transcendentals (exp, tanh, erf, sin, cos) are *not* taken from libm or SIMD
   libraries, whose last bits differ between platforms; they are built here from basic
   operations and a 64-entry table computed with the `decimal` module (pure software).
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

#: products and partial sums of an exact GEMM stay strictly below this (fp32 has a 24-bit mantissa)
EXACT = 1 << 24
#: int8 weights: symmetric, per output column
WEIGHT_MAX = 127


def _pow2_fraction_table() -> np.ndarray:
    """2^(j/64) for j = 0..63, correctly rounded to float64 via 40-digit decimal arithmetic."""
    with localcontext() as ctx:
        ctx.prec = 40
        ln2 = Decimal(2).ln()
        return np.array([float((ln2 * j / 64).exp()) for j in range(64)], dtype=np.float64)


POW2_64 = _pow2_fraction_table()
LOG2E = 1.4426950408889634  # 1/ln 2 as float64 literals: the same constant everywhere
LN2 = 0.6931471805599453
TWO_PI = 6.283185307179586
HALF_PI = 1.5707963267948966


#: exact powers of two 2^k for k in [-POW2_BIAS, 1023], indexed k + POW2_BIAS
POW2_BIAS = 1100
POW2_INT = np.array([2.0**k for k in range(-POW2_BIAS, 1024)], dtype=np.float64)


@nb.njit(cache=True, nogil=True)
def _exp_parts(x: float) -> tuple[float, int]:
    """det_exp(x) as (m, k) with det_exp(x) = m * 2^k for x >= -700: the argument clamped to
    +-700, y = x log2 e split as n/64 + r, m = 2^(n/64 mod 1) from the table times a degree-5
    Taylor polynomial of e^(r ln 2) on |r ln 2| < 0.0055, k = n >> 6 (in [-1011, 1010])."""
    v = min(max(x, -700.0), 700.0)
    y = v * LOG2E
    n = math.floor(y * 64.0 + 0.5)
    r = y - n / 64.0
    z = r * LN2
    p = 1.0 + z * (1.0 + z * (0.5 + z * (1.0 / 6.0 + z * (1.0 / 24.0 + z * (1.0 / 120.0)))))
    ni = np.int64(n)
    return p * POW2_64[ni & 63], ni >> 6


@nb.njit(cache=True, nogil=True)
def det_exp(x: float) -> float:
    """exp(x) to ~1e-15 relative, deterministic (`_exp_parts`, times an exact power of two from
    POW2_INT). 0 below -700; above 700, exp(700). Written without branches (clamp, then select)
    so loops over it vectorise (`exp_rows`)."""
    m, k = _exp_parts(x)
    e = m * POW2_INT[k + POW2_BIAS]
    return e if x >= -700.0 else 0.0


#: sigmoid sampled every 1/SIG_RES on [-SIG_RANGE, SIG_RANGE] (computed with det_exp at import,
#: so identical everywhere); linear interpolation between samples is within 2e-7 of sigmoid.
SIG_RANGE = 16
SIG_RES = 256


@nb.njit(cache=True)
def _sigmoid_table() -> np.ndarray:
    n = 2 * SIG_RANGE * SIG_RES
    t = np.empty(n + 1, dtype=np.float64)  # lookups interpolate between t[i] and t[i + 1], i < n
    for i in range(n + 1):
        t[i] = det_sigmoid(i / SIG_RES - SIG_RANGE)
    return t


@nb.njit(cache=True, nogil=True)
def lut_sigmoid(x: float, table) -> float:
    u = (x + SIG_RANGE) * SIG_RES
    if u <= 0.0:
        return table[0]
    if u >= 2 * SIG_RANGE * SIG_RES:
        return table[2 * SIG_RANGE * SIG_RES]
    i = np.int64(u)
    f = u - i
    return table[i] + f * (table[i + 1] - table[i])


@nb.njit(cache=True, nogil=True)
def lut_sigmoid_rows(x, out) -> None:
    """out[k] = lut_sigmoid(x[k], SIGMOID_TABLE) for a 1-D x, bit for bit: the same operations,
    written without branches (clamps instead of early returns) so the compiler can vectorise the
    loop. At the clamps the interpolation gives the end samples exactly: f = 0 at the bottom, and
    at the top t[n-1] + 1 * (t[n] - t[n-1]) = t[n] (the difference is exact, Sterbenz). The
    table is the module's constant, not an argument: a constant cannot alias `out`, which is
    what lets the compiler gather from it in vector registers."""
    table = SIGMOID_TABLE
    n = 2 * SIG_RANGE * SIG_RES
    top = float(n)
    for k in range(x.shape[0]):
        u = min(max((x[k] + SIG_RANGE) * SIG_RES, 0.0), top)
        i = max(min(np.intp(u), n - 1), 0)
        f = u - i
        a = table[i]
        out[k] = a + f * (table[i + 1] - a)


@nb.njit(cache=True, nogil=True)
def exp_rows(x, out) -> None:
    """out[k] = det_exp(x[k]) over a 1-D x: a loop the compiler vectorises (det_exp has no branches)."""
    for k in range(x.shape[0]):
        out[k] = det_exp(x[k])


@nb.njit(cache=True, nogil=True)
def exp_rows_bits(x, out, bits) -> None:
    """out[k] = det_exp(x[k]), bit for bit, over a 1-D x (out must not be x; bits is int64
    scratch of x's length). det_exp's power of two 2^k is always a normal double (the argument
    is clamped, so k lies in [-1011, 1010]): built here from its IEEE bit pattern instead of read
    from POW2_INT, so only the 64-entry table is gathered. Same value, same operations on it."""
    for j in range(x.shape[0]):
        m, k = _exp_parts(x[j])
        out[j] = m
        bits[j] = (k + 1023) << 52
    pow2 = bits.view(np.float64)
    for j in range(x.shape[0]):
        e = out[j] * pow2[j]
        out[j] = e if x[j] >= -700.0 else 0.0


@nb.njit(cache=True, nogil=True)
def lut_tanh(x: float, table) -> float:
    return 2.0 * lut_sigmoid(2.0 * x, table) - 1.0


@nb.njit(cache=True, nogil=True)
def det_sigmoid(x: float) -> float:
    if x >= 0.0:
        return 1.0 / (1.0 + det_exp(-x))
    e = det_exp(x)
    return e / (1.0 + e)


@nb.njit(cache=True, nogil=True)
def det_tanh(x: float) -> float:
    a = abs(x)
    t = 1.0 - 2.0 / (det_exp(2.0 * a) + 1.0)
    if a < 0.01:  # 1 - 2/(e+1) cancels near 0; the series is exact enough there
        a2 = a * a
        t = a * (1.0 - a2 * (1.0 / 3.0 - a2 * (2.0 / 15.0)))
    return t if x >= 0.0 else -t


@nb.njit(cache=True, nogil=True)
def det_erf(x: float) -> float:
    """erf to ~1e-14: Taylor series below 2.5, continued fraction for erfc above (both from
    basic operations and det_exp)."""
    a = abs(x)
    if a < 2.5:
        a2 = a * a
        term = a
        total = a
        k = 0
        while True:
            k += 1
            term = -term * a2 / k
            add = term / (2 * k + 1)
            total += add
            if abs(add) < 1e-17 * abs(total) or k > 80:
                break
        r = total * 1.1283791670955126  # 2/sqrt(pi)
    elif a > 6.0:
        r = 1.0
    else:
        # erfc(a) = exp(-a^2)/sqrt(pi) * 1/(a + 1/2/(a + 1/(a + 3/2/(a + ...)))) (Lentz-free, 60 terms backward)
        f = a
        for k in range(60, 0, -1):
            f = a + (k / 2.0) / f
        r = 1.0 - det_exp(-a * a) / (1.7724538509055159 * f)
    return r if x >= 0.0 else -r


@nb.njit(cache=True, nogil=True)
def _sin_kernel(x: float) -> float:  # |x| <= pi/4
    x2 = x * x
    return x * (1.0 - x2 / 6.0 * (1.0 - x2 / 20.0 * (1.0 - x2 / 42.0 * (1.0 - x2 / 72.0 * (1.0 - x2 / 110.0 * (1.0 - x2 / 156.0 * (1.0 - x2 / 210.0)))))))


@nb.njit(cache=True, nogil=True)
def _cos_kernel(x: float) -> float:  # |x| <= pi/4
    x2 = x * x
    return 1.0 - x2 / 2.0 * (1.0 - x2 / 12.0 * (1.0 - x2 / 30.0 * (1.0 - x2 / 56.0 * (1.0 - x2 / 90.0 * (1.0 - x2 / 132.0 * (1.0 - x2 / 182.0 * (1.0 - x2 / 240.0)))))))


@nb.njit(cache=True, nogil=True)
def det_sincos(x: float) -> tuple[float, float]:
    """(sin x, cos x) for x in [0, 2*pi) to ~1e-15: quadrant reduction by exact multiples."""
    q = math.floor(x / HALF_PI + 0.5)
    r = x - q * HALF_PI
    s, c = _sin_kernel(r), _cos_kernel(r)
    k = np.int64(q) & 3
    if k == 0:
        return s, c
    if k == 1:
        return c, -s
    if k == 2:
        return -s, -c
    return -c, s


# ---- exact integer GEMMs ------------------------------------------------------------------
def quantize_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float [K, N] -> (int8-valued float32 [K, N], float64 scale [N]) with w ≈ q * scale.

    Only float64 elementwise operations (max, divide, round), so the result is the same on every
    machine for the same input weights."""
    w = np.asarray(w, dtype=np.float64)
    amax = np.abs(w).max(axis=0)
    scale = np.where(amax > 0, amax / WEIGHT_MAX, 1.0)
    q = np.clip(np.round(w / scale), -WEIGHT_MAX, WEIGHT_MAX)
    return np.ascontiguousarray(q, dtype=np.float32), scale.astype(np.float64)


def input_limit(q: np.ndarray) -> int:
    """Largest |integer input| for which x @ q is exact: (max column sum of |q|) * limit < 2^24."""
    colsum = np.abs(q.astype(np.int64)).sum(axis=0).max()
    return int((EXACT - 1) // max(int(colsum), 1))


#: clears a float64's sign bit
_ABS_BITS = np.int64(0x7FFFFFFFFFFFFFFF)


@intrinsic
def float_bits(typingctx, x):
    """A float64's IEEE bit pattern as an int64: a register reinterpretation, as a view of the
    array would give, without the view."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def bits_float(typingctx, b):
    """The float64 whose IEEE bit pattern is the int64 b (`float_bits` backwards)."""
    if b != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@nb.njit(cache=True, nogil=True, inline="always")
def row_step(src, r, off, n, limit):
    """`quantize_into`'s step for src[r, off:off+n] (a 2-D float64 array, indexed in place): the
    same maximum over sign-cleared bit patterns, the same division."""
    mb = np.int64(0)
    for i in range(n):
        b = float_bits(src[r, off + i]) & _ABS_BITS
        mb = b if b > mb else mb
    m = bits_float(mb)
    return m / limit if m > 0.0 else 1.0


@nb.njit(cache=True, nogil=True, inline="always")
def quantized(x, inv, lim):
    """`quantize_into`'s value for x with the step's reciprocal inv and the float limit lim."""
    return min(max(math.floor(x * inv + 0.5), -lim), lim)


@nb.njit(cache=True, nogil=True, inline="always")
def quantize_into(src, off, n, limit, dst, cell):
    """quantize_vector's work; `cell` is a 1-element int64 scratch array (callers that quantise
    many vectors pass one, instead of an allocation per vector). Inlined where it is called: as
    a call, the row views its callers pass cost atomic reference counts, and a t5 step makes
    thousands (quantize_rows 5.0 -> 3.6 us at 64 x 160).

    max |x| is taken over the IEEE bit patterns with the sign cleared: for finite doubles their
    order as int64 is their order as magnitudes, so it is the same maximum, and an integer max
    reduction vectorises where a float one may not. Clamps are min/max, not branches, for the
    same reason; every operation on the values is the one the scalar version did."""
    bits = src[off:off + n].view(np.int64)
    mb = np.int64(0)
    for i in range(n):
        b = bits[i] & _ABS_BITS
        mb = b if b > mb else mb
    cell[0] = mb
    m = cell.view(np.float64)[0]
    s = m / limit if m > 0.0 else 1.0
    inv = 1.0 / s
    lim = float(limit)
    for i in range(n):
        v = math.floor(src[off + i] * inv + 0.5)
        dst[i] = min(max(v, -lim), lim)
    return s


@nb.njit(cache=True, nogil=True)
def quantize_vector(src, off, n, limit, dst):
    """src[off:off+n] -> dst[:n] as integers in [-limit, limit] with the vector's own step
    (max |x| / limit); returns the step, so x ~ dst * step."""
    return quantize_into(src, off, n, limit, dst, np.zeros(1, dtype=np.int64))


@nb.njit(cache=True, nogil=True)
def quantize_rows(x, limit, out, col0, scales):
    """Per-row dynamic quantisation of float64 x [L, n] into out[:, col0:col0+n] (float32 holding
    integers in [-limit, limit]); scales[row] = the row's step, so x ~ out * scale."""
    L, n = x.shape
    cell = np.zeros(1, dtype=np.int64)
    for r in range(L):
        scales[r] = quantize_into(x[r], 0, n, limit, out[r, col0:], cell)


@nb.njit(cache=True, nogil=True)
def dequant_rows(acc, row_scale, col_scale, bias, out, accumulate):
    """out[r, j] (+)= acc[r, j] * row_scale[r] * col_scale[j] + bias[j]: an exact GEMM's integer
    result back to float64, multiplied in this order everywhere."""
    L, n = acc.shape
    for r in range(L):
        s = row_scale[r]
        for j in range(n):
            v = acc[r, j] * s * col_scale[j] + bias[j]
            if accumulate:
                out[r, j] += v
            else:
                out[r, j] = v


@nb.njit(cache=True, nogil=True)
def det_matmul(a, b):
    """float64 a [M, K] @ b [K, N] with each dot product summed left to right: slow, exact in
    the sense of reproducible; used once per model load (e.g. the LSTM's input table)."""
    M, K = a.shape
    N = b.shape[1]
    out = np.zeros((M, N), dtype=np.float64)
    for i in range(M):
        for j in range(N):
            s = 0.0
            for k in range(K):
                s += a[i, k] * b[k, j]
            out[i, j] = s
    return out


@nb.njit(cache=True, nogil=True)
def softmax_probs(logits, probs, floor):
    """float64 logits [L, 256] -> float32 probabilities with a uniform floor, summed in order."""
    L, V = logits.shape
    e = np.empty(V, dtype=np.float64)
    d = np.empty(V, dtype=np.float64)
    for r in range(L):
        m = logits[r, 0]
        for j in range(1, V):
            if logits[r, j] > m:
                m = logits[r, j]
        for j in range(V):
            d[j] = logits[r, j] - m
        exp_rows(d, e)
        s = 0.0
        for j in range(V):
            s += e[j]
        keep = (1.0 - floor) / s
        add = floor / V
        for j in range(V):
            probs[r, j] = np.float32(e[j] * keep + add)


SIGMOID_TABLE = _sigmoid_table()
