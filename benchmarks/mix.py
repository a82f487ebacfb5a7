"""`mix` ablation on real text, beside PPMd, xz and bz2 in the same run.

Rows: context mixing alone (`--model none`), the neural model alone (`nn`), both mixed, and
both mixed without the SSE stage; each is a real file, decoded back and compared, timed for
encode and decode, with the peak RSS of the process that did it (one subprocess per row).

    python benchmarks/mix.py [--bytes 500000,1048576] [--model shipped] [--levels 2,3]
    python benchmarks/mix.py --cli [--levels 2] [--kernels native,avx2,default] [--repeat 3]

`--cli` times the `ziplab compress -m mix` command itself on 1 MiB and 128 KiB beside xz -9e in
the same run (`cli_timing`). Writes benchmarks/results/mix.json (one section per slice size, or
per CLI level) with the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpora" / "gutenberg" / "dev.txt"
RESULTS = Path(__file__).resolve().parent / "results" / "mix.json"
PEERS = ("ppmd-o6", "xz-9e", "bz2-9")
#: targets of issue #11, on the first 500,000 bytes of dev.txt
TARGETS = {"paq8px -8L": 1.734, "cmix v21": 1.590, "mix target": 1.85, "speed KB/s": 15.0}

ROW = r"""
import json, sys, time, resource
import numpy as np
from ziplab import container
from ziplab.codecs import mix
codec, level, model, sse, path, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1", sys.argv[5], int(sys.argv[6])
data = open(path, "rb").read()[:n]
if not sse:  # the ablation: the same level without its SSE stage
    mix.LEVELS[level] = mix.Level(mix.LEVELS[level].table_bits, mix.LEVELS[level].mixer_rate, sse=False)
options = {"model": model} if codec == "mix" else ({"model": model} if model != "shipped" else {})
warm = container.compress(data[:4096], codec, level if codec == "mix" else None, **options)
container.decompress(warm)
t0 = time.perf_counter(); blob = container.compress(data, codec, level if codec == "mix" else None, **options); enc = time.perf_counter() - t0
t0 = time.perf_counter(); back = container.decompress(blob); dec = time.perf_counter() - t0
print(json.dumps({"bytes": len(blob), "bpb": 8 * len(blob) / len(data), "enc_kbs": len(data) / 1e3 / enc,
                  "dec_kbs": len(data) / 1e3 / dec, "round_trip": back == data,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_row(codec: str, level: int, model: str, sse: bool, n: int) -> dict:
    res = subprocess.run([sys.executable, "-c", ROW, codec, str(level), model, "1" if sse else "0", str(CORPUS), str(n)],
                         capture_output=True, text=True, cwd=ROOT)
    if res.returncode:
        raise SystemExit(res.stderr[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def peer_row(name: str, data: bytes) -> dict:
    from ziplab.bench import Entry, measure
    from ziplab.peers import all_peers

    p = all_peers()[name]
    m = measure(Entry(p.name, p.compress, p.decompress, False), data, repeat=False)
    return {"bytes": m.compressed_bytes, "bpb": m.bpb, "enc_kbs": m.compress_mbps * 1e3, "dec_kbs": m.decompress_mbps * 1e3,
            "round_trip": m.round_trip, "peak_rss_mb": None}


def main() -> None:
    from ziplab import provenance

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bytes", default="500000,1048576")
    ap.add_argument("--model", default="shipped")
    ap.add_argument("--levels", default="2,3")
    ap.add_argument("--cli", action="store_true", help="time the ziplab command beside xz -9e (start-up included)")
    ap.add_argument("--cli-bytes", default=f"{1 << 20},{128 << 10}")
    ap.add_argument("--kernels", default="native,avx2,default")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    console = Console(width=140)
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    provenance.stamp(results)
    results.pop("machine", None)  # the record before provenance (backfilled from it, kept in earlier_provenance)
    levels = [int(v) for v in args.levels.split(",")]
    if args.cli:
        from cli_timing import cli_rows

        for lv in levels:
            codec_args = ["-m", "mix", f"-{lv}"] + ([] if args.model == "shipped" else ["--model", args.model])
            rows = cli_rows(codec_args, [int(b) for b in args.cli_bytes.split(",")], args.kernels.split(","),
                            args.repeat)
            for r in rows:
                console.print(r)
            results[f"cli-mix-{lv}-{args.model}"] = {"rows": rows, "command": " ".join(sys.argv),
                                                     "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
        console.print(f"wrote {RESULTS}")
        return
    for n in (int(v) for v in args.bytes.split(",")):
        data = CORPUS.read_bytes()[:n]
        rows: dict[str, dict] = {}
        plan = [(f"cm alone (mix -{lv} --model none)", "mix", lv, "none", True) for lv in levels]
        plan += [(f"nn alone ({args.model})", "nn", 0, args.model, True)]
        plan += [(f"nn + cm, no SSE (mix -{lv})", "mix", lv, args.model, False) for lv in levels[:1]]
        plan += [(f"nn + cm + SSE (mix -{lv})", "mix", lv, args.model, True) for lv in levels]
        t0 = time.time()
        for label, codec, lv, model, sse in plan:
            rows[label] = run_row(codec, lv, model, sse, n)
            console.print(f"{label}: {rows[label]['bpb']:.4f} bpb ({time.time() - t0:.0f} s)")
        for name in PEERS:
            rows[name] = peer_row(name, data)
        table = Table(title=f"mix ablation, first {n:,} bytes of gutenberg dev.txt")
        for col in ("coder", "bytes", "bpb", "enc KB/s", "dec KB/s", "peak RSS MB", "round trip"):
            table.add_column(col, justify="right" if col != "coder" else "left")
        for label, r in rows.items():
            table.add_row(label, f"{r['bytes']:,}", f"{r['bpb']:.4f}", f"{r['enc_kbs']:.1f}", f"{r['dec_kbs']:.1f}",
                          "–" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f}", str(r["round_trip"]))
        console.print(table)
        results[f"bytes_{n}"] = {"rows": rows, "targets": TARGETS, "command": " ".join(sys.argv)}
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
