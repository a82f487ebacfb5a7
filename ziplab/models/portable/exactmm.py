"""Exact integer matrix products on torch's fp32 GEMM, with a check that they really are exact.

An `ExactLinear` holds int8-valued weights [K, N] (per-column scales) and the largest input
magnitude for which every partial sum stays below 2^24. Callers quantise each input row with
`arith.quantize_rows(x, layer.limit, ...)`, multiply with `layer.mm`, and rescale the integer
result by (row scale * column scale) in float64.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ...errors import ZiplabError
from .arith import input_limit, quantize_columns
from .selftest import BANK_ROWS, exact_in_batches


class InexactArithmeticError(ZiplabError):
    """This machine's fp32 GEMM does not compute small-integer products exactly."""


class QuantisedLinear(ABC):
    """What every engine's product shares: int8-valued weights [K, N] with one float64 scale per
    output column (`arith.quantize_columns`), stored as `weight_dtype`; subclasses multiply."""

    weight_dtype: type = np.float32
    limit: int

    def __init__(self, w: np.ndarray) -> None:
        """w: float weights [K, N] (input dim first)."""
        q, scale = quantize_columns(w)
        self._setup(q.astype(self.weight_dtype), scale)

    @classmethod
    def from_quantised(cls, q: np.ndarray, scale: np.ndarray):
        """From `arrays()` as stored (the quantised-model cache)."""
        self = cls.__new__(cls)
        self._setup(np.ascontiguousarray(q, dtype=cls.weight_dtype), np.ascontiguousarray(scale, dtype=np.float64))
        return self

    @abstractmethod
    def _setup(self, q: np.ndarray, scale: np.ndarray) -> None:
        """Hold the quantised weights (and whatever the product needs made from them)."""

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.q": self.q, f"{prefix}.scale": self.scale,
                f"{prefix}.limit": np.array([self.limit], dtype=np.int64)}


class ExactLinear(QuantisedLinear):
    """Engine v1's product: int8 weights times integer rows up to `limit`, exact in fp32."""

    in_dtype = np.float32
    out_dtype = np.float32
    weight_dtype = np.float32

    def _setup(self, q: np.ndarray, scale: np.ndarray) -> None:
        import torch

        pin_exact_matmul()
        self.q, self.scale = q, scale
        self.limit = input_limit(q)
        self.weight = torch.from_numpy(q)
        self.k, self.n = q.shape
        self._bank: tuple | None = None

    def mm(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        import torch

        torch.mm(torch.from_numpy(x), self.weight, out=torch.from_numpy(out))
        return out

    def test_rows(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """The exactness bound (the worst column's signs at the limit, both signs), then random rows."""
        q64 = self.q.astype(np.int64)
        worst = int(np.abs(q64).sum(axis=0).argmax())
        rows = [np.sign(q64[:, worst]) * self.limit, -np.sign(q64[:, worst]) * self.limit]
        rows += list(rng.integers(-self.limit, self.limit + 1, size=(max(count, 2) - 2, self.k)))
        return np.stack(rows).astype(np.int64)

    def exact_at(self, lanes: int, seed: int = 0) -> bool:
        """Products at the coding shape [lanes, K] equal the exact result (bank: the bound rows
        and random ones, `selftest`), and stay below 2^24."""
        if self._bank is None or self._bank[0] != (seed, self.limit):
            x = self.test_rows(np.random.default_rng(seed), BANK_ROWS)
            self._bank = ((seed, self.limit), x, x.astype(np.float64) @ self.q.astype(np.float64))
        _, x, want = self._bank
        if np.abs(want).max() >= 1 << 24:
            return False
        import torch

        return exact_in_batches(x, want, lanes, lambda rows: torch.mm(
            torch.from_numpy(rows.astype(np.float32)), self.weight).numpy())

    def self_test(self, lanes: int = 8) -> None:
        """Refuse to code on a machine whose products are not exact at this shape (e.g. a BLAS
        told to compute fp32 in bf16 or TF32)."""
        if not self.exact_at(lanes):
            raise InexactArithmeticError(
                "fp32 matrix products on this machine are not exact for small integers (is a reduced-"
                "precision math mode such as ONEDNN_DEFAULT_FPMATH_MODE set?); portable coding needs them")


def pin_exact_matmul() -> None:
    """fp32 GEMMs must not silently run in TF32/bf16."""
    import torch

    if torch.get_float32_matmul_precision() != "highest":
        torch.set_float32_matmul_precision("highest")
