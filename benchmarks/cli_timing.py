"""The `ziplab` command as a user runs it, timed whole (interpreter start, imports, model load,
worker processes, coding), beside `xz -9e` run on the same file in the same loop, so the ratio
holds on a shared, noisy machine. Used by neural.py --cli and mix.py --cli.

Each (kernel level, slice) runs one untimed warm-up of every command (numba and quantised-model
caches warm, as after a user's first run), then `repeat` rounds of xz / ziplab encode / ziplab
decode in turn; the medians are kept, and each decode is checked against the input.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpora" / "gutenberg" / "dev.txt"
#: kernel levels: this CPU's own, every library limited to AVX2 (no AVX-512, no VNNI), and
#: torch's scalar kernels
KERNELS: dict[str, dict[str, str]] = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
             "NUMBA_CPU_NAME": "haswell"},
    "default": {"ATEN_CPU_CAPABILITY": "default"},
}


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KERNELS["avx2"]}
    env.update(extra)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run(argv: list[str], env: dict[str, str], out: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its children) of one run, stdout to `out`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(out, "wb") as f:
        subprocess.run(argv, stdout=f, stderr=subprocess.DEVNULL, env=env, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def time_slice(codec_args: list[str], data: bytes, env: dict[str, str], repeat: int) -> dict:
    """Medians of xz -9e and ziplab compress/decompress on one slice, and the ratios."""
    zl = [sys.executable, "-m", "ziplab"]
    with tempfile.TemporaryDirectory() as tmp:
        src, packed, back, xzout = (Path(tmp) / n for n in ("in.txt", "in.zl", "back.txt", "in.xz"))
        src.write_bytes(data)
        cmds = {"xz_enc": ["xz", "-9e", "-c", str(src)], "enc": [*zl, "compress", "-q", *codec_args, "-c", str(src)],
                "dec": [*zl, "decompress", "-q", "-c", str(packed)], "xz_dec": ["xz", "-dc", str(xzout)]}
        outs = {"xz_enc": xzout, "enc": packed, "dec": back, "xz_dec": Path(tmp) / "xzback"}
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in cmds}
        for r in range(repeat + 1):
            for key, argv in cmds.items():
                measured = run(argv, env, outs[key])
                if r:
                    times[key].append(measured)
            if back.read_bytes() != data:
                raise SystemExit(f"ziplab {' '.join(codec_args)}: round trip failed")
        med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()}
        kb = len(data) / 1024
        row = {"bytes": len(data), "zl_bytes": packed.stat().st_size, "xz_bytes": xzout.stat().st_size}
        for key, (wall, cpu) in med.items():
            row[f"{key}_wall_s"], row[f"{key}_cpu_s"], row[f"{key}_kbs"] = wall, cpu, kb / wall
        row["enc_vs_xz"] = med["xz_enc"][0] / med["enc"][0]  # ziplab speed / xz -9e compress speed
        row["dec_vs_xz"] = med["xz_enc"][0] / med["dec"][0]
        return row


def startup(codec_args: list[str], env: dict[str, str], repeat: int) -> dict:
    """Wall and CPU time to compress 1,000 bytes (median of repeat runs after a warm-up)."""
    data = CORPUS.read_bytes()[:1000]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "small.txt"
        src.write_bytes(data)
        argv = [sys.executable, "-m", "ziplab", "compress", "-q", *codec_args, "-c", str(src)]
        runs = [run(argv, env, Path(tmp) / "small.zl") for _ in range(repeat + 1)][1:]
    return {"bytes": len(data), "wall_s": statistics.median(w for w, _ in runs),
            "cpu_s": statistics.median(c for _, c in runs)}


def cli_rows(codec_args: list[str], sizes: list[int], kernels: list[str], repeat: int,
             corpus: Path = CORPUS) -> list[dict]:
    """One row per (kernel level, slice size), plus a start-up row per kernel level."""
    if shutil.which("xz") is None:
        raise SystemExit("xz is not on PATH: the CLI timing needs it as the peer")
    text = corpus.read_bytes()
    rows = []
    for kernel in kernels:
        env = _env(KERNELS[kernel])
        rows.append({"kernels": kernel, "command": " ".join(codec_args), "startup": startup(codec_args, env, repeat)})
        for n in sizes:
            rows.append({"kernels": kernel, "command": " ".join(codec_args),
                         **time_slice(codec_args, text[:n], env, repeat)})
    return rows
