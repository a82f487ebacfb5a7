"""What a Llama-architecture checkpoint must be for the portable engine (`llama`): its config read
and checked before anything is quantised, the RoPE frequencies it implies, and the memory the
engine will need for it — so a hostile or unsupported directory is refused in one line, before
any allocation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import ZiplabError
from .int8mm import MAX_K

#: config.json model types of this architecture (SmolLM and SmolLM2 are "llama")
MODEL_TYPES = ("llama", "qwen2", "qwen3")
#: positions a lane attends to (a cache of this many slots; the float engine's window is the same)
MAX_CONTEXT = 2048
#: qk_limit = isqrt((2^24 - 1) // hd) stays >= 127 (int8 resolution) up to this head size
MAX_HEAD_DIM = 1024
#: ids the coder's distributions can cover (the lm header's bound)
MAX_VOCAB = 1 << 24
#: every weight, gain and bias within ±this (as lab checkpoints): activations then stay finite in
#: f64 through any depth (norms rescale the residual's input to each block), so no NaN or inf
#: can reach the arithmetic, whose results would otherwise depend on the CPU's NaN conventions
WEIGHT_BOUND = 65536.0


class LlamaEngineError(ZiplabError):
    """A Llama-architecture checkpoint the portable engine refuses (sizes past its bounds, bad values)."""


class LlamaUnsupported(LlamaEngineError):
    """A feature the portable engine does not compute (the float engine may still run the model)."""


@dataclass(frozen=True)
class LlamaSpec:
    d: int
    H: int
    kv: int
    hd: int
    ff: int
    n_layer: int
    vocab: int
    T: int
    eps: float
    rope_base: float
    rope_type: str
    rope_params: tuple
    qk_norm: bool
    tied: bool


def _int(config, key: str, default=None) -> int:
    value = getattr(config, key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise LlamaEngineError(f"config {key} = {value!r} is not a positive integer")
    return value


#: rotary scalings the engine computes: each only changes the frequencies, once, at build time
ROPE_TYPES = ("default", "linear", "llama3")
PI_40 = "3.141592653589793238462643383279502884197"


def _number(src: dict, key: str, lo: float, hi: float) -> float:
    value = src.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo < float(value) < hi:
        raise LlamaEngineError(f"config rope parameter {key} = {value!r} is not a number in ({lo:g}, {hi:g})")
    return float(value)


def _rope(config) -> tuple:
    """(rope type, theta, its parameters): the default, linear or llama3 scaling; any other
    (dynamic, yarn, longrope, ...) raises LlamaUnsupported."""
    rope = getattr(config, "rope_parameters", None) or {}
    scaling = getattr(config, "rope_scaling", None) or {}
    if not isinstance(rope, dict) or not isinstance(scaling, dict):
        raise LlamaEngineError("config rope parameters are not a mapping")
    src = {**scaling, **rope}
    kind = src.get("rope_type", src.get("type", "default")) or "default"
    if kind not in ROPE_TYPES:
        raise LlamaUnsupported(f"rope scaling {kind!r} is not computed by the portable engine "
                               f"(only {', '.join(ROPE_TYPES)})")
    if src.get("partial_rotary_factor", 1.0) not in (None, 1, 1.0):
        raise LlamaUnsupported("partial rotary embeddings are not computed by the portable engine")
    if "rope_theta" not in src:
        src["rope_theta"] = getattr(config, "rope_theta", 10000.0)
    base = _number(src, "rope_theta", 1.0, 1e12)
    if kind == "default":
        return kind, base, ()
    factor = _number(src, "factor", 0.0, 1e6)
    if kind == "linear":
        return kind, base, (factor,)
    low, high = _number(src, "low_freq_factor", 0.0, 1e6), _number(src, "high_freq_factor", 0.0, 1e6)
    old = _number(src, "original_max_position_embeddings", 0.0, 1e9)
    if not high > low:
        raise LlamaEngineError("config rope parameters: high_freq_factor must exceed low_freq_factor")
    return kind, base, (factor, low, high, old)


def rope_inv_freq(hd: int, kind: str, base: float, params: tuple) -> np.ndarray:
    """RoPE frequencies in 40-digit decimal, rounded to f64 once: `base^(-2i/hd)`, i < hd/2; linear:
    divided by factor; llama3 (as transformers computes it): wavelength w = 2π/f, w < old/high
    kept, w > old/low divided by factor, between them `(1 - s)·f/factor + s·f` with
    `s = (old/w - low)/(high - low)`."""
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = 40
        ln_base = Decimal(repr(float(base))).ln()
        dec = [(-ln_base * (2 * i) / hd).exp() for i in range(hd // 2)]
        p = [Decimal(repr(float(v))) for v in params]
        if kind == "linear":
            dec = [f / p[0] for f in dec]
        elif kind == "llama3":
            factor, low, high, old = p
            out = []
            for f in dec:
                w = 2 * Decimal(PI_40) / f
                if w < old / high:
                    out.append(f)
                elif w > old / low:
                    out.append(f / factor)
                else:
                    smooth = (old / w - low) / (high - low)
                    out.append((1 - smooth) * f / factor + smooth * f)
            dec = out
        return np.array([float(f) for f in dec], dtype=np.float64)


def llama_spec(module) -> LlamaSpec:
    """A loaded Hugging Face module's shape for the engine, checked against every bound before
    anything is allocated; LlamaUnsupported / LlamaEngineError in one line otherwise."""
    c = module.config
    mt = getattr(c, "model_type", None)
    if mt not in MODEL_TYPES:
        raise LlamaUnsupported(f"model type {mt!r} is not a Llama-architecture type ({', '.join(MODEL_TYPES)})")
    act = getattr(c, "hidden_act", None)
    if act != "silu":
        raise LlamaUnsupported(f"activation {act!r} is not SiLU")
    if getattr(c, "use_sliding_window", False):
        raise LlamaUnsupported("sliding-window attention is not computed by the portable engine")
    types = getattr(c, "layer_types", None)
    if types is not None and (not isinstance(types, (list, tuple)) or any(t != "full_attention" for t in types)):
        raise LlamaUnsupported("layers other than full attention are not computed by the portable engine")
    d, H, n_layer = _int(c, "hidden_size"), _int(c, "num_attention_heads"), _int(c, "num_hidden_layers")
    kv = _int(c, "num_key_value_heads", H) if getattr(c, "num_key_value_heads", None) is not None else H
    hd = getattr(c, "head_dim", None)
    hd = _int(c, "head_dim") if hd is not None else d // H
    ff, vocab = _int(c, "intermediate_size"), _int(c, "vocab_size")
    if H % kv:
        raise LlamaEngineError(f"{H} query heads do not split into {kv} key/value groups")
    if hd % 2 or hd > MAX_HEAD_DIM or hd < 2:
        raise LlamaEngineError(f"head size {hd} is odd or past the portable engine's bound {MAX_HEAD_DIM}")
    for what, k in (("width", d), ("attention width", H * hd), ("MLP width", ff)):
        if k > MAX_K:
            raise LlamaEngineError(f"{what} {k} is past the int32-exact bound {MAX_K}")
    if vocab > MAX_VOCAB:
        raise LlamaEngineError(f"vocabulary {vocab} is past {MAX_VOCAB}")
    eps = getattr(c, "rms_norm_eps", None)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0.0 < float(eps) < 1.0:
        raise LlamaEngineError(f"config rms_norm_eps = {eps!r} is not in (0, 1)")
    kind, base, params = _rope(c)
    ctx = getattr(c, "max_position_embeddings", None)
    ctx = ctx if isinstance(ctx, int) and not isinstance(ctx, bool) and ctx > 0 else MAX_CONTEXT
    T = max(2, min(ctx, MAX_CONTEXT))
    layer = module.model.layers[0]
    qk_norm = hasattr(layer.self_attn, "q_norm")
    tied = module.lm_head.weight.data_ptr() == module.model.embed_tokens.weight.data_ptr()
    return LlamaSpec(d=d, H=H, kv=kv, hd=hd, ff=ff, n_layer=n_layer, vocab=vocab, T=T, eps=float(eps),
                     rope_base=base, rope_type=kind, rope_params=params, qk_norm=qk_norm, tied=tied)


def state_bytes(spec: LlamaSpec, lanes: int) -> int:
    """Memory of `lanes` lanes' state: integer keys and values (int16) and their f64 steps per
    slot, the sink's key, scratch rows and the probability rows."""
    L, s = lanes, spec
    cache = s.n_layer * L * s.kv * (s.T * (2 * s.hd * 2 + 2 * 8) + s.hd * 8)
    rows = L * (8 * s.d * 8 + 2 * s.ff * 24 + s.H * s.hd * 24 + s.H * s.T * 40 + s.vocab * (4 + 8 + 4))
    return cache + rows


def build_bytes(spec: LlamaSpec) -> int:
    """Memory of the quantised model (int8 weights, their float32 copies for the fp32 kernel, the
    float32 embedding) plus the largest matrix's transient f64 copies while it is quantised."""
    s = spec
    per_layer = s.d * (s.H + 2 * s.kv) * s.hd + s.H * s.hd * s.d + 3 * s.d * s.ff
    head = s.d * s.vocab
    largest = max(head, s.d * 2 * s.ff, s.d * (s.H + 2 * s.kv) * s.hd)
    return 5 * (s.n_layer * per_layer + head) + 4 * s.vocab * s.d + 32 * largest
