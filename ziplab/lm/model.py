"""One interface over every model ziplab can score or code with: `LanguageModel`.

A language model here is a torch module that maps a window of token ids [B, T] to next-token
logits [B, T, V], plus the tokens it reads (`tokens.Tokens`), how many positions it may see
(`context`) and its parameter counts. Two adapters provide it:

- `ByteModuleLM` wraps any byte-level torch module that follows the lab's contract
  (`models.base.ByteModel`): ``forward(idx) -> logits`` or ``(logits, state)``, idx int64 in
  0..256 where 256 is BOS, logits over the 256 bytes; optional `context` (or `cfg.context`)
  and `non_embedding_params()`. The lab's LSTMs and transformers follow it as they are.
- `HFLM` wraps a checked Hugging Face directory (`hf.HFModel`).

Float inference is reproducible only on the machine (and library versions, thread count) that
ran it; `environment()` names those, for the `lm` codec's header.
"""

from __future__ import annotations

import platform
from abc import ABC, abstractmethod
from typing import Any

from ..errors import ParameterError
from .tokens import ByteTokens, Tokens


class LanguageModel(ABC):
    """What scoring and coding use; subclasses set the fields and `forward_ids`."""

    name: str = ""
    family: str = ""
    tokens: Tokens
    context: int = 0
    model_sha256: str = ""
    tokenizer_sha256: str = ""
    module: Any = None

    @abstractmethod
    def forward_ids(self, ids: Any, past: Any = None, keep: bool = False) -> tuple[Any, Any]:
        """(logits [B, T, tokens.vocab] float32, cache) for ids [B, T]. `past` is the model's cache
        of earlier positions where it has one (None: start of a window); `keep` asks for the
        cache to be returned (coding steps), which models without one ignore."""

    def num_params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def non_embedding_params(self) -> int:
        return self.num_params()


class ByteModuleLM(LanguageModel):
    """Any torch module that follows the byte-level contract (module docstring)."""

    family = "bytes"

    def __init__(self, module: Any, name: str = "module", context: int | None = None, family: str | None = None,
                 model_sha256: str = "") -> None:
        self.module = module.eval()
        self.name = name
        self.tokens = ByteTokens()
        self.family = family or getattr(module, "family", "") or "bytes"
        cfg = getattr(module, "cfg", None)
        found = context or getattr(module, "context", None) or getattr(cfg, "context", None)
        if not isinstance(found, int) or found < 2:
            raise ParameterError(f"{name}: the module names no context length (give context=...)")
        self.context = int(found)
        self.model_sha256 = model_sha256
        self.tokenizer_sha256 = self.tokens.sha256

    def forward_ids(self, ids: Any, past: Any = None, keep: bool = False) -> tuple[Any, Any]:
        out = self.module(ids)
        logits = out[0] if isinstance(out, tuple) else out
        return logits[..., :256].float(), None

    def non_embedding_params(self) -> int:
        count = getattr(self.module, "non_embedding_params", None)
        return int(count()) if callable(count) else self.num_params()


class HFLM(LanguageModel):
    """A Hugging Face causal LM (see `hf.load_hf`), with its key/value cache for coding."""

    def __init__(self, model: Any) -> None:
        self.hf = model
        self.module = model.module
        self.name = model.name
        self.family = str(model.meta.get("family_label") or model.model_type)
        self.tokens = model.tokens
        self.context = int(model.context)
        self.model_sha256 = model.model_sha256
        self.tokenizer_sha256 = model.tokenizer_sha256

    def forward_ids(self, ids: Any, past: Any = None, keep: bool = False) -> tuple[Any, Any]:
        """`keep`: return the key/value cache (coding); scoring runs without one."""
        if not keep and past is None:
            out = self.module(input_ids=ids, use_cache=False)
            return out.logits[..., : self.tokens.vocab].float(), None
        if past is None:
            from transformers import DynamicCache

            past = DynamicCache()
        out = self.module(input_ids=ids, use_cache=True, **{self._cache_arg: past})
        cache = getattr(out, "cache", None) if self._cache_arg == "cache" else out.past_key_values
        return out.logits[..., : self.tokens.vocab].float(), cache

    @property
    def _cache_arg(self) -> str:
        """transformers 5.24 renamed past_key_values to cache; older versions know only the former."""
        import inspect

        if not hasattr(self, "_arg"):
            self._arg = "cache" if "cache" in inspect.signature(self.module.forward).parameters else "past_key_values"
        return self._arg

    def num_params(self) -> int:
        return self.hf.num_params()

    def non_embedding_params(self) -> int:
        return self.hf.non_embedding_params()


def environment(device: str = "cpu", dtype: str = "float32", threads: int = 1) -> str:
    """Where float inference gives the same bits: architecture, torch's kernel level, the CPU model
    (vendor BLAS picks code paths by it), libraries, dtype, threads. Two runs that differ here
    may differ in the last bits of a probability."""
    import torch

    from ..hardware import cpu_name, package_version, torch_capability

    parts = [f"{platform.machine()} {torch_capability() or '?'} {cpu_name()}"[:120], f"torch {torch.__version__}",
             f"transformers {package_version('transformers')}", f"{device} {dtype}", f"threads {threads}"]
    return "; ".join(parts)
