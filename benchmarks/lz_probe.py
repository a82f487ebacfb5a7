"""Quick probe of the lz77 and lzss codecs against zlib, measured in the same run.

The machine is shared, so absolute MB/s are noisy: every timing is best-of-N with the codec
and zlib runs interleaved, and speeds are also reported as ratios to zlib at the same level
and to zlib -6 (the target for the default level).

    python benchmarks/lz_probe.py [--reps 3] [--levels 1,6,9]

Prints a table and writes benchmarks/results/lz_probe.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from ziplab.codecs import get

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"
RESULTS = ROOT / "benchmarks" / "results" / "lz_probe.json"
CODECS = ("lz77", "lzss")


def text_files() -> list[Path]:
    bench = sorted((CORPORA / "bench").glob("*.txt"))
    dev = CORPORA / "gutenberg" / "dev.txt"
    return bench + ([dev] if dev.is_file() else [])


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def probe_file(name: str, raw: bytes, levels: list[int], reps: int) -> list[dict]:
    """One row per (codec, level); zlib at the same level and at -6 timed alongside."""
    data = np.frombuffer(raw, np.uint8)
    zsize = {lv: len(zlib.compress(raw, lv)) for lv in set(levels) | {6}}
    rows = []
    for codec_name in CODECS:
        codec = get(codec_name)
        for lv in levels:
            params = codec.params(lv)
            payload = codec.encode_block(data, params)
            assert codec.decode_block(payload, len(raw), params).tobytes() == raw
            z = zlib.compress(raw, lv)
            te = td = tz = tz6 = tzd = float("inf")
            for _ in range(reps):  # interleaved, so load from other processes hits all alike
                te = min(te, timed(lambda: codec.encode_block(data, params)))
                tz = min(tz, timed(lambda: zlib.compress(raw, lv)))
                tz6 = min(tz6, timed(lambda: zlib.compress(raw, 6)))
                td = min(td, timed(lambda: codec.decode_block(payload, len(raw), params)))
                tzd = min(tzd, timed(lambda: zlib.decompress(z)))
            mb = len(raw) / 1e6
            rows.append(
                {
                    "file": name,
                    "codec": codec_name,
                    "level": lv,
                    "bytes": len(raw),
                    "size": len(payload),
                    "ratio": len(payload) / len(raw),
                    "zlib_size": zsize[lv],
                    "zlib_ratio": zsize[lv] / len(raw),
                    "size_vs_zlib": len(payload) / zsize[lv],
                    "enc_MBps": mb / te,
                    "dec_MBps": mb / td,
                    "zlib_enc_MBps": mb / tz,
                    "zlib6_enc_MBps": mb / tz6,
                    "zlib_dec_MBps": mb / tzd,
                    "enc_vs_zlib": tz / te,
                    "enc_vs_zlib6": tz6 / te,
                    "dec_vs_zlib": tzd / td,
                    "seconds": {"enc": te, "dec": td, "zlib_enc": tz, "zlib6_enc": tz6, "zlib_dec": tzd},
                }
            )
    return rows


def summarize(rows: list[dict], levels: list[int]) -> dict:
    """Totals over all files: summed bytes and summed best times, per codec and level."""
    out: dict = {}
    for codec_name in CODECS:
        for lv in levels:
            sel = [r for r in rows if r["codec"] == codec_name and r["level"] == lv]
            secs = {k: sum(r["seconds"][k] for r in sel) for k in sel[0]["seconds"]}
            total = sum(r["bytes"] for r in sel)
            out[f"{codec_name}-{lv}"] = {
                "ratio": sum(r["size"] for r in sel) / total,
                "zlib_ratio": sum(r["zlib_size"] for r in sel) / total,
                "enc_MBps": total / 1e6 / secs["enc"],
                "dec_MBps": total / 1e6 / secs["dec"],
                "zlib_enc_MBps": total / 1e6 / secs["zlib_enc"],
                "zlib6_enc_MBps": total / 1e6 / secs["zlib6_enc"],
                "enc_vs_zlib": secs["zlib_enc"] / secs["enc"],
                "enc_vs_zlib6": secs["zlib6_enc"] / secs["enc"],
                "dec_vs_zlib": secs["zlib_dec"] / secs["dec"],
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--levels", default="1,6,9")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    files = text_files()
    if not files:
        raise SystemExit(f"no text files under {CORPORA}")
    warm = np.frombuffer(b"warm up the numba caches " * 256, np.uint8)
    for codec_name in CODECS:  # compile or load every kernel before timing
        codec = get(codec_name)
        codec.decode_block(codec.encode_block(warm, codec.params(6)), warm.size, {})

    rows: list[dict] = []
    head = f"{'file':<22}{'codec':>6}{'lvl':>4}{'ratio':>8}{'zlib':>8}{'enc MB/s':>10}{'/zlib':>7}{'/zlib6':>8}{'dec MB/s':>10}{'/zlib':>7}"
    print(head)
    for path in files:
        for r in probe_file(path.name, path.read_bytes(), levels, args.reps):
            rows.append(r)
            print(
                f"{r['file']:<22}{r['codec']:>6}{r['level']:>4}{r['ratio']:>8.4f}{r['zlib_ratio']:>8.4f}"
                f"{r['enc_MBps']:>10.1f}{r['enc_vs_zlib']:>7.2f}{r['enc_vs_zlib6']:>8.2f}"
                f"{r['dec_MBps']:>10.1f}{r['dec_vs_zlib']:>7.2f}"
            )
    summary = summarize(rows, levels)
    print("\ntotals over all files (ratio = compressed/original; speeds vs zlib timed beside them):")
    for key, s in summary.items():
        print(
            f"{key:<8} ratio {s['ratio']:.4f} (zlib same level {s['zlib_ratio']:.4f}); "
            f"compress {s['enc_MBps']:.1f} MB/s = {s['enc_vs_zlib']:.2f}x zlib same level, {s['enc_vs_zlib6']:.2f}x zlib -6; "
            f"decompress {s['dec_MBps']:.0f} MB/s = {s['dec_vs_zlib']:.2f}x zlib"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.processor() or platform.machine(), "reps": args.reps, "levels": levels}
    RESULTS.write_text(json.dumps({**meta, "rows": rows, "summary": summary}, indent=1))
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
