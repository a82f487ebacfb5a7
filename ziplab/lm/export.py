"""The lab's transformer as a Hugging Face model directory, and back.

The lab's byte transformer (pre-norm blocks, LayerNorm without bias, rotary positions split in
halves, grouped-query attention, exact-GELU MLP, tied embeddings) is, layer for layer, a
`Starcoder2ForCausalLM` with `use_bias=False`, `hidden_act="gelu"`, zero LayerNorm biases and
a 257-symbol vocabulary (the 256 bytes, then BOS = 256). GPT-2's own architecture has learned
absolute positions, so it cannot hold a rotary model exactly; Llama's has RMSNorm and SwiGLU.

`export_checkpoint` writes config.json (with a "ziplab" record: byte vocabulary, the lab config,
the checkpoint's metadata) and model.safetensors in float32 (the checkpoint's float16 values,
widened exactly). `lab_transformer` reverses it for any directory of that exact shape, so the
portable integer engine can code with it: the same weights give the same `nn` bytes.
LSTMs have no Hugging Face counterpart and are refused.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import ZiplabError
from ..models.predictor import BOS, VOCAB_IN

MODEL_TYPE = "starcoder2"
LN_EPS = 1e-5


class ExportError(ZiplabError):
    """A model that cannot be written as (or read back from) a Hugging Face directory."""


def _hf_config(cfg: Any, meta: dict) -> Any:
    from transformers import Starcoder2Config

    config = Starcoder2Config(
        vocab_size=VOCAB_IN, hidden_size=cfg.n_embd, intermediate_size=cfg.mlp_ratio * cfg.n_embd,
        num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head, num_key_value_heads=cfg.n_kv_head,
        hidden_act="gelu", max_position_embeddings=cfg.context, norm_epsilon=LN_EPS, use_bias=False,
        tie_word_embeddings=True, sliding_window=None, bos_token_id=BOS, eos_token_id=None,
        rope_parameters={"rope_type": "default", "rope_theta": float(cfg.rope_base)},
        embedding_dropout=0.0, residual_dropout=0.0, attention_dropout=0.0)
    config.ziplab = {"byte_vocab": True, "bos": BOS, "family": "transformer", "lab_config": cfg.to_dict(),
                     "checkpoint_meta": meta}
    return config


def hf_state(model: Any) -> dict:
    """The lab transformer's tensors under Starcoder2's names (float32, contiguous)."""
    import torch

    cfg = model.cfg
    d, kvd = cfg.n_embd, cfg.n_kv_head * cfg.head_dim
    f = lambda t: t.detach().float().contiguous().clone()  # noqa: E731
    zeros = lambda n: torch.zeros(n, dtype=torch.float32)  # noqa: E731
    state = {"model.embed_tokens.weight": f(model.wte.weight), "model.norm.weight": f(model.ln_f.weight),
             "model.norm.bias": zeros(d)}
    for i, b in enumerate(model.blocks):
        p = f"model.layers.{i}."
        q, k, v = b.qkv.weight.split([d, kvd, kvd], dim=0)
        state.update({
            p + "input_layernorm.weight": f(b.ln1.weight), p + "input_layernorm.bias": zeros(d),
            p + "self_attn.q_proj.weight": f(q), p + "self_attn.k_proj.weight": f(k),
            p + "self_attn.v_proj.weight": f(v), p + "self_attn.o_proj.weight": f(b.proj.weight),
            p + "post_attention_layernorm.weight": f(b.ln2.weight), p + "post_attention_layernorm.bias": zeros(d),
            p + "mlp.c_fc.weight": f(b.fc.weight), p + "mlp.c_proj.weight": f(b.out.weight),
        })
    return state


def export_checkpoint(spec: str | None, out: Path) -> Path:
    """Write the lab checkpoint `spec` (size, path or None = shipped) as an HF directory `out`."""
    from .hf import require_hf

    require_hf()
    from safetensors.torch import save_file

    from ..models.checkpoint import load_checkpoint, resolve

    path = resolve(spec)
    model, meta = load_checkpoint(path)
    if meta.get("family") != "transformer":
        raise ExportError(f"{path}: a {meta.get('family')} has no Hugging Face counterpart; "
                          "only the lab's transformers export")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out}: exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    config = _hf_config(model.cfg, meta)
    config.save_pretrained(str(out))
    save_file(hf_state(model), str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def _check(cond: bool, root: Any, what: str) -> None:
    if not cond:
        raise ExportError(f"{root}: not the lab transformer's shape ({what}), so the portable engine cannot run it")


def lab_transformer(hf: Any) -> Any:
    """The lab `Transformer` holding an `hf.HFModel`'s exact weights, or ExportError saying which
    part of the directory does not fit the lab's architecture."""
    import torch

    from ..models.transformer import Transformer, TransformerConfig

    c, root = hf.module.config, hf.path
    _check(hf.model_type == MODEL_TYPE, root, f"model_type {hf.model_type!r}, not {MODEL_TYPE!r}")
    _check(c.vocab_size == VOCAB_IN and bool(getattr(c, "tie_word_embeddings", False)), root,
           f"vocabulary {c.vocab_size} tied={getattr(c, 'tie_word_embeddings', None)}, not 257 tied")
    _check(c.hidden_act == "gelu" and not c.use_bias and getattr(c, "sliding_window", None) is None, root,
           "activation, biases or sliding window")
    _check(math.isclose(float(c.norm_epsilon), LN_EPS, rel_tol=0, abs_tol=0), root, f"norm epsilon {c.norm_epsilon}")
    rope = getattr(c, "rope_parameters", None) or {}
    _check(rope.get("rope_type", "default") == "default", root, f"rope type {rope.get('rope_type')}")
    d, ff = int(c.hidden_size), int(c.intermediate_size)
    _check(ff % d == 0, root, "intermediate size not a multiple of the width")
    try:
        cfg = TransformerConfig(n_layer=int(c.num_hidden_layers), n_embd=d, n_head=int(c.num_attention_heads),
                                n_kv_head=int(c.num_key_value_heads), context=int(c.max_position_embeddings),
                                mlp_ratio=ff // d, rope_base=float(rope.get("rope_theta", 10000.0)))
        model = Transformer(cfg)
    except (ValueError, TypeError) as exc:
        raise ExportError(f"{root}: not the lab transformer's shape ({exc})") from None
    src = {k: v.detach().float() for k, v in hf.module.state_dict().items()}
    for name, tensor in src.items():
        if name.endswith("layernorm.bias") or name == "model.norm.bias":
            _check(bool((tensor == 0).all()), root, f"{name} is not zero")
    ours = hf_state(model)
    missing = [k for k in ours if k not in src]
    _check(not missing, root, f"no tensor {missing[0] if missing else ''}")
    state = {"wte.weight": src["model.embed_tokens.weight"], "ln_f.weight": src["model.norm.weight"]}
    for i in range(cfg.n_layer):
        p = f"model.layers.{i}."
        state.update({
            f"blocks.{i}.ln1.weight": src[p + "input_layernorm.weight"],
            f"blocks.{i}.qkv.weight": torch.cat([src[p + f"self_attn.{x}_proj.weight"] for x in "qkv"], dim=0),
            f"blocks.{i}.proj.weight": src[p + "self_attn.o_proj.weight"],
            f"blocks.{i}.ln2.weight": src[p + "post_attention_layernorm.weight"],
            f"blocks.{i}.fc.weight": src[p + "mlp.c_fc.weight"],
            f"blocks.{i}.out.weight": src[p + "mlp.c_proj.weight"],
        })
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ExportError(f"{root}: {str(exc).splitlines()[0]}") from None
    return model.eval()


def lab_meta(hf: Any, model: Any) -> dict:
    """Checkpoint-style metadata for a model read back from a directory (family, size, config)."""
    meta = dict((hf.meta or {}).get("checkpoint_meta") or {})
    meta.update(family="transformer", config=model.cfg.to_dict())
    return json.loads(json.dumps(meta))
