"""Portable inference: the predictor the `nn` codec codes with, bit-identical on every machine.

A trained float model is quantised on load (int8 weights per output column, per-lane dynamic
input scales) by a computation that itself uses only reproducible arithmetic, so the same
checkpoint gives the same quantised model — and the same probabilities, byte after byte — on
any CPU kind, SIMD level, BLAS, thread count, and whether the model was trained on a CPU or a
GPU. See `arith` for the two rules that make that true.

Engines (recorded in every header; an old one keeps its meaning forever):
v1 (`*-int8-v1`) multiplies int8 weights by integer rows up to an fp32-exact bound on the fp32
GEMM (`exactmm`); v2 (`*-int8x8-v2`, the default) quantises each row to int8 and multiplies
int8 x int8 -> int32 on the fastest exact kernel (`int8mm`). Every product path is self-tested
at the coding shape when coding starts, so a machine or a host setting that makes them inexact
is refused before a byte is coded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..predictor import check_prev, sha256_arrays


def engines(family: str) -> tuple[dict[str, Any], str]:
    """(engine name -> its dense product, the default engine) for a model family."""
    if family == "lstm":
        from . import lstm

        return lstm.ENGINES, lstm.ENGINE
    if family == "transformer":
        from . import transformer

        return transformer.ENGINES, transformer.ENGINE
    raise ValueError(f"no portable engine for family {family!r}")


def build_engine(model: Any, engine: str | None = None):
    """The family's engine by name; None, or a name this family does not have, gives the default
    (a decoder then compares names and says which engine the file needs)."""
    known, default = engines(model.family)
    name = engine if engine in known else default
    if model.family == "lstm":
        from .lstm import PortableLSTM

        return PortableLSTM(model, name)
    from .transformer import PortableTransformer

    return PortableTransformer(model, name)


class PortablePredictor:
    """The Predictor protocol over a portable engine. `threads` sets torch's GEMM threads (speed
    only: the results do not depend on it); `engine` names the engine (default: the newest)."""

    def __init__(self, model: Any, name: str, threads: int = 1, engine: str | None = None) -> None:
        import torch

        from .exactmm import pin_exact_matmul
        from .int8mm import Int8Linear, KernelChoice

        self.name = name
        self.threads = max(1, int(threads))
        self.config = model.cfg.to_dict()
        self.model = model.eval()
        self._torch = torch
        pin_exact_matmul()
        self.engine = build_engine(model, engine)
        self.engine_name = self.engine.engine
        self._int8 = all(isinstance(lin, Int8Linear) for lin in self.engine.linears())
        self.kernels = KernelChoice() if self._int8 else None
        self.kernel = "fp32"
        self.check_products(8)
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

    def check_products(self, lanes: int) -> None:
        """Every product path at the coding shape (dense rows = lanes; batched attention), exact
        or InexactArithmeticError; v2 also picks its kernel here. One product per matrix: cheap."""
        linears = self.engine.linears()
        if self.kernels is not None:
            self.kernel = self.kernels.start(linears, lanes)
        else:
            for layer in linears:
                layer.self_test(lanes)
        if hasattr(self.engine, "attention_exact_at"):
            self.engine.self_test(lanes)

    def start(self, lanes: int) -> Any:
        if self._torch.get_num_threads() != self.threads:
            self._torch.set_num_threads(self.threads)
        self.check_products(int(lanes))
        return self.engine.start(int(lanes))

    def step(self, state: Any, prev: np.ndarray) -> tuple[np.ndarray, Any]:
        prev = check_prev(prev, state.lanes)
        return self.engine.step(state, prev).copy(), state
