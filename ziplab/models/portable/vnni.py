"""An exact int8 x int8 -> int32 GEMM on AVX-512 VNNI, compiled by numba: no torch import.

On 1 MiB the `nn` command spent ~1 s of ~2.9 s importing torch, only for oneDNN's int8 GEMM.
Here vpdpbusd (u8 x s8, four products summed into each int32 lane, wrapping, never saturating)
is emitted through an LLVM intrinsic, in tiles of TILE_ROWS x TILE_COLS outputs whose
accumulators stay in registers across K (`benchmarks/vnni_probe.py`: 40-93% of oneDNN's speed).

Exact by construction: rows x (int8) are shifted to u8 as x + 128 and the shift is taken back
with the weights' column sums, 128 * sum_k w[k, j]; int32 arithmetic wraps modulo 2^32, so the
result is the exact product wherever that fits an int32 (`int8mm.MAX_K` keeps it so). K is
padded to a multiple of 64 with zero weights, rows and columns to whole tiles.

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

TILE_ROWS, TILE_COLS = 2, 8
CHUNK = 64  # int8 values in one 512-bit register
SHIFT = 128
NEEDED = ("avx512f", "avx512bw", "avx512_vnni")


def supported() -> bool:
    """This CPU has AVX-512 VNNI and numba targets it (not a CPU named by NUMBA_CPU_NAME)."""
    if os.environ.get("NUMBA_CPU_NAME", "host") != "host" or os.environ.get("NUMBA_CPU_FEATURES"):
        return False
    return cpu_has(*NEEDED)


@intrinsic
def _tile(typingctx, out, i0, j0, xu, w):
    """out[i0 + a, j0 + b] = sum over k of xu[i0 + a, k] * w[j0 + b, k] for a < TILE_ROWS,
    b < TILE_COLS: xu u8 [M, Kp], w s8 [N, Kp], out int32 [M, N] (all C-contiguous, Kp % 64 == 0)."""
    def codegen(context, builder, signature, args):
        outv, i0v, j0v, xv, wv = args
        out_t, _, _, x_t, w_t = signature.args
        outa = cgutils.create_struct_proxy(out_t)(context, builder, value=outv)
        xa = cgutils.create_struct_proxy(x_t)(context, builder, value=xv)
        wa = cgutils.create_struct_proxy(w_t)(context, builder, value=wv)
        i64 = ir.IntType(64)
        k_len, n_len = builder.extract_value(xa.shape, 1), builder.extract_value(outa.shape, 1)
        v16 = ir.VectorType(ir.IntType(32), 16)
        dot = cgutils.get_or_insert_function(builder.module, ir.FunctionType(v16, [v16, v16, v16]),
                                             "llvm.x86.avx512.vpdpbusd.512")
        total = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), [v16]),
                                               "llvm.vector.reduce.add.v16i32")
        accs = [cgutils.alloca_once_value(builder, ir.Constant(v16, None)) for _ in range(TILE_ROWS * TILE_COLS)]
        rows = [builder.gep(xa.data, [builder.mul(builder.add(i0v, ir.Constant(i64, a)), k_len)])
                for a in range(TILE_ROWS)]
        cols = [builder.gep(wa.data, [builder.mul(builder.add(j0v, ir.Constant(i64, b)), k_len)])
                for b in range(TILE_COLS)]
        with cgutils.for_range(builder, builder.udiv(k_len, ir.Constant(i64, CHUNK))) as loop:
            off = builder.mul(loop.index, ir.Constant(i64, CHUNK))
            xs = [builder.load(builder.bitcast(builder.gep(p, [off]), v16.as_pointer()), align=1) for p in rows]
            ws = [builder.load(builder.bitcast(builder.gep(p, [off]), v16.as_pointer()), align=1) for p in cols]
            for a in range(TILE_ROWS):
                for b in range(TILE_COLS):
                    acc = accs[a * TILE_COLS + b]
                    builder.store(builder.call(dot, [builder.load(acc), xs[a], ws[b]]), acc)
        for a in range(TILE_ROWS):
            for b in range(TILE_COLS):
                at = builder.add(builder.mul(builder.add(i0v, ir.Constant(i64, a)), n_len),
                                 builder.add(j0v, ir.Constant(i64, b)))
                builder.store(builder.call(total, [builder.load(accs[a * TILE_COLS + b])]), builder.gep(outa.data, [at]))
        return context.get_dummy_value()
    return types.void(out, i0, j0, xu, w), codegen


@nb.njit(cache=True, nogil=True)
def _gemm(x, w, shift_sums, out):
    """out[:M, :N] = x @ w exactly: x int8 [M, K], w int8 [Np, Kp] (padded, one row per output
    column), shift_sums int32 [Np] = SHIFT * column sums."""
    M, K = x.shape
    N = out.shape[1]
    Np, Kp = w.shape
    Mp = -(-M // TILE_ROWS) * TILE_ROWS
    xu = np.full((Mp, Kp), SHIFT, dtype=np.uint8)  # padding: shifted zeros, against zero weights
    for r in range(M):
        for k in range(K):
            xu[r, k] = np.uint8(np.int32(x[r, k]) + SHIFT)
    acc = np.empty((Mp, Np), dtype=np.int32)
    for j in range(0, Np, TILE_COLS):  # a block of weight rows stays in cache while the rows pass
        for i in range(0, Mp, TILE_ROWS):
            _tile(acc, i, j, xu, w)
    for r in range(M):
        for j in range(N):
            out[r, j] = acc[r, j] - shift_sums[j]


def prepare(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights int8 [K, N] -> (w [Np, Kp] int8, one zero-padded row per output column; SHIFT
    times each column's sum, int32)."""
    k, n = q.shape
    kp, np_ = -(-k // CHUNK) * CHUNK, -(-n // TILE_COLS) * TILE_COLS
    w = np.zeros((np_, kp), dtype=np.int8)
    w[:n, :k] = np.asarray(q, dtype=np.int8).T
    sums = np.zeros(np_, dtype=np.int64)
    sums[:n] = SHIFT * q.astype(np.int64).sum(axis=0)
    wrapped = (sums + (1 << 31)) % (1 << 32) - (1 << 31)  # modulo 2^32, as the accumulators wrap
    return w, wrapped.astype(np.int32)


def mm(prepared: tuple[np.ndarray, np.ndarray], x: np.ndarray, out: np.ndarray) -> None:
    """out = x @ q (int8 rows [M, K], int32 out [M, N]) for the weights `prepare` gave."""
    w, sums = prepared
    _gemm(x, w, sums, out)
