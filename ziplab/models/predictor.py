"""The predictor protocol: the only thing a range coder needs from a model.

A predictor steps L independent byte streams ("lanes") in lockstep. `step(state, prev)` takes
each lane's previous byte (256 = BOS on the first step) and returns one probability row per
lane. Encoder and decoder must see bitwise identical rows, so every implementation is a pure
function of (weights, inputs so far, lane count) — on any machine: see `portable` for how the
neural predictors guarantee that.
"""

from __future__ import annotations

import hashlib
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
