"""Portable inference: the predictor the `nn` codec codes with, bit-identical on every machine.

A trained float model is quantised on load (int8 weights per output column, per-lane dynamic
input scales) by a computation that itself uses only reproducible arithmetic, so the same
checkpoint gives the same quantised model — and the same probabilities, byte after byte — on
any CPU kind, SIMD level, BLAS, thread count, and whether the model was trained on a CPU or a
GPU. See `arith` for the two rules that make that true.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..predictor import check_prev, sha256_arrays


def build_engine(model: Any):
    if model.family == "lstm":
        from .lstm import PortableLSTM

        return PortableLSTM(model)
    if model.family == "transformer":
        from .transformer import PortableTransformer

        return PortableTransformer(model)
    raise ValueError(f"no portable engine for family {model.family!r}")


class PortablePredictor:
    """The Predictor protocol over a portable engine. `threads` sets torch's GEMM threads (speed
    only: the results do not depend on it)."""

    def __init__(self, model: Any, name: str, threads: int = 1) -> None:
        import torch

        from .exactmm import pin_exact_matmul

        self.name = name
        self.threads = max(1, int(threads))
        self.config = model.cfg.to_dict()
        self.model = model.eval()
        self._torch = torch
        pin_exact_matmul()
        self.engine = build_engine(model)
        for layer in self.engine.linears():
            layer.self_test()
        self.engine_name = self.engine.engine
        self._sha: str | None = None
        self.quant_sha256 = sha256_arrays({**self.engine.arrays(),
                                           "engine": np.frombuffer(self.engine_name.encode(), dtype=np.uint8)})

    @property
    def weights_sha256(self) -> str:
        """Hash of the float weights as stored in the checkpoint (identifies the model file's content)."""
        if self._sha is None:
            self._sha = sha256_arrays({k: v.detach().cpu().numpy() for k, v in self.model.state_dict().items()})
        return self._sha

    def num_params(self) -> int:
        return self.model.num_params()

    def non_embedding_params(self) -> int:
        return self.model.non_embedding_params()

    def start(self, lanes: int) -> Any:
        if self._torch.get_num_threads() != self.threads:
            self._torch.set_num_threads(self.threads)
        return self.engine.start(int(lanes))

    def step(self, state: Any, prev: np.ndarray) -> tuple[np.ndarray, Any]:
        prev = check_prev(prev, state.lanes)
        return self.engine.step(state, prev).copy(), state
