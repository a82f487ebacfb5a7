"""The predictor protocol: the only thing a range coder needs from a model.

A predictor steps L independent byte streams ("lanes") in lockstep. `step(state, prev)` takes
each lane's previous byte (256 = BOS on the first step) and returns one probability row per
lane. Encoder and decoder must see bitwise identical rows, so every implementation is a pure
function of (weights, inputs so far, lane count, thread count): fixed shapes, explicit thread
counts, no data-dependent algorithm choices.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

BOS = 256
VOCAB_IN = 257  # 256 bytes + BOS
VOCAB_OUT = 256
#: probability mass spread uniformly over all 256 bytes, so no byte ever costs more than ~30 bits
FLOOR = 2.0**-20


@runtime_checkable
class Predictor(Protocol):
    name: str
    config: dict

    @property
    def weights_sha256(self) -> str: ...

    def num_params(self) -> int: ...

    def non_embedding_params(self) -> int: ...

    def start(self, lanes: int) -> Any: ...

    def step(self, state: Any, prev: np.ndarray) -> tuple[np.ndarray, Any]: ...


def floor_probs_np(p: np.ndarray) -> np.ndarray:
    """Mix in a tiny uniform and renormalise in float32: strictly positive, sums to ~1."""
    p = p.astype(np.float32, copy=False)
    p *= np.float32(1.0 - FLOOR)
    p += np.float32(FLOOR / 256.0)
    p /= p.sum(axis=1, keepdims=True, dtype=np.float32)
    return np.ascontiguousarray(p, dtype=np.float32)


def check_prev(prev: np.ndarray, lanes: int) -> np.ndarray:
    """Validate the caller's prev array once per step: wrong shapes are caller bugs worth a clear error."""
    prev = np.asarray(prev)
    if prev.shape != (lanes,):
        raise ValueError(f"prev has shape {prev.shape}, expected ({lanes},): the batch shape is fixed at start()")
    return prev.astype(np.int64, copy=False)


def sha256_arrays(named: dict[str, np.ndarray]) -> str:
    """Hash of exact weights: names, dtypes, shapes and raw bytes, in sorted name order."""
    h = hashlib.sha256()
    for key in sorted(named):
        a = np.ascontiguousarray(named[key])
        h.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@dataclass
class TorchState:
    """Per-file stepping state of a torch model: lane count, the model's recurrent/cache state,
    and a preallocated input tensor. Mutated in place by step(); returned for protocol symmetry."""

    lanes: int
    inner: Any
    prev: Any  # torch.LongTensor [lanes]
    steps: int = 0


class TorchPredictor:
    """Adapts a torch module with `init_state(lanes)` / `step_logits(state, prev)` to the protocol.

    Thread count is pinned on every step because torch's thread pool is process-global and a
    different count can change reduction order (and so low bits of every probability)."""

    def __init__(self, model: Any, name: str, threads: int = 1) -> None:
        import torch

        self.model = model.eval()
        self.name = name
        self.threads = int(threads)
        self.config = model.cfg.to_dict()
        self._torch = torch
        self._sha: str | None = None

    @property
    def weights_sha256(self) -> str:
        if self._sha is None:
            self._sha = sha256_arrays({k: v.detach().cpu().numpy() for k, v in self.model.state_dict().items()})
        return self._sha

    def num_params(self) -> int:
        return self.model.num_params()

    def non_embedding_params(self) -> int:
        return self.model.non_embedding_params()

    def _pin_threads(self) -> None:
        if self._torch.get_num_threads() != self.threads:
            self._torch.set_num_threads(self.threads)

    def start(self, lanes: int) -> TorchState:
        self._pin_threads()
        torch = self._torch
        with torch.inference_mode():
            inner = self.model.init_state(int(lanes))
            prev = torch.zeros(int(lanes), dtype=torch.long)
        return TorchState(int(lanes), inner, prev)

    def step(self, state: TorchState, prev: np.ndarray) -> tuple[np.ndarray, TorchState]:
        torch = self._torch
        self._pin_threads()
        prev = check_prev(prev, state.lanes)
        with torch.inference_mode():
            state.prev.copy_(torch.from_numpy(prev))
            logits = self.model.step_logits(state.inner, state.prev)
            probs = torch.softmax(logits.float(), dim=-1)
            probs.mul_(1.0 - FLOOR).add_(FLOOR / 256.0)
            probs.div_(probs.sum(dim=-1, keepdim=True))
            out = probs.numpy()
        state.steps += 1
        return np.ascontiguousarray(out, dtype=np.float32), state
