"""Probe: an exact int8 GEMM on AVX-512 VNNI written in numba (an LLVM intrinsic, register-blocked
tiles), against torch._int_mm (oneDNN) at the shapes the engines multiply, in the same run.

Why: on 1 MiB the `nn` command spends ~1 s of ~2.9 s importing torch, only for its int8 GEMM
(docs/benchmarks.md). A kernel of our own at oneDNN's speed would make that import unnecessary
where the CPU has VNNI. Rows in [-63, 63] (engine v4) are shifted by +64 into u8 for vpdpbusd
(u8 x s8, four products summed into int32, no saturation) and the shift is taken back with the
weights' column sums: exact by construction, checked here against int64 products.

Not used by the library (yet): a research probe. Exits with a message on CPUs without VNNI.

    python benchmarks/vnni_probe.py [--repeat 200]

Writes benchmarks/results/vnni_probe.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ziplab import provenance  # noqa: E402
from ziplab.hardware import cpu_flags  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "vnni_probe.json"
#: (rows, K, N): l5's layers and output, l4's, t5's widest, at 64 lanes
SHAPES = [(64, 448, 1792), (64, 896, 1792), (64, 448, 256), (64, 224, 896), (64, 448, 896), (64, 160, 640),
          (64, 640, 160)]
#: tiles (rows x columns of the output) whose accumulators stay in registers across K
TILES = [(2, 4), (4, 4), (2, 8)]
SHIFT = 64  # engine v4's rows are within +-63


def make_gemm(ri: int, rj: int):
    """A numba GEMM out[L, N] = xu[L, Kp] . w[N, Kp] (u8 x s8 -> int32, Kp % 64 == 0, L % ri == 0,
    N % rj == 0) whose inner tile is LLVM IR: ri x rj vpdpbusd accumulators over K."""
    import numba as nb
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def tile(typingctx, out, i0, j0, xu, w):
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
            accs = [cgutils.alloca_once_value(builder, ir.Constant(v16, None)) for _ in range(ri * rj)]
            rows = [builder.gep(xa.data, [builder.mul(builder.add(i0v, ir.Constant(i64, a)), k_len)]) for a in range(ri)]
            cols = [builder.gep(wa.data, [builder.mul(builder.add(j0v, ir.Constant(i64, b)), k_len)]) for b in range(rj)]
            with cgutils.for_range(builder, builder.udiv(k_len, ir.Constant(i64, 64))) as loop:
                off = builder.mul(loop.index, ir.Constant(i64, 64))
                xs = [builder.load(builder.bitcast(builder.gep(p, [off]), v16.as_pointer()), align=1) for p in rows]
                ws = [builder.load(builder.bitcast(builder.gep(p, [off]), v16.as_pointer()), align=1) for p in cols]
                for a in range(ri):
                    for b in range(rj):
                        acc = accs[a * rj + b]
                        builder.store(builder.call(dot, [builder.load(acc), xs[a], ws[b]]), acc)
            for a in range(ri):
                for b in range(rj):
                    at = builder.add(builder.mul(builder.add(i0v, ir.Constant(i64, a)), n_len),
                                     builder.add(j0v, ir.Constant(i64, b)))
                    builder.store(builder.call(total, [builder.load(accs[a * rj + b])]), builder.gep(outa.data, [at]))
            return context.get_dummy_value()
        return types.void(out, i0, j0, xu, w), codegen

    @nb.njit(nogil=True)
    def gemm(xu, w, out):
        rows, cols = out.shape
        for j in range(0, cols, rj):  # a column block's weights stay in cache while the rows pass
            for i in range(0, rows, ri):
                tile(out, i, j, xu, w)

    return gemm


def best_of(fn, repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - t0) / repeat)
    return best


def probe(shape: tuple[int, int, int], gemms: dict, repeat: int) -> dict:
    import torch

    L, K, N = shape
    rng = np.random.default_rng(0)
    x = rng.integers(-SHIFT + 1, SHIFT, (L, K)).astype(np.int8)
    w = rng.integers(-127, 128, (N, K)).astype(np.int8)
    kp = -(-K // 64) * 64
    xu = np.full((L, kp), SHIFT, dtype=np.uint8)  # padding: shifted zeros against zero weights
    xu[:, :K] = (x.astype(np.int16) + SHIFT).astype(np.uint8)
    wp = np.zeros((N, kp), dtype=np.int8)
    wp[:, :K] = w
    want = x.astype(np.int64) @ w.T.astype(np.int64)
    correction = SHIFT * w.astype(np.int64).sum(axis=1)
    row = {"shape": list(shape)}
    for name, gemm in gemms.items():
        out = np.zeros((L, N), dtype=np.int32)
        gemm(xu, wp, out)
        exact = bool(np.array_equal(out.astype(np.int64) - correction[None, :], want))
        secs = best_of(lambda: gemm(xu, wp, out), repeat)
        row[name] = {"exact": exact, "us": secs * 1e6, "gmacs": L * K * N / secs / 1e9}
    xt = torch.from_numpy(x)
    wt = torch.from_numpy(w).t()  # [K, N] held column-major, as the engines' `int_mm` kernel holds it
    ot = torch.from_numpy(np.zeros((L, N), dtype=np.int32))
    torch._int_mm(xt, wt, out=ot)
    secs = best_of(lambda: torch._int_mm(xt, wt, out=ot), repeat)
    row["torch_int_mm"] = {"exact": bool(np.array_equal(ot.numpy().astype(np.int64), want)), "us": secs * 1e6,
                           "gmacs": L * K * N / secs / 1e9}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    if "avx512_vnni" not in cpu_flags():
        raise SystemExit("vnni_probe: this CPU has no AVX-512 VNNI; nothing to measure")
    import torch

    torch.set_num_threads(1)
    gemms = {f"vnni_{ri}x{rj}": make_gemm(ri, rj) for ri, rj in TILES}
    rows = []
    for shape in SHAPES:
        row = probe(shape, gemms, args.repeat)
        rows.append(row)
        print(shape, {k: f"{v['gmacs']:.0f} GMAC/s{'' if v['exact'] else ' INEXACT'}" for k, v in row.items() if k != "shape"})
    result = {"rows": rows, "command": " ".join(sys.argv), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "note": "one thread; best of 3 rounds of --repeat calls; the torch column includes its Python call overhead"}
    provenance.stamp(result)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
