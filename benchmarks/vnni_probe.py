"""Probe: the VNNI tiles (`ziplab/models/portable/vnni.py`: vpdpbusd from numba through an LLVM
intrinsic, register-blocked) against torch._int_mm (oneDNN) at the shapes the engines multiply,
in the same run, every product checked against int64.

Why: on 1 MiB the `nn` command spent ~1 s of ~2.9 s importing torch, only for its int8 GEMM
(docs/benchmarks.md); the tiles at oneDNN's speed or better mean importing torch for the
products never pays where they run (`kernel_choice.TORCH_MIN_MACS`). Exits with a message on CPUs without VNNI.

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
from ziplab.models.portable import vnni  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "vnni_probe.json"
#: (rows, K, N): l5's layers and output, l4's, t5's widest, at 64 lanes
SHAPES = [(64, 448, 1792), (64, 896, 1792), (64, 448, 256), (64, 224, 896), (64, 448, 896), (64, 160, 640),
          (64, 640, 160)]
ROW_MAX = 63  # engine v4's rows


def best_of(fn, repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - t0) / repeat)
    return best


def probe(shape: tuple[int, int, int], repeat: int) -> dict:
    import torch

    L, K, N = shape
    rng = np.random.default_rng(0)
    x = rng.integers(-ROW_MAX, ROW_MAX + 1, (L, K)).astype(np.int8)
    q = rng.integers(-127, 128, (K, N)).astype(np.int8)
    want = x.astype(np.int64) @ q.astype(np.int64)
    prepared, out = vnni.prepare(q), np.zeros((L, N), dtype=np.int32)
    vnni.mm(prepared, x, out)
    secs = best_of(lambda: vnni.mm(prepared, x, out), repeat)
    row = {"shape": list(shape), "vnni": {"exact": bool(np.array_equal(out.astype(np.int64), want)), "us": secs * 1e6,
                                          "gmacs": L * K * N / secs / 1e9}}
    w = q.T
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
    if not vnni.supported():
        raise SystemExit("vnni_probe: no AVX-512 VNNI here (or numba targets a named CPU); nothing to measure")
    import torch

    torch.set_num_threads(1)
    rows = []
    for shape in SHAPES:
        row = probe(shape, args.repeat)
        rows.append(row)
        print(shape, {k: f"{v['gmacs']:.0f} GMAC/s{'' if v['exact'] else ' INEXACT'}" for k, v in row.items() if k != "shape"})
    result = {"rows": rows, "command": " ".join(sys.argv), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "note": "one thread; best of 3 rounds of --repeat calls; the torch column includes its Python call overhead"}
    provenance.stamp(result)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
