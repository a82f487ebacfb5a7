"""Any language model as a compressor: score and code with the lab's models, any byte-level
torch module, and Hugging Face causal LMs from a local directory.

Importing this package imports neither torch nor transformers; `load_lm` does, for the model
it is given. A spec is a ladder size (newest trained checkpoint), a checkpoint path, "shipped",
or ``hf:DIR`` (a local Hugging Face model directory).
"""

from __future__ import annotations

from typing import Any

from .hf import PREFIX as HF_PREFIX
from .hf import is_hf_spec


def load_lm(spec: str | None) -> Any:
    """A `model.LanguageModel` for a spec (see the package docstring)."""
    from .model import HFLM, ByteModuleLM

    if is_hf_spec(spec):
        from .hf import load_hf

        return HFLM(load_hf(spec))
    from ..models.checkpoint import load_checkpoint, resolve
    from ..models.predictor import sha256_arrays

    path = resolve(None if spec in (None, "shipped") else spec)
    module, meta = load_checkpoint(path)
    sha = sha256_arrays({k: v.detach().numpy() for k, v in module.state_dict().items()})
    return ByteModuleLM(module, name=f"{meta.get('size', meta['family'])}@{path.stem}", family=meta["family"],
                        model_sha256=sha)


__all__ = ["HF_PREFIX", "is_hf_spec", "load_lm"]
