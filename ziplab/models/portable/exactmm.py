"""Exact integer matrix products on torch's fp32 GEMM, with a check that they really are exact.

An `ExactLinear` holds int8-valued weights [K, N] (per-column scales) and the largest input
magnitude for which every partial sum stays below 2^24. Callers quantise each input row with
`arith.quantize_rows(x, layer.limit, ...)`, multiply with `layer.mm`, and rescale the integer
result by (row scale * column scale) in float64.
"""

from __future__ import annotations

import numpy as np
import torch

from ...errors import ZiplabError
from .arith import input_limit, quantize_columns


class InexactArithmeticError(ZiplabError):
    """This machine's fp32 GEMM does not compute small-integer products exactly."""


class ExactLinear:
    def __init__(self, w: np.ndarray) -> None:
        """w: float weights [K, N] (input dim first)."""
        q, self.scale = quantize_columns(w)
        self.q = q
        self.limit = input_limit(q)
        self.weight = torch.from_numpy(q)
        self.k, self.n = q.shape

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.q": self.q, f"{prefix}.scale": self.scale,
                f"{prefix}.limit": np.array([self.limit], dtype=np.int64)}

    def mm(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return torch.mm(x, self.weight, out=out)

    def self_test(self, seed: int = 0) -> None:
        """Products at the exactness bound (the worst column, both signs) and random rows must
        equal the int64 result bit for bit; refuse to code on a machine where they do not
        (e.g. a BLAS told to compute fp32 in bf16 or TF32)."""
        q64 = self.q.astype(np.int64)
        worst = int(np.abs(q64).sum(axis=0).argmax())
        rows = [np.sign(q64[:, worst]) * self.limit, -np.sign(q64[:, worst]) * self.limit]
        rng = np.random.default_rng(seed)
        rows += list(rng.integers(-self.limit, self.limit + 1, size=(6, self.k)))
        x = np.stack(rows).astype(np.int64)
        want = x @ q64
        got = torch.mm(torch.from_numpy(x.astype(np.float32)), self.weight).numpy()
        if not np.array_equal(got.astype(np.int64), want) or np.abs(want).max() >= 1 << 24:
            raise InexactArithmeticError(
                "fp32 matrix products on this machine are not exact for small integers (is a reduced-"
                "precision math mode such as ONEDNN_DEFAULT_FPMATH_MODE set?); portable coding needs them")


def pin_exact_matmul() -> None:
    """fp32 GEMMs must not silently run in TF32/bf16."""
    if torch.get_float32_matmul_precision() != "highest":
        torch.set_float32_matmul_precision("highest")
