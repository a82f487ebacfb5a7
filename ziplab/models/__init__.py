"""Byte predictors (LSTM, transformer, order-k context counts), their size ladder, checkpoints
and training. Importing this package does not import torch; the functions below do, lazily."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .ladder import LADDER, SHIPPED_SIZE, Rung, rung


def load_model(spec: str | Path | None = None, threads: int = 1, engine: str | None = None) -> Any:
    """Predictor for a size name (newest trained checkpoint), a checkpoint path, or None (shipped);
    `engine`: a portable engine by name (default: the newest)."""
    from .checkpoint import load_model as _load

    return _load(spec, threads=threads, engine=engine)


def train_model(config: Any, corpus: Any = None, on_step: Any = None) -> Any:
    """Train one ladder rung from a `ziplab.models.train.TrainConfig`."""
    from .train import train_model as _train

    return _train(config, corpus, on_step)


__all__ = ["LADDER", "SHIPPED_SIZE", "Rung", "load_model", "rung", "train_model"]
