"""Portable transformer step: exact int8 GEMMs for every weight matrix, exact integer attention
products, float64 norms/rotations/softmax/GELU from basic operations.

The KV cache is a ring buffer of the last T keys and values, each vector quantised with its own
scale (|k|, |v| integers small enough that q.k and p.v are exact in fp32), rotated at its
absolute position: RoPE makes attention depend on distance only, so this reproduces training's
window. Attention weights are folded with the value scales and quantised to integers that sum to
at most WEIGHT_SUM, so the weighted sum of values is exact too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, localcontext

import numba as nb
import numpy as np

from ..predictor import FLOOR, VOCAB_OUT
from .arith import (EXACT, TWO_PI, dequant_rows, det_erf, det_sincos, exp_rows, quantize_into, quantize_rows,
                    softmax_probs)
from .exactmm import ExactLinear, InexactArithmeticError
from .int8mm import Int8Linear
from .selftest import batches

#: engine name -> the product of its weight matrices (attention is the same exact fp32 in both)
ENGINES = {"transformer-int8-v1": ExactLinear, "transformer-int8x8-v2": Int8Linear}
ENGINE = "transformer-int8x8-v2"
LN_EPS = 1e-5  # nn.LayerNorm's default
VALUE_LIMIT = 2047
GELU_RANGE = 8
GELU_RES = 1024
#: lanes of test inputs in the attention self-test's bank
BANK_LANES = 4


@nb.njit(cache=True)
def _phi_table():
    """Standard normal CDF every 1/GELU_RES on [-GELU_RANGE, GELU_RANGE], from det_erf."""
    n = 2 * GELU_RANGE * GELU_RES
    t = np.empty(n + 1, dtype=np.float64)  # lookups interpolate between t[i] and t[i + 1], i < n
    for i in range(n + 1):
        t[i] = 0.5 * (1.0 + det_erf((i / GELU_RES - GELU_RANGE) * 0.7071067811865476))
    return t


PHI_TABLE = _phi_table()


@nb.njit(cache=True, nogil=True)
def gelu_rows(x):
    """x <- x * Phi(x) in place, Phi interpolated in PHI_TABLE: 0 below the table, x itself above it.

    Branch-free (clamped index, results selected) so the loop vectorises; the table is the
    module's constant, which cannot alias x. Inside the table the operations are
    v * (t[i] + f * (t[i+1] - t[i])), as a scalar loop would do them."""
    phi = PHI_TABLE
    L, n = x.shape
    top = 2 * GELU_RANGE * GELU_RES
    ftop = float(top)
    for r in range(L):
        for j in range(n):
            v = x[r, j]
            u = (v + GELU_RANGE) * GELU_RES
            uc = min(max(u, 0.0), ftop)
            i = max(min(np.intp(uc), top - 1), 0)
            f = uc - i
            a = phi[i]
            y = v * (a + f * (phi[i + 1] - a))
            x[r, j] = 0.0 if u <= 0.0 else (v if u >= ftop else y)


@nb.njit(cache=True, nogil=True)
def layernorm_rows(x, out):
    L, d = x.shape
    for r in range(L):
        s = 0.0
        for j in range(d):
            s += x[r, j]
        mean = s / d
        v = 0.0
        for j in range(d):
            t = x[r, j] - mean
            v += t * t
        inv = 1.0 / math.sqrt(v / d + LN_EPS)
        for j in range(d):
            out[r, j] = (x[r, j] - mean) * inv


@nb.njit(cache=True, nogil=True)
def position_angles(pos, inv_freq, cos, sin):
    for i in range(inv_freq.shape[0]):
        a = pos * inv_freq[i]
        a = a - math.floor(a / TWO_PI) * TWO_PI
        if a < 0.0:
            a = 0.0
        s, c = det_sincos(a)
        sin[i] = s
        cos[i] = c


@nb.njit(cache=True, nogil=True)
def _attend_prep(qkv, cos, sin, H, kv, hd, qscale, qk_limit, qq, qs, kq, ks, vq, vs, slot):
    """Rotate q and k heads, quantise q (scaled by 1/sqrt(hd)) per head and store k, v per kv head."""
    L = qkv.shape[0]
    half = hd // 2
    d = H * hd
    rot = np.empty(hd, dtype=np.float64)
    cell = np.zeros(1, dtype=np.int64)  # quantize_into's scratch, one for every vector
    for r in range(L):
        for h in range(H + kv):
            base = h * hd  # q heads, then k heads: d + (h - H) * hd is the same offset
            for i in range(half):
                x1 = qkv[r, base + i]
                x2 = qkv[r, base + half + i]
                rot[i] = x1 * cos[i] - x2 * sin[i]
                rot[half + i] = x1 * sin[i] + x2 * cos[i]
            if h < H:
                for i in range(hd):
                    rot[i] = rot[i] * qscale
                g = H // kv
                qs[r, h // g, h % g] = quantize_into(rot, 0, hd, qk_limit, qq[r, h // g, h % g], cell)
            else:
                ks[r, h - H, slot] = quantize_into(rot, 0, hd, qk_limit, kq[r, h - H, slot], cell)
        for h in range(kv):
            vs[r, h, slot] = quantize_into(qkv[r], d + kv * hd + h * hd, hd, VALUE_LIMIT, vq[r, h, slot], cell)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def attend_weights(scores, qs, ks, vs, weight_sum, wq, ws):
    """Softmax over each row of exact integer scores (rescaled by the q and k steps), folded with
    the value steps and quantised so that the integer weights of a row sum to <= weight_sum + n/2.
    Sums run left to right; the element-wise passes are separate loops so they vectorise (numba's
    "numpy" error model: no zero test per division, which kept the division loop scalar; `tot`
    is never zero, so the bits are the same)."""
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


def dense(lin, x: np.ndarray, xq: np.ndarray, acc: np.ndarray, rs: np.ndarray, bias: np.ndarray,
          out: np.ndarray, accumulate: bool) -> None:
    """One dense product as every engine does it: x's rows quantised (steps in rs), multiplied
    exactly, rescaled with the bias into out (added to it when `accumulate`)."""
    quantize_rows(x, lin.limit, xq, 0, rs)
    lin.mm(xq, acc)
    dequant_rows(acc, rs, lin.scale, bias, out, accumulate)


def attend(b: dict, kq: np.ndarray, ks: np.ndarray, vq: np.ndarray, vs: np.ndarray, filled: int,
           weight_sum: float) -> None:
    """Attention of the queries in b["qq"] (steps b["qs"]) over the first `filled` cached keys and
    values: exact integer scores, quantised weights, exact integer sums, into b["y"]."""
    scores = attention_scores(b["qq"], kq, filled)
    wq = np.empty(scores.shape, dtype=np.float32)
    attend_weights(scores, b["qs"], ks, vs, weight_sum, wq, b["ws"])
    attend_out(attention_values(wq, vq, filled), b["ws"], b["y"])


def attention_scores(qq: np.ndarray, kq: np.ndarray, filled: int) -> np.ndarray:
    """Integer q [L, kv, g, hd] times the first `filled` integer keys [L, kv, T, hd]: exact in fp32
    (|q|, |k| <= qk_limit, so hd * qk_limit^2 < 2^24) on any BLAS: [L, kv, g, filled]."""
    return np.matmul(qq, kq[:, :, :filled].transpose(0, 1, 3, 2))


def attention_values(wq: np.ndarray, vq: np.ndarray, filled: int) -> np.ndarray:
    """Integer weights [L, kv, g, filled] (a row sums to <= weight_sum + filled/2) times integer
    values [L, kv, T, hd] (|v| <= VALUE_LIMIT): exact in fp32, [L, kv, g, hd]."""
    return np.matmul(wq, vq[:, :, :filled])


def exact_rope_frequencies(head_dim: int, base: float) -> np.ndarray:
    """RoPE frequencies base^(-2i/hd), from 40-digit decimal arithmetic (libm pow differs by platform)."""
    with localcontext() as ctx:
        ctx.prec = 40
        ln_base = Decimal(repr(float(base))).ln()
        return np.array([float((-ln_base * (2 * i) / head_dim).exp()) for i in range(head_dim // 2)])


@dataclass
class TransformerState:
    lanes: int
    pos: int
    x: np.ndarray  # float64 residual [L, d]
    buf: dict  # scratch arrays
    kq: list  # per layer float32 [L, kv, T, hd] integer keys
    ks: list  # float64 [L, kv, T] key steps
    vq: list
    vs: list


class PortableTransformer:
    def __init__(self, model, engine: str = ENGINE) -> None:
        self.engine = engine
        linear = ENGINES[engine]
        c = model.cfg
        self.d, self.H, self.kv, self.hd, self.T = c.n_embd, c.n_head, c.n_kv_head, c.head_dim, c.context
        f64 = lambda t: t.detach().double().cpu().numpy()  # noqa: E731
        self.emb = f64(model.wte.weight)
        self.layers = []
        for b in model.blocks:
            g1, g2 = f64(b.ln1.weight)[:, None], f64(b.ln2.weight)[:, None]  # LayerNorm gains fold into the next matrix
            self.layers.append({
                "qkv": linear(g1 * f64(b.qkv.weight).T), "proj": linear(f64(b.proj.weight).T),
                "fc": linear(g2 * f64(b.fc.weight).T), "out": linear(f64(b.out.weight).T),
            })
        self.head = linear(f64(model.ln_f.weight)[:, None] * self.emb[:VOCAB_OUT].T)
        self.inv_freq = exact_rope_frequencies(self.hd, c.rope_base)
        self._limits()

    @classmethod
    def from_arrays(cls, named: dict[str, np.ndarray], dims: dict, engine: str) -> "PortableTransformer":
        """The engine back from `arrays()` and `dims()` (the quantised-model cache): no torch."""
        linear = ENGINES[engine]
        self = cls.__new__(cls)
        self.engine = engine
        self.d, self.H, self.kv, self.hd, self.T = (int(dims[k]) for k in ("d", "H", "kv", "hd", "T"))
        self.emb, self.inv_freq = named["emb"], named["inv_freq"]
        n_layer = int(dims["n_layer"])
        self.layers = [{k: linear.from_quantised(named[f"b{i}.{k}.q"], named[f"b{i}.{k}.scale"])
                        for k in ("qkv", "proj", "fc", "out")} for i in range(n_layer)]
        self.head = linear.from_quantised(named["head.q"], named["head.scale"])
        self._limits()
        return self

    def dims(self) -> dict:
        return {"d": self.d, "H": self.H, "kv": self.kv, "hd": self.hd, "T": self.T, "n_layer": len(self.layers)}

    def _limits(self) -> None:
        self.qscale = 1.0 / math.sqrt(self.hd)
        self.qk_limit = int(math.isqrt((EXACT - 1) // self.hd))
        self.weight_sum = (EXACT - 1) // VALUE_LIMIT - self.T // 2 - 1
        self.zero_bias = np.zeros(max(lin.n for lin in self.linears()))  # these matrices have no bias
        self._bank: tuple | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        named = {"emb": self.emb, "inv_freq": self.inv_freq, **self.head.arrays("head"),
                 "limits": np.array([self.qk_limit, VALUE_LIMIT, self.weight_sum], dtype=np.int64)}
        for i, layer in enumerate(self.layers):
            for k, lin in layer.items():
                named.update(lin.arrays(f"b{i}.{k}"))
        return named

    def _attention_bank(self, seed: int) -> list:
        """Per window length: BANK_LANES lanes of test inputs (lane 0: q and k at +qk_limit, the
        largest score, and weights summing to the bound on values at +VALUE_LIMIT; the last lane
        the same with negative signs; random lanes between) and their float64 products."""
        kv, g, hd, T = self.kv, self.H // self.kv, self.hd, self.T
        rng = np.random.default_rng(seed)
        lim, n = self.qk_limit, BANK_LANES
        qq = rng.integers(-lim, lim + 1, (n, kv, g, hd)).astype(np.float32)
        kq = rng.integers(-lim, lim + 1, (n, kv, T, hd)).astype(np.float32)
        vq = rng.integers(-VALUE_LIMIT, VALUE_LIMIT + 1, (n, kv, T, hd)).astype(np.float32)
        qq[0], kq[0], vq[0] = lim, lim, VALUE_LIMIT
        qq[-1], kq[-1], vq[-1] = lim, -lim, -VALUE_LIMIT
        bank = []
        for filled in sorted({1, 2, T // 2, T - 1, T} - {0}):
            top = (self.weight_sum + filled // 2) // filled
            wq = rng.integers(0, top + 1, (n, kv, g, filled)).astype(np.float32)
            wq[0], wq[-1] = top, top
            scores = np.matmul(qq.astype(np.float64), kq[:, :, :filled].astype(np.float64).transpose(0, 1, 3, 2))
            values = np.matmul(wq.astype(np.float64), vq[:, :, :filled].astype(np.float64))
            bank.append((filled, wq, scores, values))
        return [qq, kq, vq, bank]

    def attention_exact_at(self, lanes: int, seed: int = 0) -> bool:
        """Both attention products at the coding shape (lanes x heads, windows of several
        lengths) equal the float64 result on the bank's inputs, and stay below 2^24."""
        if self._bank is None or self._bank[0] != seed:
            self._bank = (seed, self._attention_bank(seed))
        qq, kq, vq, bank = self._bank[1]
        for idx in batches(BANK_LANES, lanes):
            q, k, v = np.ascontiguousarray(qq[idx]), np.ascontiguousarray(kq[idx]), np.ascontiguousarray(vq[idx])
            for filled, wq, scores, values in bank:
                if np.abs(scores).max() >= EXACT or np.abs(values).max() >= EXACT:
                    return False
                if not np.array_equal(attention_scores(q, k, filled), scores[idx]):
                    return False
                if not np.array_equal(attention_values(np.ascontiguousarray(wq[idx]), v, filled), values[idx]):
                    return False
        return True

    def self_test(self, lanes: int) -> None:
        if not self.attention_exact_at(lanes):
            raise InexactArithmeticError(
                "fp32 attention products on this machine are not exact for small integers (is a reduced-"
                "precision math mode set in the BLAS?); portable coding needs them")

    def linears(self) -> list:
        return [lin for layer in self.layers for lin in layer.values()] + [self.head]

    def start(self, lanes: int) -> TransformerState:
        L, d, H, kv, hd, T = lanes, self.d, self.H, self.kv, self.hd, self.T
        g = H // kv
        f32 = lambda *s: np.zeros(s, dtype=np.float32)  # noqa: E731
        l0 = self.layers[0]
        xin = lambda *s: np.zeros(s, dtype=self.head.in_dtype)  # noqa: E731 - dense products' inputs
        acc = lambda *s: np.zeros(s, dtype=self.head.out_dtype)  # noqa: E731 - and their outputs
        buf = {
            "n": np.zeros((L, d)), "rs": np.zeros(L), "xq_d": xin(L, d), "acc_qkv": acc(L, l0["qkv"].n),
            "qkv": np.zeros((L, l0["qkv"].n)), "acc_d": acc(L, d), "acc_fc": acc(L, l0["fc"].n),
            "hid": np.zeros((L, l0["fc"].n)), "xq_fc": xin(L, l0["fc"].n), "y": np.zeros((L, d)),
            "qq": f32(L, kv, g, hd), "qs": np.zeros((L, kv, g)), "ws": np.zeros((L, kv, g)),
            "acc_out": acc(L, VOCAB_OUT), "logits": np.zeros((L, VOCAB_OUT)),
            "probs": np.zeros((L, VOCAB_OUT), dtype=np.float32),
            "cos": np.zeros(hd // 2), "sin": np.zeros(hd // 2),
        }
        n = len(self.layers)
        return TransformerState(
            lanes=L, pos=0, x=np.zeros((L, d)), buf=buf,
            kq=[f32(L, kv, T, hd) for _ in range(n)], ks=[np.ones((L, kv, T)) for _ in range(n)],
            vq=[f32(L, kv, T, hd) for _ in range(n)], vs=[np.zeros((L, kv, T)) for _ in range(n)])

    def step(self, st: TransformerState, prev: np.ndarray) -> np.ndarray:
        b = st.buf
        H, kv, hd, T = self.H, self.kv, self.hd, self.T
        slot, filled = st.pos % T, min(st.pos + 1, T)
        position_angles(float(st.pos), self.inv_freq, b["cos"], b["sin"])
        x = st.x
        x[:] = self.emb[prev]
        for i, layer in enumerate(self.layers):
            qkv, proj, fc, out = layer["qkv"], layer["proj"], layer["fc"], layer["out"]
            zero = self.zero_bias
            layernorm_rows(x, b["n"])
            dense(qkv, b["n"], b["xq_d"], b["acc_qkv"], b["rs"], zero, b["qkv"], False)
            _attend_prep(b["qkv"], b["cos"], b["sin"], H, kv, hd, self.qscale, self.qk_limit,
                         b["qq"], b["qs"], st.kq[i], st.ks[i], st.vq[i], st.vs[i], slot)
            attend(b, st.kq[i], st.ks[i], st.vq[i], st.vs[i], filled, float(self.weight_sum))
            dense(proj, b["y"], b["xq_d"], b["acc_d"], b["rs"], zero, x, True)
            layernorm_rows(x, b["n"])
            dense(fc, b["n"], b["xq_d"], b["acc_fc"], b["rs"], zero, b["hid"], False)
            gelu_rows(b["hid"])
            dense(out, b["hid"], b["xq_fc"], b["acc_d"], b["rs"], zero, x, True)
        layernorm_rows(x, b["n"])
        dense(self.head, b["n"], b["xq_d"], b["acc_out"], b["rs"], self.zero_bias, b["logits"], False)
        softmax_probs(b["logits"], b["probs"], FLOOR)
        st.pos += 1
        return b["probs"]
