"""Portable transformer step: exact int8 GEMMs for every weight matrix, exact integer attention
products, float64 norms/rotations/softmax/GELU from basic operations.

The KV cache is a ring buffer of the last T keys and values, each vector quantised with its own
scale (|k|, |v| integers small enough that every partial sum of q.k and w.v stays below 2^24),
keys rotated at their absolute position: RoPE makes attention depend on distance only, so this
reproduces training's window. Attention weights are folded with the value scales and quantised
to integers that sum to at most weight_sum, so the weighted sum of values is exact too. The
products and the softmax between them are `attention`'s kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, localcontext

import numba as nb
import numpy as np

from ..predictor import FLOOR, VOCAB_OUT
from .arith import TWO_PI, dequant_rows, det_erf, det_sincos, quantize_rows, quantized, row_step, softmax_probs
from .attention import (BANK_LANES, CACHE_DTYPE, VALUE_LIMIT, Scratch, attend, attention_bank,
                        attention_exact_on, cache_arrays, limits)
from .exactmm import ExactLinear, InexactArithmeticError
from .int8mm import Int8Linear
from .selftest import batches

#: engine name -> the product of its weight matrices (attention is the same exact fp32 in both)
ENGINES = {"transformer-int8-v1": ExactLinear, "transformer-int8x8-v2": Int8Linear}
ENGINE = "transformer-int8x8-v2"
LN_EPS = 1e-5  # nn.LayerNorm's default
GELU_RANGE = 8
GELU_RES = 1024


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
def _attend_prep(qkv, cos, sin, H, kv, hd, qscale, qk_limit, qq, qs, kt, ks, vq, vs, slot):
    """Rotate q and k heads, quantise q (scaled by 1/sqrt(hd)) per head and store k (transposed:
    `attention`'s layout), v per kv head into `slot`: `quantize_into`'s arithmetic, with every
    array indexed in place (a row view costs two atomic reference counts, and a t5 step would
    make ~14,000 here)."""
    L = qkv.shape[0]
    half = hd // 2
    d = H * hd
    g = H // kv
    qk_lim, v_lim = float(qk_limit), float(VALUE_LIMIT)
    rot = np.empty((1, hd), dtype=np.float64)
    for r in range(L):
        for h in range(H + kv):
            base = h * hd  # q heads, then k heads: d + (h - H) * hd is the same offset
            for i in range(half):
                x1 = qkv[r, base + i]
                x2 = qkv[r, base + half + i]
                rot[0, i] = x1 * cos[i] - x2 * sin[i]
                rot[0, half + i] = x1 * sin[i] + x2 * cos[i]
            if h < H:
                for i in range(hd):
                    rot[0, i] = rot[0, i] * qscale
                step = row_step(rot, 0, 0, hd, qk_limit)
                inv = 1.0 / step
                for i in range(hd):
                    qq[r, h // g, h % g, i] = quantized(rot[0, i], inv, qk_lim)
                qs[r, h // g, h % g] = step
            else:
                step = row_step(rot, 0, 0, hd, qk_limit)
                inv = 1.0 / step
                for i in range(hd):
                    kt[r, h - H, i, slot] = quantized(rot[0, i], inv, qk_lim)
                ks[r, h - H, slot] = step
        for h in range(kv):
            off = d + kv * hd + h * hd
            step = row_step(qkv, r, off, hd, VALUE_LIMIT)
            inv = 1.0 / step
            for i in range(hd):
                vq[r, h, slot, i] = quantized(qkv[r, off + i], inv, v_lim)
            vs[r, h, slot] = step


def dense(lin, x: np.ndarray, xq: np.ndarray, acc: np.ndarray, rs: np.ndarray, bias: np.ndarray,
          out: np.ndarray, accumulate: bool) -> None:
    """One dense product as every engine does it: x's rows quantised (steps in rs), multiplied
    exactly, rescaled with the bias into out (added to it when `accumulate`)."""
    quantize_rows(x, lin.limit, xq, 0, rs)
    lin.mm(xq, acc)
    dequant_rows(acc, rs, lin.scale, bias, out, accumulate)


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
    kt: list  # per layer int16 [L, kv, hd, T] integer keys (transposed)
    ks: list  # float64 [L, kv, T] key steps
    vq: list  # int16 [L, kv, T, hd] integer values
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
        self.qk_limit, self.weight_sum = limits(self.hd, self.T)
        self.zero_bias = np.zeros(max(lin.n for lin in self.linears()))  # these matrices have no bias
        self._bank: tuple | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        named = {"emb": self.emb, "inv_freq": self.inv_freq, **self.head.arrays("head"),
                 "limits": np.array([self.qk_limit, VALUE_LIMIT, self.weight_sum], dtype=np.int64)}
        for i, layer in enumerate(self.layers):
            for k, lin in layer.items():
                named.update(lin.arrays(f"b{i}.{k}"))
        return named

    def attention_exact_at(self, lanes: int, seed: int = 0) -> bool:
        """Both attention products at the coding shape (lanes x heads, windows of several
        lengths) equal the float64 result on the bank's inputs, and stay below 2^24."""
        if self._bank is None or self._bank[0] != seed:
            bank = attention_bank(self.kv, self.H // self.kv, self.hd, self.T, self.qk_limit, self.weight_sum, seed)
            self._bank = (seed, bank)
        return attention_exact_on(self._bank[1], batches(BANK_LANES, lanes))

    def self_test(self, lanes: int) -> None:
        if not self.attention_exact_at(lanes):
            raise InexactArithmeticError(
                "attention products on this machine are not exact for small integers (the int32 kernels "
                "disagree with float64 on the self-test's bank); portable coding needs them")

    def linears(self) -> list:
        return [lin for layer in self.layers for lin in layer.values()] + [self.head]

    def start(self, lanes: int) -> TransformerState:
        L, d, H, kv, hd, T = lanes, self.d, self.H, self.kv, self.hd, self.T
        g = H // kv
        l0 = self.layers[0]
        xin = lambda *s: np.zeros(s, dtype=self.head.in_dtype)  # noqa: E731 - dense products' inputs
        acc = lambda *s: np.zeros(s, dtype=self.head.out_dtype)  # noqa: E731 - and their outputs
        buf = {
            "n": np.zeros((L, d)), "rs": np.zeros(L), "xq_d": xin(L, d), "acc_qkv": acc(L, l0["qkv"].n),
            "qkv": np.zeros((L, l0["qkv"].n)), "acc_d": acc(L, d), "acc_fc": acc(L, l0["fc"].n),
            "hid": np.zeros((L, l0["fc"].n)), "xq_fc": xin(L, l0["fc"].n), "y": np.zeros((L, d)),
            "qq": np.zeros((L, kv, g, hd), dtype=CACHE_DTYPE), "qs": np.zeros((L, kv, g)), "ws": np.zeros((L, kv, g)),
            "acc_out": acc(L, VOCAB_OUT), "logits": np.zeros((L, VOCAB_OUT)),
            "probs": np.zeros((L, VOCAB_OUT), dtype=np.float32),
            "cos": np.zeros(hd // 2), "sin": np.zeros(hd // 2),
            "scratch": Scratch(L, kv, g, hd, T),
        }
        st = TransformerState(lanes=L, pos=0, x=np.zeros((L, d)), buf=buf, kt=[], ks=[], vq=[], vs=[])
        for _ in self.layers:
            for held, arr in zip((st.kt, st.ks, st.vq, st.vs), cache_arrays(L, kv, hd, T)):
                held.append(arr)
        return st

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
                         b["qq"], b["qs"], st.kt[i], st.ks[i], st.vq[i], st.vs[i], slot)
            attend(b, st.kt[i], st.ks[i], st.vq[i], st.vs[i], filled, float(self.weight_sum))
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
