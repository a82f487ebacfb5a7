"""Classic-coder benchmark: ziplab's numba coders against zlib (and friends) in one run.

Checks the foundation issue's targets as ratios measured side by side, since this machine
is noisy: lzh -9 size vs zlib -9, lzh -6 speed vs zlib -6, lzh decode vs zlib decode,
lz77/lzss speed vs zlib -6, huffman MB/s, numba cold/cached start, CLI wall time on 1 KB.

    python benchmarks/classic.py [--quick] [--json benchmarks/results/classic.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from ziplab import bench, codecs
from ziplab.provenance import record as provenance_record

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpora"
TEXTS = ["alice29.txt", "asyoulik.txt", "lcet10.txt", "plrabn12.txt", "tinyshakespeare.txt"]
MIXED = ["html", "urls.10K", "geo.protodata", "kppkn.gtb", "fireworks.jpeg", "paper-100k.pdf"]
OURS = ["huffman", "lz77", "lzss", "lzh:1", "lzh:6", "lzh:9"]
PEERS = ["zlib-1", "zlib-6", "zlib-9", "bz2-9", "xz-9", "zstd-19", "brotli-11", "ppmd-o6"]


def inputs(quick: bool) -> list[tuple[str, bytes, bool]]:
    """(name, data, is_text) for every benchmark file that is present."""
    found = [(n, (SHARED / "bench" / n).read_bytes(), True) for n in TEXTS if (SHARED / "bench" / n).is_file()]
    dev = SHARED / "gutenberg" / "dev.txt"
    if dev.is_file():
        found.append(("gutenberg/dev.txt", dev.read_bytes(), True))
    if not quick:
        found += [(n, (SHARED / "bench" / n).read_bytes(), False) for n in MIXED if (SHARED / "bench" / n).is_file()]
    if not found:
        name, data = bench.builtin_sample()
        found.append((name, data, True))
    return found


def huffman_speed(data: bytes) -> dict:
    """Block-level encode/decode MB/s of the huffman codec, without container framing."""
    codec = codecs.get("huffman")
    arr = np.frombuffer(data, dtype=np.uint8)
    payload = codec.encode_block(arr, {})
    codec.decode_block(payload, len(arr), {})
    best_e = best_d = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        payload = codec.encode_block(arr, {})
        t1 = time.perf_counter()
        out = codec.decode_block(payload, len(arr), {})
        t2 = time.perf_counter()
        best_e, best_d = min(best_e, t1 - t0), min(best_d, t2 - t1)
    assert out.tobytes() == data
    return {"encode_mbps": len(data) / 1e6 / best_e, "decode_mbps": len(data) / 1e6 / best_d}


def startup_times() -> dict:
    """Numba cold compile (empty cache dir) vs cached start, and the CLI on a 1 KB file."""
    script = ("import ziplab\nfor c in ['huffman','lz77','lzss','lzh']:\n"
              "    ziplab.decompress(ziplab.compress(bytes(range(256))*4, c))\n")
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as work:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        timings = {}
        for label in ("cold_compile_s", "cached_start_s"):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", script], env=env, check=True)
            timings[label] = time.perf_counter() - t0
        src = Path(work) / "one_kb.txt"
        src.write_bytes((SHARED / "bench" / "alice29.txt").read_bytes()[:1024]
                        if (SHARED / "bench" / "alice29.txt").is_file() else bytes(1024))
        cli = [sys.executable, "-m", "ziplab", "compress", "-q", "-f", str(src)]
        subprocess.run(cli, env=env, check=True)  # warm the cache for the CLI's own path
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run(cli, env=env, check=True)
            runs.append(time.perf_counter() - t0)
        timings["cli_compress_1kb_s"] = min(runs)
    return timings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="text files only")
    ap.add_argument("--json", default="benchmarks/results/classic.json")
    args = ap.parse_args()
    console = Console()
    peers = {e.name: e for e in bench.entries([], peers=True)}
    entries = [bench.ours(s) for s in OURS] + [peers[p] for p in PEERS if p in peers]
    rows: list[dict] = []
    checks: list[dict] = []
    for name, data, is_text in inputs(args.quick):
        table = Table(title=f"{name} ({len(data):,} bytes)")
        for col in ("codec", "bytes", "bpb", "comp MB/s", "dec MB/s", "vs zlib", "ok"):
            table.add_column(col, justify="left" if col == "codec" else "right")
        with console.status(f"{name}"):
            got = {e.name: bench.measure(e, data, name) for e in entries}
        for m in got.values():
            rows.append(asdict(m) | {"text": is_text})
            vs = m.compressed_bytes / got["zlib-9"].compressed_bytes
            table.add_row(m.codec, f"{m.compressed_bytes:,}", f"{m.bpb:.3f}", f"{m.compress_mbps:.1f}",
                          f"{m.decompress_mbps:.1f}", f"{vs:.3f}", "yes" if m.round_trip else "NO",
                          style="bold" if m.ours else "")
        console.print(table)
        if is_text:
            checks.append({
                "file": name,
                "lzh9_size_vs_zlib9": got["lzh-9"].compressed_bytes / got["zlib-9"].compressed_bytes,
                "lzh6_speed_vs_zlib6": got["lzh-6"].compress_mbps / got["zlib-6"].compress_mbps,
                "lzh6_decode_vs_zlib6": got["lzh-6"].decompress_mbps / got["zlib-6"].decompress_mbps,
                "lz77_speed_vs_zlib6": got["lz77-6"].compress_mbps / got["zlib-6"].compress_mbps,
                "lzss_speed_vs_zlib6": got["lzss-6"].compress_mbps / got["zlib-6"].compress_mbps,
            })
    summary = Table(title="targets (ratios measured in the same run)")
    keys = list(checks[0]) if checks else []
    for k in keys:
        summary.add_column(k, justify="right" if k != "file" else "left")
    for c in checks:
        summary.add_row(*[c[k] if k == "file" else f"{c[k]:.3f}" for k in keys])
    console.print(summary)
    big = max((d for _, d, t in inputs(True) if t), key=len)
    huff = huffman_speed(big)
    start = startup_times()
    console.print(f"huffman block codec on {len(big):,} bytes: encode {huff['encode_mbps']:.0f} MB/s, "
                  f"decode {huff['decode_mbps']:.0f} MB/s (target 200)")
    console.print(f"numba cold compile {start['cold_compile_s']:.1f}s, cached start {start['cached_start_s']:.2f}s, "
                  f"`ziplab compress` 1 KB {start['cli_compress_1kb_s']:.2f}s (target < 1.5s)")
    out = {"provenance": provenance_record(), "measurements": rows, "targets": checks, "huffman": huff,
           "startup": start, "all_round_trips_ok": all(r["round_trip"] for r in rows)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2))
    console.print(f"wrote {args.json}")
    if not out["all_round_trips_ok"]:
        sys.exit("a round trip failed")


if __name__ == "__main__":
    main()
