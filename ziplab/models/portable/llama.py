"""Portable Llama-architecture step (Llama, SmolLM, Qwen2, Qwen3): the transformer engine's rules
applied to RMSNorm, rotary positions, SwiGLU and grouped-query attention, so a Hugging Face
checkpoint of that shape gives the same probabilities, bit for bit, on every CPU.

- every weight matrix is an `Int8Linear` (int8 per output column; rows quantised per lane to
  int8; exact int32 products on the kernel `KernelChoice` picks), RMSNorm gains folded into the
  next matrix, biases (Qwen2's q/k/v, Llama's optional ones) added in the f64 rescale;
- RMSNorm, the optional per-head q/k RMSNorm (Qwen3), rotation, SiLU (x·det_sigmoid(x)) and the
  softmaxes are f64 from IEEE basic operations in numba kernels without fast-math; RoPE's
  frequencies (default, linear or llama3 scaling) come from 40-digit decimal arithmetic and its
  angles from `det_sincos`;
- attention products are the transformer engine's fp32-exact integer products (same limits,
  same self-test), over a cache of T = min(max_position_embeddings, MAX_CONTEXT) slots per
  lane: slot 0 keeps the first position (the start token: an attention sink), slots 1..T-1 are
  a ring of the newest positions. Once the ring has wrapped, the sink's key is rotated as if it
  sat just before the oldest position in the ring (RoPE depends on distances only), so no
  distance ever exceeds T - 1 (what StreamingLLM does to keep a Llama stable past its window).

`llama_spec.llama_spec` checks a loaded directory's config before anything is quantised; a feature the
engine does not compute exactly (dynamic, yarn, ... rope scaling; sliding windows; another
activation) raises `LlamaUnsupported` (the `lm` codec then codes on the float engine), sizes past the exactness
bounds raise `LlamaEngineError`. Both are one line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from ..predictor import FLOOR
from .arith import det_sigmoid, quantize_into, softmax_probs
from .int8mm import Int8Linear
from .llama_spec import (WEIGHT_BOUND, LlamaEngineError, build_bytes, llama_spec, rope_inv_freq, state_bytes)
from .attention import CACHE_DTYPE, VALUE_LIMIT, Scratch, attend, cache_arrays
from .transformer import PortableTransformer, dense, position_angles

ENGINE = "llama-int8x8-v1"
ENGINES = {ENGINE: Int8Linear}
# ---- kernels ------------------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True)
def rmsnorm_rows(x, eps, out):
    """out = x / sqrt(mean(x^2) + eps) per row (sum of squares left to right, f64)."""
    L, d = x.shape
    for r in range(L):
        s = 0.0
        for j in range(d):
            s += x[r, j] * x[r, j]
        inv = 1.0 / math.sqrt(s / d + eps)
        for j in range(d):
            out[r, j] = x[r, j] * inv


@nb.njit(cache=True, nogil=True)
def swiglu_rows(gu, ff, out):
    """out[r, j] = silu(gate) * up with gate = gu[r, j], up = gu[r, ff + j], silu(v) = v * det_sigmoid(v)."""
    L = gu.shape[0]
    for r in range(L):
        for j in range(ff):
            v = gu[r, j]
            out[r, j] = (v * det_sigmoid(v)) * gu[r, ff + j]


@nb.njit(cache=True, nogil=True)
def _head_norm(v, base, hd, gain, eps, rot):
    """rot[:hd] = v[base:base+hd] / sqrt(mean(v^2) + eps) * gain (Qwen3's per-head q/k norm)."""
    s = 0.0
    for i in range(hd):
        s += v[base + i] * v[base + i]
    inv = 1.0 / math.sqrt(s / hd + eps)
    for i in range(hd):
        rot[i] = (v[base + i] * inv) * gain[i]


@nb.njit(cache=True, nogil=True)
def _rotate(src, cos, sin, hd, rot):
    """RoPE on one head (halves): (x1, x2) -> (x1 cos - x2 sin, x1 sin + x2 cos), in place into rot."""
    half = hd // 2
    for i in range(half):
        x1 = src[i]
        x2 = src[half + i]
        rot[i] = x1 * cos[i] - x2 * sin[i]
        rot[half + i] = x1 * sin[i] + x2 * cos[i]


@nb.njit(cache=True, nogil=True)
def llama_prep(qkv, cos, sin, H, kv, hd, qscale, qk_limit, qk_norm, qgain, kgain, eps,
               qq, qs, kt, ks, vq, vs, slot, kraw):
    """Per lane: (q/k head norm), rotate and quantise the query heads (times qscale) and the key
    heads into `slot` (keys transposed: `attention`'s layout), quantise the value heads into
    `slot`; at slot 0 (the first position) the normalised, unrotated keys are kept in kraw for
    the sink's later rotations."""
    L = qkv.shape[0]
    g = H // kv
    src = np.empty(hd, dtype=np.float64)
    rot = np.empty(hd, dtype=np.float64)
    key = np.empty(hd, dtype=np.float64)
    cell = np.zeros(1, dtype=np.int64)  # quantize_into's scratch, one for every vector
    for r in range(L):
        for h in range(H + kv):
            base = h * hd
            if qk_norm:
                _head_norm(qkv[r], base, hd, qgain if h < H else kgain, eps, src)
            else:
                for i in range(hd):
                    src[i] = qkv[r, base + i]
            if h >= H and slot == 0:
                for i in range(hd):
                    kraw[r, h - H, i] = src[i]
            _rotate(src, cos, sin, hd, rot)
            if h < H:
                for i in range(hd):
                    rot[i] = rot[i] * qscale
                qs[r, h // g, h % g] = quantize_into(rot, 0, hd, qk_limit, qq[r, h // g, h % g], cell)
            else:
                ks[r, h - H, slot] = quantize_into(rot, 0, hd, qk_limit, key, cell)
                for i in range(hd):
                    kt[r, h - H, i, slot] = key[i]
        vbase = (H + kv) * hd
        for h in range(kv):
            vs[r, h, slot] = quantize_into(qkv[r], vbase + h * hd, hd, VALUE_LIMIT, vq[r, h, slot], cell)


@nb.njit(cache=True, nogil=True)
def sink_keys(kraw, cos, sin, qk_limit, kt, ks):
    """The sink's keys (slot 0) rotated at the sink's current position and quantised again."""
    L, kv, hd = kraw.shape
    rot = np.empty(hd, dtype=np.float64)
    key = np.empty(hd, dtype=np.float64)
    cell = np.zeros(1, dtype=np.int64)  # quantize_into's scratch, one for every vector
    for r in range(L):
        for h in range(kv):
            _rotate(kraw[r, h], cos, sin, hd, rot)
            ks[r, h, 0] = quantize_into(rot, 0, hd, qk_limit, key, cell)
            for i in range(hd):
                kt[r, h, i, 0] = key[i]


@nb.njit(cache=True, nogil=True)
def embed_rows(emb, prev, out):
    for r in range(prev.shape[0]):
        for j in range(out.shape[1]):
            out[r, j] = np.float64(emb[prev[r], j])


# ---- the engine ---------------------------------------------------------------------------------
@dataclass
class LlamaState:
    lanes: int
    pos: int
    x: np.ndarray
    buf: dict
    kt: list  # per layer int16 [L, kv, hd, T]: keys, transposed (`attention`)
    ks: list
    vq: list  # int16 [L, kv, T, hd]
    vs: list
    kraw: list  # per layer f64 [L, kv, hd]: the sink's normalised keys before rotation


def _f64(t) -> np.ndarray:
    return t.detach().double().cpu().numpy()


class PortableLlama(PortableTransformer):
    """The engine over a loaded Hugging Face Llama-architecture module (`llama_spec` first)."""

    def __init__(self, module, engine: str = ENGINE) -> None:
        from ...limits import default_limits

        if engine not in ENGINES:
            raise LlamaEngineError(f"no portable Llama engine {engine!r}")
        spec = llama_spec(module)
        default_limits().check(build_bytes(spec), "quantising this Llama-architecture model")
        for name, p in module.named_parameters():  # bounded weights keep every f64 value finite
            if not bool(p.detach().abs().le(WEIGHT_BOUND).all()):
                raise LlamaEngineError(f"tensor {name} holds a value that is not finite or past ±{WEIGHT_BOUND:g}")
        self.engine, self.spec = engine, spec
        self.d, self.H, self.kv, self.hd, self.T = spec.d, spec.H, spec.kv, spec.hd, spec.T
        m = module.model
        emb = m.embed_tokens.weight.detach().float().cpu().numpy()
        self.emb = np.ascontiguousarray(emb, dtype=np.float32)
        self.layers, self.biases, self.gains = [], [], []
        for layer in m.layers:
            a, mlp = layer.self_attn, layer.mlp
            g1 = _f64(layer.input_layernorm.weight)[:, None]  # RMSNorm gains fold into the next matrix
            g2 = _f64(layer.post_attention_layernorm.weight)[:, None]
            qkv = np.concatenate([_f64(a.q_proj.weight).T, _f64(a.k_proj.weight).T, _f64(a.v_proj.weight).T], axis=1)
            gu = np.concatenate([_f64(mlp.gate_proj.weight).T, _f64(mlp.up_proj.weight).T], axis=1)
            self.layers.append({"qkv": Int8Linear(g1 * qkv), "o": Int8Linear(_f64(a.o_proj.weight).T),
                                "gu": Int8Linear(g2 * gu), "down": Int8Linear(_f64(mlp.down_proj.weight).T)})

            def bias(*mods):
                parts = [_f64(x.bias) if getattr(x, "bias", None) is not None else np.zeros(x.weight.shape[0])
                         for x in mods]
                return np.ascontiguousarray(np.concatenate(parts))

            self.biases.append({"qkv": bias(a.q_proj, a.k_proj, a.v_proj), "o": bias(a.o_proj),
                                "gu": bias(mlp.gate_proj, mlp.up_proj), "down": bias(mlp.down_proj)})
            if spec.qk_norm:
                self.gains.append({"q": _f64(a.q_norm.weight), "k": _f64(a.k_norm.weight)})
            else:
                self.gains.append({"q": np.ones(spec.hd), "k": np.ones(spec.hd)})
        gf = _f64(m.norm.weight)[:, None]
        self.head = Int8Linear(gf * _f64(module.lm_head.weight).T)
        if self.emb.shape != (spec.vocab, spec.d) or self.head.n != spec.vocab:
            raise LlamaEngineError(f"embedding {self.emb.shape} or output {self.head.n} does not match "
                                   f"the vocabulary {spec.vocab}")
        self.inv_freq = rope_inv_freq(self.hd, spec.rope_type, spec.rope_base, spec.rope_params)
        self._limits()

    @classmethod
    def from_arrays(cls, named, dims, engine):  # noqa: D102 - HF models are not in the quantised cache
        raise LlamaEngineError("the Llama engine is built from its Hugging Face directory, not the cache")

    def dims(self) -> dict:
        s = self.spec
        return {"d": s.d, "H": s.H, "kv": s.kv, "hd": s.hd, "ff": s.ff, "T": s.T, "n_layer": s.n_layer,
                "vocab": s.vocab, "eps": s.eps, "rope_base": s.rope_base,
                "rope_type": s.rope_type, "qk_norm": s.qk_norm, "tied": s.tied}

    def arrays(self) -> dict[str, np.ndarray]:
        s = self.spec
        named = {"emb": self.emb, "inv_freq": self.inv_freq, **self.head.arrays("head"),
                 "limits": np.array([self.qk_limit, VALUE_LIMIT, self.weight_sum, s.T, int(s.qk_norm)], dtype=np.int64),
                 "eps": np.array([s.eps, self.qscale], dtype=np.float64)}
        for i, layer in enumerate(self.layers):
            for k, lin in layer.items():
                named.update(lin.arrays(f"b{i}.{k}"))
                named[f"b{i}.{k}.bias"] = self.biases[i][k]
            if s.qk_norm:
                named[f"b{i}.q_norm"], named[f"b{i}.k_norm"] = self.gains[i]["q"], self.gains[i]["k"]
        return named

    def state_bytes(self, lanes: int) -> int:
        return state_bytes(self.spec, lanes)

    def start(self, lanes: int) -> LlamaState:
        from ...limits import default_limits

        default_limits().check(self.state_bytes(lanes), f"the Llama engine's state for {lanes} lanes")
        L, d, H, kv, hd, T, ff = lanes, self.d, self.H, self.kv, self.hd, self.T, self.spec.ff
        g, V, A = H // kv, self.head.n, H * hd
        i8 = lambda *s: np.zeros(s, dtype=np.int8)  # noqa: E731
        i32 = lambda *s: np.zeros(s, dtype=np.int32)  # noqa: E731
        buf = {
            "n": np.zeros((L, d)), "rs": np.zeros(L), "xq_d": i8(L, d), "xq_a": i8(L, A), "xq_ff": i8(L, ff),
            "acc_qkv": i32(L, (H + 2 * kv) * hd), "qkv": np.zeros((L, (H + 2 * kv) * hd)), "acc_d": i32(L, d),
            "acc_gu": i32(L, 2 * ff), "gu": np.zeros((L, 2 * ff)), "hid": np.zeros((L, ff)), "y": np.zeros((L, A)),
            "qq": np.zeros((L, kv, g, hd), dtype=CACHE_DTYPE), "qs": np.zeros((L, kv, g)), "ws": np.zeros((L, kv, g)),
            "acc_out": i32(L, V), "logits": np.zeros((L, V)), "probs": np.zeros((L, V), dtype=np.float32),
            "cos": np.zeros(hd // 2), "sin": np.zeros(hd // 2), "cos_s": np.zeros(hd // 2), "sin_s": np.zeros(hd // 2),
            "scratch": Scratch(L, kv, g, hd, T),
        }
        n = len(self.layers)
        kt, ks, vq, vs = (list(part) for part in zip(*(cache_arrays(L, kv, hd, T) for _ in range(n))))
        return LlamaState(lanes=L, pos=0, x=np.zeros((L, d)), buf=buf, kt=kt, ks=ks, vq=vq, vs=vs,
                          kraw=[np.zeros((L, kv, hd)) for _ in range(n)])

    def step(self, st: LlamaState, prev: np.ndarray) -> np.ndarray:
        b, s = st.buf, self.spec
        H, kv, hd, T, W = self.H, self.kv, self.hd, self.T, self.T - 1
        pos = st.pos
        slot = 0 if pos == 0 else 1 + (pos - 1) % W
        filled = min(pos + 1, T)
        position_angles(float(pos), self.inv_freq, b["cos"], b["sin"])
        sink = pos > W  # the ring has wrapped: the sink sits just before its oldest position
        if sink:
            position_angles(float(pos - W), self.inv_freq, b["cos_s"], b["sin_s"])
        x = st.x
        embed_rows(self.emb, prev, x)
        for i, layer in enumerate(self.layers):
            qkv, o, gu, down = layer["qkv"], layer["o"], layer["gu"], layer["down"]
            bias, gain = self.biases[i], self.gains[i]
            rmsnorm_rows(x, s.eps, b["n"])
            dense(qkv, b["n"], b["xq_d"], b["acc_qkv"], b["rs"], bias["qkv"], b["qkv"], False)
            llama_prep(b["qkv"], b["cos"], b["sin"], H, kv, hd, self.qscale, self.qk_limit, s.qk_norm,
                       gain["q"], gain["k"], s.eps, b["qq"], b["qs"], st.kt[i], st.ks[i], st.vq[i], st.vs[i],
                       slot, st.kraw[i])
            if sink:
                sink_keys(st.kraw[i], b["cos_s"], b["sin_s"], self.qk_limit, st.kt[i], st.ks[i])
            attend(b, st.kt[i], st.ks[i], st.vq[i], st.vs[i], filled, float(self.weight_sum))
            dense(o, b["y"], b["xq_a"], b["acc_d"], b["rs"], bias["o"], x, True)
            rmsnorm_rows(x, s.eps, b["n"])
            dense(gu, b["n"], b["xq_d"], b["acc_gu"], b["rs"], bias["gu"], b["gu"], False)
            swiglu_rows(b["gu"], s.ff, b["hid"])
            dense(down, b["hid"], b["xq_ff"], b["acc_d"], b["rs"], bias["down"], x, True)
        rmsnorm_rows(x, s.eps, b["n"])
        dense(self.head, b["n"], b["xq_d"], b["acc_out"], b["rs"], self.zero_bias, b["logits"], False)
        softmax_probs(b["logits"], b["probs"], FLOOR)
        st.pos += 1
        return b["probs"]
