"""Predictors that code token ids: a portable one where the integer engine runs the model, a
float one (with its environment) everywhere else.

Both follow the range coder's predictor contract (`models.predictor.Predictor`: `start(lanes)`,
`step(state, prev) -> probabilities [lanes, vocab]`), so the `lm` codec drives them through the
same lockstep lanes as `nn`. Which engine a model gets:

- a lab checkpoint, or a Hugging Face directory that is an exported lab transformer
  (`export.lab_transformer` accepts it): the portable integer engine, bit-identical on every CPU;
- a Hugging Face Llama-architecture directory (model_type llama, qwen2, qwen3: RMSNorm, rotary,
  SwiGLU, grouped queries; tied or untied head) with a byte-level BPE: the portable Llama engine
  (`models.portable.llama`, engine `llama-int8x8-v1`), bit-identical on every CPU, unless its
  config uses a feature that engine does not compute (dynamic/yarn rope scaling, sliding windows);
- any other Hugging Face causal LM: `FloatPredictor`, float32 torch on the CPU with one thread.
  Its bits are reproducible only where `model.environment()` is the same, which the header
  records and decoding checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..models.predictor import check_prev
from .tokens import ByteTokens, Tokens

FLOAT_ENGINE = "torch-float32-v1"
#: longest window a float model keeps in its cache while coding; then it restarts from the last half
MAX_CODING_CONTEXT = 2048


@dataclass
class CodingModel:
    """Everything the `lm` codec needs about one model, and what its header records."""

    name: str
    predictor: Any
    tokens: Tokens
    engine: str
    portable: bool
    model_sha256: str
    tokenizer_sha256: str
    quant_sha256: str | None = None
    context: int = 0
    keep: int = 0


@dataclass
class FloatState:
    lanes: int
    cache: Any
    filled: int  # positions in the cache
    history: np.ndarray  # [lanes, keep] the last ids fed, newest last


class FloatPredictor:
    """A token model stepped through its key/value cache: one position per step for all lanes.
    When the cache holds `context` positions it is rebuilt from the last `keep` ids, the same
    way at encode and decode time. Logits are float32 torch on the CPU with `threads` threads."""

    def __init__(self, lm: Any, context: int, keep: int, threads: int = 1) -> None:
        import torch

        self.lm, self.context, self.keep, self.threads = lm, int(context), int(keep), int(threads)
        self._torch = torch
        self.vocab = lm.tokens.vocab

    def start(self, lanes: int) -> FloatState:
        if self._torch.get_num_threads() != self.threads:
            self._torch.set_num_threads(self.threads)
        return FloatState(int(lanes), None, 0, np.zeros((int(lanes), 0), dtype=np.int64))

    def step(self, state: FloatState, prev: np.ndarray) -> tuple[np.ndarray, FloatState]:
        torch = self._torch
        prev = check_prev(prev, state.lanes)
        state.history = np.concatenate([state.history, prev[:, None]], axis=1)[:, -self.keep:]
        with torch.inference_mode():
            if state.cache is None or state.filled >= self.context:
                ids = torch.from_numpy(np.ascontiguousarray(state.history))
                logits, state.cache = self.lm.forward_ids(ids, None, keep=True)
                state.filled = ids.shape[1]
            else:
                logits, state.cache = self.lm.forward_ids(torch.from_numpy(prev[:, None].copy()), state.cache, keep=True)
                state.filled += 1
            probs = torch.softmax(logits[:, -1].double(), dim=-1).float().numpy()
        return probs, state


def portable_engine(spec: str, engine: str | None = None, byte_models_only: bool = False) -> Any:
    """A portable predictor (and the checked directory, or None for a lab checkpoint) for `spec`,
    or None where no portable engine runs the model. `engine`: the portable engine to build (a
    decoder asks for the one its header names; None or an unknown name: the newest).
    `byte_models_only`: only lab byte models (what `nn` codes), never a token model."""
    from ..models.portable import PortablePredictor
    from .hf import is_hf_spec, load_hf

    if not is_hf_spec(spec):
        from ..models.checkpoint import load_model

        return load_model(None if spec == "shipped" else spec, threads=1, engine=engine), None
    hf = load_hf(spec)
    if not (hf.meta or {}).get("byte_vocab"):
        return (None if byte_models_only else llama_engine(hf, engine)), hf
    from .export import lab_meta, lab_transformer

    model = lab_transformer(hf)
    predictor = PortablePredictor(model, name=hf.name, threads=1, engine=engine)
    predictor.meta = lab_meta(hf, model)
    return predictor, hf


def llama_engine(hf: Any, engine: str | None = None) -> Any:
    """The portable Llama engine for a Llama-architecture directory (`models.portable.llama`), or
    None: another architecture, a feature that engine does not compute (`LlamaUnsupported`: the
    float engine runs it), or a decoder asking for the float engine (a file coded before the
    Llama engine existed keeps decoding on the engine that wrote it)."""
    from ..models.portable import PortablePredictor, llama
    from ..models.portable.llama_spec import MODEL_TYPES, LlamaUnsupported

    if engine == FLOAT_ENGINE or hf.model_type not in MODEL_TYPES:
        return None
    try:
        core = llama.PortableLlama(hf.module, engine if engine in llama.ENGINES else llama.ENGINE)
    except LlamaUnsupported:
        return None
    config = dict(core.dims())
    predictor = PortablePredictor.from_engine(core, hf.name, config, (hf.num_params(), hf.non_embedding_params()),
                                              load_float=lambda: hf.module)
    predictor.meta = {"family": "llama", "model_type": hf.model_type, "config": config}
    return predictor


def coding_model(spec: str, engine: str | None = None) -> CodingModel:
    """The model `spec` names, with the engine it codes on (module docstring); `engine` as in
    `portable_engine`."""
    from .hf import is_hf_spec
    from .model import HFLM

    portable, hf = portable_engine(spec, engine)
    if portable is not None:
        model_sha = hf.model_sha256 if hf is not None else portable.weights_sha256
        tokens = hf.tokens if hf is not None else ByteTokens()
        return CodingModel(name=spec, predictor=portable, tokens=tokens, engine=portable.engine_name, portable=True,
                           model_sha256=model_sha, tokenizer_sha256=tokens.sha256, quant_sha256=portable.quant_sha256)
    assert is_hf_spec(spec) and hf is not None
    lm = HFLM(hf)
    context = max(2, min(lm.context, MAX_CODING_CONTEXT))
    keep = max(1, context // 2)
    return CodingModel(name=spec, predictor=FloatPredictor(lm, context, keep), tokens=lm.tokens, engine=FLOAT_ENGINE,
                       portable=False, model_sha256=lm.model_sha256, tokenizer_sha256=lm.tokenizer_sha256,
                       context=context, keep=keep)
