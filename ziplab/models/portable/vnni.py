"""An exact int8 x int8 -> int32 GEMM on AVX-512 VNNI, compiled by numba: no torch import.

On 1 MiB the `nn` command spent ~1 s of ~2.9 s importing torch, only for oneDNN's int8 GEMM.
Here vpdpbusd (u8 x s8, four products summed into each int32 lane, wrapping, never saturating)
is emitted through an LLVM intrinsic. Layout (since 0.9.1; `benchmarks/vnni_probe.py`):

- the weights are packed per block of 16 output columns as [K/4, 16 columns, 4 k], so one
  512-bit load holds four k of 16 columns;
- four consecutive k of an input row are one 32-bit word, broadcast to all 16 lanes;
- a tile is TILE_ROWS rows x up to COL_BLOCKS blocks (4 x 64 outputs): 16 accumulators stay in
  registers across K, and each row's sums come out as whole vectors, with no horizontal sums.

K is padded only to a multiple of 4 (the first layout, one output per register, padded it to
64 and lost 12-20% on K = 224 and 160). 1.4-2.8x that layout at the engines' shapes.

Exact by construction: rows x (int8) are shifted to u8 as x + 128 and the shift is taken back
with the weights' column sums, 128 * sum_k w[k, j]; int32 arithmetic wraps modulo 2^32, so the
result is the exact product wherever that fits an int32 (`int8mm.MAX_K` keeps it so). Padding
is zero weights against shifted zero rows.

Only where the CPU has AVX-512 VNNI and numba compiles for this host: a run that limits the
kernels (NUMBA_CPU_NAME / NUMBA_CPU_FEATURES, as `benchmarks/cli_timing.py` does for AVX2) must
never compile or run it.
"""

from __future__ import annotations

import os

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ...hardware import cpu_has

LANES = 16  # int32 outputs in one 512-bit register: a block of 16 output columns
GROUP = 4  # k values one vpdpbusd lane sums
TILE_ROWS = 4  # input rows of a tile
COL_BLOCKS = 4  # column blocks of a full tile: 4 x 4 accumulators
SHIFT = 128
NEEDED = ("avx512f", "avx512bw", "avx512_vnni")


def supported() -> bool:
    """This CPU has AVX-512 VNNI and numba targets it (not a CPU named by NUMBA_CPU_NAME)."""
    if os.environ.get("NUMBA_CPU_NAME", "host") != "host" or os.environ.get("NUMBA_CPU_FEATURES"):
        return False
    return cpu_has(*NEEDED)


def _tile_of(blocks: int):
    """The tile intrinsic for TILE_ROWS rows x `blocks` column blocks."""

    @intrinsic
    def tile(typingctx, acc, i0, jb, xu, w):
        """acc[i0 + a, 16 (jb + b) + c] = sum over k of xu[i0 + a, k] * w[jb + b, k // 4, c, k % 4]
        for a < TILE_ROWS, b < blocks, c < 16: xu u8 [Mp, Kq*4], w s8 [Nb, Kq, 16, 4], acc int32
        [Mp, Nb*16], all C-contiguous."""
        def codegen(context, builder, signature, args):
            accv, i0v, jbv, xv, wv = args
            acc_t, _, _, x_t, w_t = signature.args
            acca = cgutils.create_struct_proxy(acc_t)(context, builder, value=accv)
            xa = cgutils.create_struct_proxy(x_t)(context, builder, value=xv)
            wa = cgutils.create_struct_proxy(w_t)(context, builder, value=wv)
            i64, i32 = ir.IntType(64), ir.IntType(32)
            v16 = ir.VectorType(i32, LANES)
            const = lambda v: ir.Constant(i64, v)  # noqa: E731
            kq, kp = builder.extract_value(wa.shape, 1), builder.extract_value(xa.shape, 1)
            ncols = builder.extract_value(acca.shape, 1)
            dot = cgutils.get_or_insert_function(builder.module, ir.FunctionType(v16, [v16, v16, v16]),
                                                 "llvm.x86.avx512.vpdpbusd.512")
            accs = [cgutils.alloca_once_value(builder, ir.Constant(v16, None)) for _ in range(TILE_ROWS * blocks)]
            rows = [builder.gep(xa.data, [builder.mul(builder.add(i0v, const(a)), kp)]) for a in range(TILE_ROWS)]
            block_bytes = builder.mul(kq, const(LANES * GROUP))
            cols = [builder.gep(wa.data, [builder.mul(builder.add(jbv, const(b)), block_bytes)]) for b in range(blocks)]
            undef = ir.Constant(v16, ir.Undefined)
            splat = ir.Constant(v16, [0] * LANES)
            with cgutils.for_range(builder, kq) as loop:
                wat = builder.mul(loop.index, const(LANES * GROUP))
                ws = [builder.load(builder.bitcast(builder.gep(p, [wat]), v16.as_pointer()), align=1) for p in cols]
                xat = builder.mul(loop.index, const(GROUP))
                for a in range(TILE_ROWS):
                    word = builder.load(builder.bitcast(builder.gep(rows[a], [xat]), i32.as_pointer()), align=1)
                    xs = builder.shuffle_vector(builder.insert_element(undef, word, ir.Constant(i32, 0)), undef, splat)
                    for b in range(blocks):
                        acc = accs[a * blocks + b]
                        builder.store(builder.call(dot, [builder.load(acc), xs, ws[b]]), acc)
            for a in range(TILE_ROWS):
                for b in range(blocks):
                    at = builder.add(builder.mul(builder.add(i0v, const(a)), ncols),
                                     builder.mul(builder.add(jbv, const(b)), const(LANES)))
                    builder.store(builder.load(accs[a * blocks + b]),
                                  builder.bitcast(builder.gep(acca.data, [at]), v16.as_pointer()), align=1)
            return context.get_dummy_value()
        return types.void(acc, i0, jb, xu, w), codegen

    return tile


_tile1, _tile2, _tile3, _tile4 = (_tile_of(blocks) for blocks in (1, 2, 3, 4))


@nb.njit(cache=True, nogil=True)
def _gemm(x, w, shift_sums, out):
    """out[:M, :N] = x @ w exactly: x int8 [M, K], w int8 [Nb, Kq, 16, 4] (`prepare`),
    shift_sums int32 [Nb*16] = SHIFT * column sums."""
    M, K = x.shape
    N = out.shape[1]
    Nb, Kq = w.shape[0], w.shape[1]
    Mp = -(-M // TILE_ROWS) * TILE_ROWS
    xu = np.full((Mp, Kq * GROUP), SHIFT, dtype=np.uint8)  # padding: shifted zeros, against zero weights
    for r in range(M):
        for k in range(K):
            xu[r, k] = np.uint8(np.int32(x[r, k]) + SHIFT)
    acc = np.empty((Mp, Nb * LANES), dtype=np.int32)
    for jb in range(0, Nb, COL_BLOCKS):  # a block of weights stays in cache while the rows pass
        left = Nb - jb
        for i in range(0, Mp, TILE_ROWS):
            if left >= 4:
                _tile4(acc, i, jb, xu, w)
            elif left == 3:
                _tile3(acc, i, jb, xu, w)
            elif left == 2:
                _tile2(acc, i, jb, xu, w)
            else:
                _tile1(acc, i, jb, xu, w)
    for r in range(M):
        for j in range(N):
            out[r, j] = acc[r, j] - shift_sums[j]


def prepare(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights int8 [K, N] -> (w int8 [Nb, Kq, 16, 4] with w[b, i, c, g] = q[4i + g, 16b + c],
    zero-padded; SHIFT times each column's sum, int32)."""
    k, n = q.shape
    kq, nb_ = -(-k // GROUP), -(-n // LANES)
    padded = np.zeros((kq * GROUP, nb_ * LANES), dtype=np.int8)
    padded[:k, :n] = q
    w = np.ascontiguousarray(padded.reshape(kq, GROUP, nb_, LANES).transpose(2, 0, 3, 1))
    sums = np.zeros(nb_ * LANES, dtype=np.int64)
    sums[:n] = SHIFT * q.astype(np.int64).sum(axis=0)
    wrapped = (sums + (1 << 31)) % (1 << 32) - (1 << 31)  # modulo 2^32, as the accumulators wrap
    return w, wrapped.astype(np.int32)


def mm(prepared: tuple[np.ndarray, np.ndarray], x: np.ndarray, out: np.ndarray) -> None:
    """out = x @ q (int8 rows [M, K], int32 out [M, N]) for the weights `prepare` gave."""
    w, sums = prepared
    _gemm(x, w, sums, out)
