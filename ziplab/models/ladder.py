"""Named size ladders: each family grows ~x4 in non-embedding parameters per rung, from under
10K to several million, so a sweep of one command per rung traces a scaling curve.

Each rung fixes the architecture (config, context T) and the training settings that suit its
size: smaller models take larger learning rates; batch is in windows of T bytes. LSTM windows
stay at 128 bytes on every rung: at a fixed byte budget, 256-byte windows halve the optimiser
steps, and l4 trained that way scored 2.74 bpb against 2.52 with 128 (12 MB of gutenberg).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ZiplabError

#: the size `load_model(None)` falls back to when no shipped file exists
SHIPPED_SIZE = "l4"


class UnknownSizeError(ZiplabError):
    """A model size that is not on any ladder."""


@dataclass(frozen=True)
class Rung:
    size: str
    family: str  # "transformer" | "lstm"
    config: dict[str, Any] = field(hash=False)
    lr: float = 2e-3
    batch: int = 32  # windows per optimiser step
    warmup: int = 100  # optimiser steps

    @property
    def context(self) -> int:
        return int(self.config["context"])

    def trained_by(self, meta: dict, lr: float | None = None) -> bool:
        """Whether a checkpoint's metadata says it was trained with this rung's recipe (at `lr`,
        by default the rung's own), so a sweep may reuse it; a retuned rung retrains.
        (Checkpoints older than the warmup field match on the rest.)"""
        config = meta.get("config", {})
        return (meta.get("family") == self.family
                and all(config.get(k) == v for k, v in self.config.items())
                and meta.get("lr") == (self.lr if lr is None else lr) and meta.get("batch") == self.batch
                and meta.get("warmup", self.warmup) == self.warmup)

    @property
    def recipe(self) -> dict:
        """Everything but the learning rate that makes a run of this rung what it is."""
        return {"config": dict(self.config), "batch": self.batch, "warmup": self.warmup}

    def build(self):
        """A freshly initialised torch module for this rung (imports torch)."""
        return build_model(self.family, self.config)


def _t(n_layer: int, n_embd: int, n_head: int, context: int) -> dict:
    return {"n_layer": n_layer, "n_embd": n_embd, "n_head": n_head, "context": context}


def _l(n_layer: int, n_hidden: int, context: int) -> dict:
    return {"n_layer": n_layer, "n_hidden": n_hidden, "n_embd": n_hidden, "context": context, "emb_std": 1.0}


LADDER: dict[str, Rung] = {
    r.size: r
    for r in [
        Rung("t0", "transformer", _t(1, 12, 2, 64), lr=5e-3, batch=32, warmup=50),
        Rung("t1", "transformer", _t(1, 24, 2, 64), lr=4e-3, batch=32, warmup=50),
        Rung("t2", "transformer", _t(2, 32, 2, 64), lr=3e-3, batch=32, warmup=50),
        Rung("t3", "transformer", _t(2, 64, 2, 128), lr=2e-3, batch=32, warmup=100),
        Rung("t4", "transformer", _t(4, 96, 3, 128), lr=1.5e-3, batch=32, warmup=100),
        Rung("t5", "transformer", _t(6, 160, 5, 128), lr=1.2e-3, batch=32, warmup=100),
        Rung("t6", "transformer", _t(8, 256, 8, 256), lr=6e-4, batch=24, warmup=300),
        Rung("l0", "lstm", _l(2, 12, 128), lr=1e-2, batch=32, warmup=50),
        Rung("l1", "lstm", _l(2, 24, 128), lr=8e-3, batch=32, warmup=50),
        Rung("l2", "lstm", _l(2, 52, 128), lr=6e-3, batch=32, warmup=50),
        Rung("l3", "lstm", _l(2, 108, 128), lr=4e-3, batch=32, warmup=100),
        Rung("l4", "lstm", _l(2, 224, 128), lr=3e-3, batch=32, warmup=100),
        Rung("l5", "lstm", _l(2, 448, 128), lr=2e-3, batch=32, warmup=200),
        Rung("l6", "lstm", _l(2, 896, 128), lr=1.2e-3, batch=32, warmup=300),
    ]
}


def rung(size: str) -> Rung:
    try:
        return LADDER[size]
    except KeyError:
        raise UnknownSizeError(f"unknown model size {size!r} (known: {', '.join(LADDER)})") from None


#: config keys older checkpoints carry that no longer mean anything (the float step's dtype)
LEGACY_CONFIG_KEYS = ("step_dtype",)


#: family -> (module, model class, config class), imported on first use (they import torch)
FAMILIES: dict[str, tuple[str, str, str]] = {
    "lstm": ("ziplab.models.lstm", "LSTM", "LSTMConfig"),
    "transformer": ("ziplab.models.transformer", "Transformer", "TransformerConfig"),
}


def build_model(family: str, config: dict):
    """Module for a family + config dict (as stored in checkpoints); extra keys are rejected."""
    import importlib

    if family not in FAMILIES:
        raise UnknownSizeError(f"unknown model family {family!r} (known: {', '.join(FAMILIES)})")
    module, model_cls, config_cls = FAMILIES[family]
    mod = importlib.import_module(module)
    cfg = {k: v for k, v in config.items() if k not in ("family", *LEGACY_CONFIG_KEYS)}
    return getattr(mod, model_cls)(getattr(mod, config_cls)(**cfg))
