"""Exact int8 x int8 -> int32 products (engines v2-v4), run by the fastest kernel that is exact here.

The weights are v1's int8 columns; each input row is quantised to [-127, 127] (v2, v3) or to
[-63, 63] (v4, `Int8x7Linear`, so that CPUs without VNNI multiply them exactly too). An int32
accumulator holds every such product exactly (127 * 127 * K < 2^31 for K < 133,000), so any
kernel that really computes int8 x int8 -> int32 gives the same integers, in any order. Kernels:

- `torch._int_mm` (oneDNN; VNNI or AMX dot products): ~8x the fp32 GEMM where the CPU has them.
  Without VNNI, oneDNN shifts the left operand to uint8 and multiplies with vpmaddubsw, whose
  int16 pair sums saturate: int8 rows times weights past ±64 come out wrong (measured: AVX2,
  SSE4.1 and AVX-512 without VNNI). The self-test finds that and the kernel is not used there.
  With the weights on the left and 7-bit rows on the right (v4, `IntMMWeightsFirst`) no pair
  sum can saturate: 1.8x the fp32 GEMM with AVX2 only.
- fp32 GEMM over the same integers, K cut into chunks whose partial sums stay below 2^24 and the
  chunks' exact results added in int32: exact on any BLAS, any order, with or without FMA.
- vpdpbusd tiles compiled by numba where the CPU has AVX-512 VNNI (`vnni`): no torch import,
  as fast as oneDNN's int8 GEMM or faster at the engines' shapes, so torch is never imported
  for the products there;
- a compiled int32 loop (numba), which needs no torch import (~1-2 s): for small inputs.

Callers pass numpy arrays (int8 rows in, int32 out); torch is imported only when a torch kernel
is used. Which kernel runs is chosen by `kernel_choice`.
"""

from __future__ import annotations

from typing import Callable

import numba as nb
import numpy as np

from .arith import EXACT, WEIGHT_MAX
from .exactmm import InexactArithmeticError, QuantisedLinear
from .selftest import BANK_ROWS, exact_in_batches

#: activations are quantised per row to [-ACT_MAX, ACT_MAX]: int8 (v2, v3)
ACT_MAX = 127
#: engine v4 quantises them to 7 bits (`Int8x7Linear`), so that a u8 x s8 pair of products
#: fits an int16 (vpmaddubsw, the int8 dot product of CPUs without VNNI) without saturating
ACT_MAX7 = 63
#: largest K for which 127 * 127 * K stays below 2^31 (int32 accumulation)
MAX_K = ((1 << 31) - 1) // (ACT_MAX * WEIGHT_MAX)


def k_chunks(q: np.ndarray, act_max: int = ACT_MAX) -> list[tuple[int, int]]:
    """Contiguous ranges of K, greedy, such that act_max * (a chunk's largest column sum of |q|)
    < 2^24: every partial sum of an fp32 product over one chunk is then an exact integer."""
    a = np.abs(q.astype(np.int64))
    limit = (EXACT - 1) // act_max
    chunks, start, run = [], 0, np.zeros(q.shape[1], dtype=np.int64)
    for k in range(q.shape[0]):
        if (run + a[k]).max() > limit:
            chunks.append((start, k))
            start, run = k, np.zeros_like(run)
        run += a[k]
    chunks.append((start, q.shape[0]))
    return chunks


class Kernel:
    """What every product kernel is: `prepare` its weights once (for rows within ±limit), `mm`
    rows into int32, and say whether it can take these products at all (`available`; the
    self-test then says whether its results are exact here)."""

    name = ""
    torch = False

    @staticmethod
    def available(linears: list) -> bool:
        return True

    def products(self, w, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The products as an array of their exact integers: `out` filled by `mm`, unless the
        kernel's own result already is one (float32 below 2^24: `OneDnnQLinear`), which spares
        the copy for a caller that converts to float32 anyway (engines v3, v4)."""
        self.mm(w, x, out)
        return out


class IntMM(Kernel):
    """torch._int_mm: oneDNN's int8 GEMM into int32."""

    name = "int_mm"
    torch = True

    def prepare(self, q: np.ndarray, limit: int):
        import torch

        # held column-major (a transposed view of [N, K] rows): oneDNN reads it ~15% faster here,
        # and an int32 sum is the same integer whatever the layout
        return torch.from_numpy(np.ascontiguousarray(np.asarray(q, dtype=np.int8).T)).t()

    def mm(self, w, x: np.ndarray, out: np.ndarray) -> None:
        import torch

        torch._int_mm(torch.from_numpy(x), w, out=torch.from_numpy(out))


class IntMMWeightsFirst(Kernel):
    """torch._int_mm with the weights on the left: out^T = W^T x^T, copied back transposed.
    Without VNNI oneDNN shifts its left operand to uint8 and multiplies pairs with vpmaddubsw:
    weights (|w| <= 127, shifted into [1, 255]) times 7-bit rows (engine v4) give pair sums of
    at most 2 * 255 * 63 < 2^15, so it is exact there (1.8x the fp32 GEMM with AVX2 only)
    where rows on the left saturate; with VNNI it is exact either way."""

    name = "int_mm_t"
    torch = True

    def prepare(self, q: np.ndarray, limit: int):
        import torch

        return torch.from_numpy(np.ascontiguousarray(np.asarray(q, dtype=np.int8).T))  # [N, K]

    def mm(self, w, x: np.ndarray, out: np.ndarray) -> None:
        import torch

        torch.from_numpy(out).copy_(torch._int_mm(w, torch.from_numpy(x).t()).t())


class Fp32Chunks(Kernel):
    """torch's fp32 GEMM per K chunk (each exact), the chunks summed in int32."""

    name = "fp32"
    torch = True

    def prepare(self, q: np.ndarray, limit: int) -> list:
        import torch

        w = np.ascontiguousarray(q, dtype=np.float32)
        return [(a, b, torch.from_numpy(np.ascontiguousarray(w[a:b]))) for a, b in k_chunks(q, limit)]

    def mm(self, w: list, x: np.ndarray, out: np.ndarray) -> None:
        import torch

        xf = torch.from_numpy(x).to(torch.float32)
        res = torch.from_numpy(out)
        a, b, chunk = w[0]
        res.copy_(torch.mm(xf[:, a:b] if len(w) > 1 else xf, chunk))
        for a, b, chunk in w[1:]:
            res.add_(torch.mm(xf[:, a:b], chunk).to(torch.int32))


def qlinear_max_k(limit: int) -> int:
    """oneDNN's quantised linear returns the int32 sum as fp32: exact while limit * 127 * K <
    2^24 (K <= 1040 for int8 rows, 2096 for 7-bit rows)."""
    return (EXACT - 1) // (limit * WEIGHT_MAX)


QLINEAR_MAX_K = qlinear_max_k(ACT_MAX)


class OneDnnQLinear(Kernel):
    """oneDNN's quantised linear (the x86 int8 path of torch's compiler) on weights packed once:
    rows shifted to uint8 with zero point limit + 1 (x + 128 for int8 rows, x + 64 for 7-bit
    rows: an exact wrapping uint8 add), int8 weights, unit scales. Its int32 sums are exact and
    come back as fp32, exact for K up to `qlinear_max_k`; `_int_mm` repacks the weights on every
    call, so this is faster where they are large (l5: 1.5x on its 896 x 1792 layer). Without
    VNNI oneDNN multiplies u8 x s8 pairs with vpmaddubsw, whose int16 sums saturate past
    2^15 - 1: int8 rows (up to 255 * 127 * 2) do, 7-bit rows (up to 127 * 127 * 2) do not. The
    self-test finds which."""

    name = "qlinear"
    torch = True

    @staticmethod
    def available(linears: list) -> bool:
        import torch

        return hasattr(torch.ops, "onednn") and hasattr(torch.ops.onednn, "qlinear_pointwise") and \
            all(lin.k <= qlinear_max_k(lin.limit) for lin in linears)

    def prepare(self, q: np.ndarray, limit: int):
        import torch

        w = torch.from_numpy(np.ascontiguousarray(np.asarray(q, dtype=np.int8).T))  # [N, K]
        n = w.shape[0]
        return (torch.ops.onednn.qlinear_prepack(w, None), torch.ones(n, dtype=torch.float32),
                torch.zeros(n, dtype=torch.int64), limit + 1)

    def mm(self, w, x: np.ndarray, out: np.ndarray) -> None:
        import torch

        torch.from_numpy(out).copy_(self._linear(w, x))

    def products(self, w, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        return self._linear(w, x).numpy()  # exact integers in float32 (K within qlinear_max_k)

    @staticmethod
    def _linear(w, x: np.ndarray):
        import torch

        packed, scales, zeros, zero_point = w
        shifted = torch.from_numpy(np.add(x.view(np.uint8), np.uint8(zero_point)))  # wraps: x + zero_point
        return torch.ops.onednn.qlinear_pointwise(shifted, 1.0, zero_point, packed, scales, zeros, None, 1.0, 0,
                                                  torch.float32, "none", [], "")


@nb.njit(cache=True, nogil=True)
def _int8_gemm(x, w, out):
    """out = x @ w in int32 from int8 operands, row by row: exact by construction, one thread."""
    M, K = x.shape
    N = w.shape[1]
    for r in range(M):
        for j in range(N):
            out[r, j] = 0
        for k in range(K):
            a = np.int32(x[r, k])
            if a != 0:
                for j in range(N):
                    out[r, j] += a * np.int32(w[k, j])


class NumbaInt8(Kernel):
    """A compiled int8 x int8 -> int32 loop: no torch import and no BLAS threads (which
    oversubscribe the CPUs beside worker processes); ~1/10 of oneDNN's speed, for small inputs."""

    name = "numba"
    torch = False

    def prepare(self, q: np.ndarray, limit: int) -> np.ndarray:
        return np.ascontiguousarray(q, dtype=np.int8)

    def mm(self, w: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
        _int8_gemm(x, w, out)


class VnniTiles(Kernel):
    """vpdpbusd tiles compiled by numba (`vnni`): no torch import, oneDNN's speed or better,
    only where the CPU has AVX-512 VNNI and numba targets it. Competes with torch's kernels
    (`fast`) once torch is loaded; where it runs, torch is never imported for the products
    (`kernel_choice.TORCH_MIN_MACS`)."""

    name = "vnni"
    torch = False
    fast = True

    @staticmethod
    def available(linears: list) -> bool:
        from . import vnni

        return vnni.supported()

    def prepare(self, q: np.ndarray, limit: int):
        from . import vnni

        return vnni.prepare(q)

    def mm(self, w, x: np.ndarray, out: np.ndarray) -> None:
        from . import vnni

        vnni.mm(w, x, out)


#: candidates, all exact where the self-test passes; the timing at start decides among them
KERNELS: tuple[Callable[[], object], ...] = (IntMM, IntMMWeightsFirst, OneDnnQLinear, Fp32Chunks, VnniTiles,
                                             NumbaInt8)


class Int8Linear(QuantisedLinear):
    """int8 weights [K, N] (per-column scales, as v1) times int8 input rows (within ±`limit`),
    exact in int32."""

    in_dtype = np.int8
    out_dtype = np.int32
    weight_dtype = np.int8
    limit = ACT_MAX

    def _setup(self, q: np.ndarray, scale: np.ndarray) -> None:
        self.q, self.scale = q, scale
        self.k, self.n = q.shape
        if self.k > MAX_K:  # the int8 rows' bound: 7-bit rows could go further, no model needs it
            raise ValueError(f"input width {self.k} is past the int32-exact bound {MAX_K}")
        self._prepared: dict[str, object] = {}
        self._bank: tuple | None = None
        self.use(NumbaInt8())

    def use(self, kernel) -> None:
        if kernel.name not in self._prepared:
            self._prepared[kernel.name] = kernel.prepare(self.q, self.limit)
        self.kernel = kernel
        self._w = self._prepared[kernel.name]

    def mm(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """x: int8 [M, K] C-contiguous; out: int32 [M, N], overwritten."""
        self.kernel.mm(self._w, x, out)
        return out

    def products(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """As `mm`, but the result may be the kernel's own array of the same exact integers
        (float32, C-contiguous [M, N]) instead of `out` (`Kernel.products`)."""
        return self.kernel.products(self._w, x, out)

    def test_rows(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """The bound rows (the worst column's signs at full scale, both signs), all ±limit (the
        rows that saturate a vpmaddubsw kernel where any do), then random rows, half of them at
        the extremes."""
        q, top = self.q.astype(np.int64), self.limit
        worst = np.sign(q[:, int(np.abs(q).sum(axis=0).argmax())]) * top
        full = np.full(self.k, top)
        rows = [worst, -worst, full, -full]
        while len(rows) < count:
            rows.append(rng.integers(-top, top + 1, self.k))
            rows.append(rng.choice([-top, top], self.k))
        return np.stack(rows[:max(count, 4)])

    def exact_at(self, lanes: int, seed: int = 0) -> bool:
        """Products at the coding shape [lanes, K] on the current kernel equal the exact result
        (bank: the bound rows, the saturating rows and random ones, `selftest`)."""
        if self._bank is None or self._bank[0] != seed:
            x = self.test_rows(np.random.default_rng(seed), BANK_ROWS)
            self._bank = (seed, x.astype(np.int8), x.astype(np.float64) @ self.q.astype(np.float64))
        _, x, want = self._bank

        def product(rows: np.ndarray) -> np.ndarray:
            return self.mm(np.ascontiguousarray(rows), np.empty((len(rows), self.n), dtype=np.int32))

        return exact_in_batches(x, want, lanes, product)

    def self_test(self, lanes: int = 8) -> None:
        if not self.exact_at(lanes):
            raise InexactArithmeticError(
                f"int8 matrix products ({self.kernel.name}) on this machine are not exact; portable coding needs them")


class Int8x7Linear(Int8Linear):
    """Engine v4's product: v2's int8 weights times 7-bit rows (within ±63), exact in int32 on
    every kernel, and exact on CPUs without VNNI too (`ACT_MAX7`)."""

    limit = ACT_MAX7
