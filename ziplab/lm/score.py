"""Bits per byte of a language model on a text, by cross-entropy over sliding windows.

The text is tokenized exactly (`tokens`), the start token is put in front, and windows of
`window` positions advance by `stride`: the first window scores all its tokens, each later one
only its last `stride` (which thus see at least window - stride tokens of context). Huang et
al. (2024), "Compression Represents Intelligence Linearly", use window 1900 and stride 512;
those are the defaults. A window never exceeds the model's own context (see `effective`). Token bits are summed
and divided by the text's bytes: bits per byte of the original, whatever the tokenizer.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from ..errors import ParameterError
from ..hardware import restores_torch_state
from .model import LanguageModel

#: Huang et al. 2024's setting
DEFAULT_WINDOW = 1900
DEFAULT_STRIDE = 512
LN2 = math.log(2.0)


@dataclass(frozen=True)
class ScoreSettings:
    window: int = DEFAULT_WINDOW
    stride: int = DEFAULT_STRIDE
    batch: int = 1  # windows per forward pass
    device: str = "cpu"
    threads: int | None = None  # torch threads (None: torch's default)


@dataclass
class ScoreResult:
    model: str
    family: str
    bytes: int
    tokens: int
    bits: float
    bpb: float
    bits_per_token: float
    window: int
    stride: int
    params: int
    non_embedding_params: int
    model_sha256: str
    tokenizer_sha256: str
    seconds: float
    device: str

    def to_dict(self) -> dict:
        return asdict(self)


def windows(n_positions: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first scored target) for a sequence of n_positions ids (start token first):
    the window feeds ids[begin:end] and scores targets ids[first..end-1] (index = position)."""
    out = []
    begin, scored = 0, 0  # targets 1..scored are done
    while scored < n_positions - 1:
        end = min(begin + window, n_positions)
        out.append((begin, end, scored + 1))
        scored = end - 1
        begin += stride
    return out


def effective(model: LanguageModel, settings: ScoreSettings) -> tuple[int, int]:
    """Window clamped to the model's context; a clamped window keeps the asked stride's share of
    it (1900/512 on a 128-position model: 128/34), so every scored token keeps most of a window
    of context instead of one token; a stride never exceeds window - 1."""
    if settings.window < 2 or settings.stride < 1:
        raise ParameterError("window must be at least 2 and stride at least 1")
    window = min(settings.window, model.context)
    stride = settings.stride
    if window < settings.window:
        stride = max(1, round(stride * window / settings.window))
    return window, min(stride, window - 1)


@restores_torch_state
def score(model: LanguageModel, data: bytes, settings: ScoreSettings = ScoreSettings(),
          progress: Callable[[int], None] | None = None, on_total: Callable[[int], None] | None = None) -> ScoreResult:
    """Cross-entropy bits per byte of `data` under `model`. `on_total(n_targets)` is called once
    the text is tokenized; `progress(k)` after each forward pass with the targets it scored.
    `settings.threads` holds for this call; the caller's torch threads are restored after it."""
    import torch
    import torch.nn.functional as F

    if not data:
        raise ParameterError("nothing to score: the text is empty")
    if settings.threads:
        torch.set_num_threads(int(settings.threads))
    t0 = time.perf_counter()
    ids = np.concatenate([[model.tokens.start], model.tokens.encode(data)]).astype(np.int64)
    window, stride = effective(model, settings)
    plan = windows(len(ids), window, stride)
    if on_total is not None:
        on_total(len(ids) - 1)
    device = torch.device(settings.device)
    if device.type != "cpu" and not (device.type == "cuda" and torch.cuda.is_available()):
        raise ParameterError(f"device {settings.device!r} is not available here")
    model.module.to(device)
    seq = torch.from_numpy(ids).to(device)
    bits = 0.0
    try:
        with torch.inference_mode():
            i = 0
            while i < len(plan):
                length = plan[i][1] - plan[i][0]
                group = [plan[i]]
                while (len(group) < settings.batch and i + len(group) < len(plan)
                       and plan[i + len(group)][1] - plan[i + len(group)][0] == length):
                    group.append(plan[i + len(group)])
                x = torch.stack([seq[b:e] for b, e, _ in group])
                logits, _ = model.forward_ids(x)
                for row, (b, e, first) in enumerate(group):
                    lo = first - b - 1  # logits at position p predict id p + 1
                    target = seq[first:e]
                    bits += F.cross_entropy(logits[row, lo:e - b - 1].double(), target, reduction="sum").item() / LN2
                    if progress is not None:
                        progress(e - first)
                i += len(group)
    finally:
        model.module.to("cpu")
    n_tokens = len(ids) - 1
    return ScoreResult(model=model.name, family=model.family, bytes=len(data), tokens=n_tokens, bits=bits,
                       bpb=bits / len(data), bits_per_token=bits / n_tokens, window=window, stride=stride,
                       params=model.num_params(), non_embedding_params=model.non_embedding_params(),
                       model_sha256=model.model_sha256, tokenizer_sha256=model.tokenizer_sha256,
                       seconds=round(time.perf_counter() - t0, 3), device=settings.device)
