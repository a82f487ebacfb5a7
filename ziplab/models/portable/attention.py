"""Exact attention over a quantised KV cache, shared by the transformer and Llama engines.

The cache holds integers: keys and queries in [-qk_limit, qk_limit], values in
[-VALUE_LIMIT, VALUE_LIMIT], each vector with its own float64 step. Scores q.k and weighted
sums w.v are products of integers whose partial sums stay below 2^24 (the limits are chosen
so), computed here in int32 from int16 storage: the same integers the engines' fp32 products
gave, in any order, on any CPU. Between the two products the softmax is float64 from basic
operations (`attend_weights`, the definition), its sums left to right.

Layout, chosen for speed (the values are the definition, not the layout): keys are stored
transposed per lane and kv head, [L, kv, hd, T], so a head's scores are a loop over slots that
vectorises; values [L, kv, T, hd], so a weighted sum is a loop over the head's width. int16
halves the cache's memory traffic against fp32, which at 64 lanes was most of attention's time
(the cache of a 6-layer, 160-wide model is 31 MB a step).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .arith import EXACT, exp_rows, exp_rows_bits

VALUE_LIMIT = 2047
#: storage of the quantised queries, keys and values (every limit is far below 2^15)
CACHE_DTYPE = np.int16
#: lanes of test inputs in the attention self-test's bank
BANK_LANES = 4


def limits(hd: int, window: int) -> tuple[int, int]:
    """(qk_limit, weight_sum) for heads of width hd over `window` slots: |q.k| < 2^24 and a
    row of integer weights (summing to <= weight_sum + window/2) times values below 2^24."""
    qk_limit = int(math.isqrt((EXACT - 1) // hd))
    weight_sum = (EXACT - 1) // VALUE_LIMIT - window // 2 - 1
    return qk_limit, weight_sum


@nb.njit(cache=True, nogil=True, error_model="numpy")
def attend_weights(scores, qs, ks, vs, weight_sum, wq, ws):
    """Softmax over each row of exact integer scores (rescaled by the q and k steps), folded with
    the value steps and quantised so that the integer weights of a row sum to <= weight_sum + n/2.
    Sums run left to right; the element-wise passes are separate loops so they vectorise (numba's
    "numpy" error model: no zero test per division, which kept the division loop scalar; `tot`
    is never zero, so the bits are the same). The definition `attend_lanes` computes."""
    L, kv, g, n = scores.shape
    e = np.empty(n, dtype=np.float64)
    d = np.empty(n, dtype=np.float64)
    for r in range(L):
        for a in range(kv):
            for b in range(g):
                sq = qs[r, a, b]
                for t in range(n):
                    e[t] = scores[r, a, b, t] * sq * ks[r, a, t]
                m = -1e308
                for t in range(n):
                    if e[t] > m:
                        m = e[t]
                for t in range(n):
                    d[t] = e[t] - m
                exp_rows(d, e)
                tot = 0.0
                for t in range(n):
                    tot += e[t]
                for t in range(n):
                    e[t] = e[t] / tot * vs[r, a, t]
                wsum = 0.0
                for t in range(n):
                    wsum += e[t]
                step = wsum / weight_sum if wsum > 0.0 else 1.0
                inv = 1.0 / step
                for t in range(n):
                    wq[r, a, b, t] = math.floor(e[t] * inv + 0.5)
                ws[r, a, b] = step


@nb.njit(cache=True, nogil=True)
def attend_out(yacc, ws, out):
    L, kv, g, hd = yacc.shape
    for r in range(L):
        for a in range(kv):
            for b in range(g):
                s = ws[r, a, b]
                base = (a * g + b) * hd
                for i in range(hd):
                    out[r, base + i] = yacc[r, a, b, i] * s


@nb.njit(cache=True, nogil=True, inline="always")
def head_scores(qq, kt, r, a, b, filled, out):
    """out[t] = q . k_t for t < filled, q = qq[r, a, b] (int16 [hd]), keys kt[r, a] (int16
    [hd, T], transposed), int32 out. Integer sums are exact in any order: four key rows a pass,
    so out is loaded and stored a quarter as often. Indexed in place, never through row views:
    each view costs two atomic reference counts, and there would be one per key row."""
    hd = qq.shape[3]
    for t in range(filled):
        out[t] = 0
    i = 0
    while i + 4 <= hd:
        q0, q1 = np.int32(qq[r, a, b, i]), np.int32(qq[r, a, b, i + 1])
        q2, q3 = np.int32(qq[r, a, b, i + 2]), np.int32(qq[r, a, b, i + 3])
        for t in range(filled):
            out[t] += ((q0 * np.int32(kt[r, a, i, t]) + q1 * np.int32(kt[r, a, i + 1, t]))
                       + (q2 * np.int32(kt[r, a, i + 2, t]) + q3 * np.int32(kt[r, a, i + 3, t])))
        i += 4
    while i < hd:
        qi = np.int32(qq[r, a, b, i])
        for t in range(filled):
            out[t] += qi * np.int32(kt[r, a, i, t])
        i += 1


@nb.njit(cache=True, nogil=True, inline="always")
def head_values(w, vq, r, a, filled, out):
    """out[i] = sum over t < filled of w[t] v[t, i]: int32 weights, int16 values v = vq[r, a]
    [T, hd], indexed in place (`head_scores`); four slots a pass (integer sums: any order)."""
    hd = out.shape[0]
    for i in range(hd):
        out[i] = 0
    t = 0
    while t + 4 <= filled:
        w0, w1, w2, w3 = np.int32(w[t]), np.int32(w[t + 1]), np.int32(w[t + 2]), np.int32(w[t + 3])
        for i in range(hd):
            out[i] += ((w0 * np.int32(vq[r, a, t, i]) + w1 * np.int32(vq[r, a, t + 1, i]))
                       + (w2 * np.int32(vq[r, a, t + 2, i]) + w3 * np.int32(vq[r, a, t + 3, i])))
        t += 4
    while t < filled:
        wt = np.int32(w[t])
        for i in range(hd):
            out[i] += wt * np.int32(vq[r, a, t, i])
        t += 1


#: softmax cells (rows x slots) `attend_lanes` works on together: whole lanes, as many as fit
#: (at least one), so the scratch stays in a core's L2 cache
BLOCK_CELLS = 1 << 14


@nb.njit(cache=True, nogil=True, error_model="numpy")
def softmax_block(e, d, bits, vst, rows, weight_sum, wq, step, m, tot, wsum, inv):
    """`attend_weights` for the first `rows` columns of e [slot, row] (the rescaled scores):
    the integer weights into wq [slot, row], each row's step into step. Every loop over slots
    runs across the rows (vector operations; each row's sums still left to right); d and bits
    are scratch of e's shape, vst the value steps in e's layout, m, tot, wsum and inv scratch
    rows."""
    n, B = e.shape
    for k in range(rows):
        m[k] = -1e308
        tot[k] = 0.0
        wsum[k] = 0.0
    for t in range(n):
        for k in range(rows):
            m[k] = e[t, k] if e[t, k] > m[k] else m[k]
    for t in range(n):
        for k in range(rows):
            d[t, k] = e[t, k] - m[k]
    exp_rows_bits(d.reshape(n * B), e.reshape(n * B), bits[:n * B])
    for t in range(n):
        for k in range(rows):
            tot[k] += e[t, k]
    for t in range(n):
        for k in range(rows):
            e[t, k] = e[t, k] / tot[k] * vst[t, k]
    for t in range(n):
        for k in range(rows):
            wsum[k] += e[t, k]
    for k in range(rows):
        step[k] = wsum[k] / weight_sum if wsum[k] > 0.0 else 1.0
        inv[k] = 1.0 / step[k]
    for t in range(n):
        for k in range(rows):
            wq[t, k] = np.int32(math.floor(e[t, k] * inv[k] + 0.5))


@nb.njit(cache=True, nogil=True, error_model="numpy")
def attend_lanes(qq, qs, kt, ks, vq, vs, filled, weight_sum, ws, y, e, d, vst, bits, wq, rowv, slotv, acc):
    """Attention of every lane's query heads over its first `filled` slots, into y [L, H*hd]
    (head h = a*g + b at columns h*hd...) and the weights' steps ws [L, kv, g]: exactly
    `attend_weights` between the exact products, a block of lanes at a time (`softmax_block`).

    The rest is scratch (`Scratch`, allocated once per state: allocating it per call cost
    page faults): e, d, vst [T, B] float64, bits [T*B] int64, wq [T, B] int32 for B rows
    (whole lanes' heads), rowv [5, B] float64, slotv [2, T] int32, acc [hd] int32."""
    L, kv, g, hd = qq.shape
    R, n, B = kv * g, filled, e.shape[1]
    per_block = B // R
    e, d, vst, wq = e[:n], d[:n], vst[:n], wq[:n]
    step, m, tot, wsum, inv = rowv[0], rowv[1], rowv[2], rowv[3], rowv[4]
    sc, w = slotv[0], slotv[1]
    for r0 in range(0, L, per_block):
        rows = min(per_block, L - r0) * R
        for k in range(rows):
            r, h = r0 + k // R, k % R
            a, b = h // g, h % g
            head_scores(qq, kt, r, a, b, n, sc)
            sq = qs[r, a, b]
            for t in range(n):
                e[t, k] = np.float64(sc[t]) * sq * ks[r, a, t]
                vst[t, k] = vs[r, a, t]
        softmax_block(e, d, bits, vst, rows, weight_sum, wq, step, m, tot, wsum, inv)
        for k in range(rows):
            r, h = r0 + k // R, k % R
            a, b = h // g, h % g
            for t in range(n):
                w[t] = wq[t, k]
            head_values(w, vq, r, a, n, acc)
            ws[r, a, b] = step[k]
            for i in range(hd):
                y[r, h * hd + i] = np.float64(acc[i]) * step[k]


class Scratch:
    """`attend_lanes`' working arrays for L lanes of kv x g heads of width hd over T slots:
    made once per coding state, reused by every layer and step."""

    def __init__(self, lanes: int, kv: int, g: int, hd: int, window: int) -> None:
        R, T = kv * g, window
        B = max(1, min(lanes, BLOCK_CELLS // (R * T))) * R  # whole lanes, as many as fit
        self.e, self.d, self.vst = np.zeros((T, B)), np.zeros((T, B)), np.zeros((T, B))  # zeros: finite
        self.bits = np.zeros(T * B, dtype=np.int64)
        self.wq = np.zeros((T, B), dtype=np.int32)
        self.rowv = np.zeros((5, B))
        self.slotv = np.zeros((2, T), dtype=np.int32)
        self.acc = np.zeros(hd, dtype=np.int32)


def attend(b: dict, kt: np.ndarray, ks: np.ndarray, vq: np.ndarray, vs: np.ndarray, filled: int,
           weight_sum: float) -> None:
    """Attention of the queries in b["qq"] (steps b["qs"]) over the first `filled` cached keys and
    values: exact integer scores, quantised weights, exact integer sums, into b["y"]; b["scratch"]
    is the state's `Scratch`."""
    s = b["scratch"]
    attend_lanes(b["qq"], b["qs"], kt, ks, vq, vs, filled, weight_sum, b["ws"], b["y"],
                 s.e, s.d, s.vst, s.bits, s.wq, s.rowv, s.slotv, s.acc)


@nb.njit(cache=True, nogil=True)
def lane_scores(qq, kt, filled, out):
    """`head_scores` over [L, kv, g] query heads: out [L, kv, g, filled] int32 (the self-test's)."""
    L, kv, g, hd = qq.shape
    for r in range(L):
        for a in range(kv):
            for b in range(g):
                head_scores(qq, kt, r, a, b, filled, out[r, a, b])


@nb.njit(cache=True, nogil=True)
def lane_values(wq, vq, filled, out):
    """`head_values` over [L, kv, g] weight rows: out [L, kv, g, hd] int32 (the self-test's)."""
    L, kv, g, n = wq.shape
    for r in range(L):
        for a in range(kv):
            for b in range(g):
                head_values(wq[r, a, b], vq, r, a, filled, out[r, a, b])


def cache_arrays(lanes: int, kv: int, hd: int, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One layer's empty cache: keys [L, kv, hd, T] (transposed), key steps, values
    [L, kv, T, hd], value steps."""
    return (np.zeros((lanes, kv, hd, window), dtype=CACHE_DTYPE), np.ones((lanes, kv, window)),
            np.zeros((lanes, kv, window, hd), dtype=CACHE_DTYPE), np.zeros((lanes, kv, window)))


def attention_bank(kv: int, g: int, hd: int, window: int, qk_limit: int, weight_sum: int, seed: int) -> list:
    """Per window length: BANK_LANES lanes of test inputs (lane 0: q and k at +qk_limit, the
    largest score, and weights summing to the bound on values at +VALUE_LIMIT; the last lane
    the same with negative signs; random lanes between) and their float64 products."""
    rng = np.random.default_rng(seed)
    lim, n, T = qk_limit, BANK_LANES, window
    qq = rng.integers(-lim, lim + 1, (n, kv, g, hd))
    kq = rng.integers(-lim, lim + 1, (n, kv, T, hd))
    vq = rng.integers(-VALUE_LIMIT, VALUE_LIMIT + 1, (n, kv, T, hd))
    qq[0], kq[0], vq[0] = lim, lim, VALUE_LIMIT
    qq[-1], kq[-1], vq[-1] = lim, -lim, -VALUE_LIMIT
    bank = []
    for filled in sorted({1, 2, T // 2, T - 1, T} - {0}):
        top = (weight_sum + filled // 2) // filled
        wq = rng.integers(0, top + 1, (n, kv, g, filled))
        wq[0], wq[-1] = top, top
        scores = np.matmul(qq.astype(np.float64), kq[:, :, :filled].astype(np.float64).transpose(0, 1, 3, 2))
        values = np.matmul(wq.astype(np.float64), vq[:, :, :filled].astype(np.float64))
        bank.append((filled, wq.astype(np.int32), scores, values))
    kt = kq.transpose(0, 1, 3, 2)
    return [qq.astype(CACHE_DTYPE), kt.astype(CACHE_DTYPE), vq.astype(CACHE_DTYPE), bank]


def attention_exact_on(bank: list, batches: list) -> bool:
    """Both products, lanes taken in `batches` (the coding shape), equal the float64 results of
    the bank (`attention_bank`), which stay below 2^24."""
    qq, kt, vq, rows = bank
    for idx in batches:
        q, k, v = np.ascontiguousarray(qq[idx]), np.ascontiguousarray(kt[idx]), np.ascontiguousarray(vq[idx])
        for filled, wq, scores, values in rows:
            if np.abs(scores).max() >= EXACT or np.abs(values).max() >= EXACT:
                return False
            got = np.zeros(scores[idx].shape, dtype=np.int32)
            lane_scores(q, k, filled, got)
            if not np.array_equal(got, scores[idx]):
                return False
            got = np.zeros(values[idx].shape, dtype=np.int32)
            lane_values(np.ascontiguousarray(wq[idx]), v, filled, got)
            if not np.array_equal(got, values[idx]):
                return False
    return True
