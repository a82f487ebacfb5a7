"""Neural (`nn`) and context-count (`ctx`) coding on real text, beside zlib -9 and xz -9/-9e in
the same run: actual bpb from the compressed file, the model's cross-entropy on exactly the
coded stream, their gap, and encode/decode KB/s with a verified round trip.

`--engines` codes each model (default: the shipped ones; `--model`/`--checkpoints` add more)
with every engine its family has (`--engine` of the command: v1-v4 for an LSTM; `--engine-names`
picks some, beside the newest) on the same slice, in one process: bpb from the real file,
cross-entropy, KB/s, and each engine's bpb against the newest's. The small LSTM rungs it was run with were trained by
`runs/e3check/train.sh` (3 minutes each on gutenberg, l6 8 minutes; see docs/benchmarks.md).

`--speed` times random-init models of every ladder size instead (coding speed does not depend
on the weights), with 1 and with 2 worker processes. `--cli` times the `ziplab` command itself
(start-up included, default settings) on 1 MiB and 128 KiB of held-out text beside `xz -9e` in
the same run, under native, AVX2-limited and torch-default kernels (`cli_timing`). Results go to
benchmarks/results/neural.json (one section per mode and slice size, so runs do not overwrite
each other), with the CPU's flags.

    python benchmarks/neural.py [--bytes N] [--model SPEC]... [--checkpoints DIR] [--lanes L]
    python benchmarks/neural.py --speed [--sizes l1,t4] [--bytes N] [--lanes L]
    python benchmarks/neural.py --cli [--model SPEC] [--kernels native,avx2,default] [--repeat 3]
    python benchmarks/neural.py --engines [--model SPEC]... [--checkpoints DIR] [--bytes N] [--engine-names E,...]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
# this checkout's ziplab (a worktree's, not an installed one): the code `--cli` times, and the
# commit the results' provenance records
sys.path.insert(0, str(ROOT))

from ziplab import codecs, container  # noqa: E402
from ziplab.bench import Entry, measure  # noqa: E402
from ziplab.codecs.base import CodingOptions, CodingStats  # noqa: E402
from ziplab.codecs.predictive import PARALLEL_MIN_BYTES  # noqa: E402
from ziplab import provenance  # noqa: E402
from ziplab.hardware import torch_capability  # noqa: E402
from ziplab.peers import all_peers  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpora" / "gutenberg" / "dev.txt"
RESULTS = Path(__file__).resolve().parent / "results" / "neural.json"
PEERS = ("zlib-9", "xz-9", "xz-9e")
GAP_TARGET = 0.005
#: the shipped model's size must code at >= 1/25 of xz -9e's compress speed (stretch 1/10),
#: measured in the same run on the same machine
SHIPPED_SIZE, XZ_FRACTION, XZ_STRETCH = "l4", 25, 10
WARM_BYTES = 4096

console = Console(width=150)


def load_slice(path: Path, n: int) -> bytes:
    data = path.read_bytes()[:n]
    if len(data) < n:
        console.print(f"[yellow]{path} holds only {len(data)} bytes[/]")
    return data


def peer_rows(data: bytes) -> list[dict]:
    """Peers through bench.measure (best of repeats, verified round trip)."""
    peers = all_peers()
    rows = []
    for name in PEERS:
        p = peers[name]
        m = measure(Entry(p.name, p.compress, p.decompress, False), data, repeat=True)
        rows.append({"codec": name, "params": 0, "bytes": m.compressed_bytes, "bpb": m.bpb, "ce_bpb": None,
                     "gap": None, "payload_gap": None, "enc_kbs": m.compress_mbps * 1e6 / 1024,
                     "dec_kbs": m.decompress_mbps * 1e6 / 1024, "round_trip": m.round_trip})
    return rows


def _warm_workers(name: str, level: int | None, options: dict) -> None:
    """Start the worker pool and load the model in every worker outside the timed run (a coded
    block big enough to go to the workers), so the 2-worker numbers are steady-state coding
    speed, not process start-up."""
    if int(options.get("workers") or 1) < 2:
        return
    warm = bytes(range(256)) * (2 * PARALLEL_MIN_BYTES // 256)
    container.decompress(container.compress(warm, name, level, **options), workers=options["workers"])


def code_row(data: bytes, label: str, name: str, level: int | None, params: int, **options: Any) -> dict:
    """One predictive codec: one timed encode (with CodingStats) and one timed, verified decode."""
    container.decompress(container.compress(data[:WARM_BYTES], name, level, **options))
    _warm_workers(name, level, options)
    stats = CodingStats()
    t0 = time.perf_counter()
    blob = container.compress(data, name, level, stats=stats, **options)
    t_enc = time.perf_counter() - t0
    t0 = time.perf_counter()
    back = container.decompress(blob, workers=options.get("workers") or 1)
    t_dec = time.perf_counter() - t0
    n = len(data)
    header = container.read_header(io.BytesIO(blob)).header_size
    bpb, ce = 8 * len(blob) / n, stats.ideal_bits / n
    payload_bpb = 8 * (len(blob) - header) / n
    return {"codec": label, "params": params, "bytes": len(blob), "header_bytes": header, "bpb": bpb,
            "ce_bpb": ce, "gap": bpb / ce - 1, "payload_gap": payload_bpb / ce - 1,
            "enc_kbs": n / 1024 / t_enc, "dec_kbs": n / 1024 / t_dec, "round_trip": back == data,
            "lanes": options.get("lanes"), "workers": options.get("workers", 1)}


def speed_row(data: bytes, label: str, params: int, **options: Any) -> dict:
    """Block encoder and decoder called directly, not through the container: random weights
    predict ~8 bpb, and the container would store such a block raw instead of decoding it."""
    import numpy as np

    impl = codecs.get("nn")
    workers = options.get("workers") or 1
    chosen = CodingOptions(model=options.get("model"), lanes=options.get("lanes"), workers=workers)
    stats = CodingStats()
    encoder = impl.open_encoder(None, chosen, stats=stats)
    decoder = impl.open_decoder(encoder.params, CodingOptions(workers=workers))
    raw = np.frombuffer(data, dtype=np.uint8)
    decoder.decode(encoder.encode(raw[:WARM_BYTES]), WARM_BYTES)
    if workers > 1:  # the pool's processes load the model outside the timed run
        warm = np.resize(raw, 2 * PARALLEL_MIN_BYTES)
        decoder.decode(encoder.encode(warm), len(warm))
    stats.ideal_bits = 0.0
    t0 = time.perf_counter()
    payload = encoder.encode(raw)
    t_enc = time.perf_counter() - t0
    t0 = time.perf_counter()
    back = decoder.decode(payload, len(raw))
    t_dec = time.perf_counter() - t0
    n = len(data)
    return {"codec": label, "params": params, "bytes": len(payload), "bpb": 8 * len(payload) / n,
            "ce_bpb": stats.ideal_bits / n, "enc_kbs": n / 1024 / t_enc, "dec_kbs": n / 1024 / t_dec,
            "round_trip": back.tobytes() == data, "lanes": options.get("lanes"), "workers": options.get("workers")}


def model_specs(args: argparse.Namespace) -> list[str]:
    from ziplab.models.checkpoint import shipped_path

    specs = list(args.model or [])
    if not specs:
        shipped = shipped_path()
        if shipped is not None:
            specs.append(str(shipped))
    if args.checkpoints:
        specs += [str(p) for p in sorted(Path(args.checkpoints).glob("*.safetensors"))]
    return specs


def model_label(spec: str) -> tuple[str, int]:
    from ziplab.models import load_model

    pred = load_model(spec)
    size = getattr(pred, "meta", {}).get("size", "?")
    return f"nn {size} ({Path(getattr(pred, 'path', spec)).stem})", pred.num_params()


def quality(args: argparse.Namespace, data: bytes) -> dict:
    rows = peer_rows(data)
    for order in args.ctx_orders:
        rows.append(code_row(data, f"ctx-{order}", "ctx", order, 0, lanes=args.ctx_lanes))
        show_progress(rows[-1])
    for spec in model_specs(args):
        label, n_params = model_label(spec)
        rows.append(code_row(data, label, "nn", None, n_params, model=spec, lanes=args.lanes,
                             workers=args.workers))
        show_progress(rows[-1])
    quality_table(rows, len(data))
    return {"bytes": len(data), "corpus": str(args.corpus), "lanes": args.lanes, "workers": args.workers,
            "rows": rows}


def engine_specs(args: argparse.Namespace) -> list[str]:
    """--model/--checkpoints if given, else every shipped model."""
    from ziplab.models.checkpoint import shipped_names, shipped_path

    if args.model or args.checkpoints:
        return model_specs(args)
    return [str(shipped_path(name)) for name in shipped_names()]


def engines_compared(args: argparse.Namespace, data: bytes) -> dict:
    """Every engine of each model's family on the same slice; `vs_newest` is bpb / the newest
    engine's bpb - 1 (issue #27 asks a new engine to stay within +0.5%)."""
    from ziplab.models.checkpoint import read_meta, resolve
    from ziplab.models.portable import engines

    rows = peer_rows(data)
    for spec in engine_specs(args):
        label, n_params = model_label(spec)
        known, newest = engines(read_meta(resolve(spec))["family"])
        wanted = set(args.engine_names.split(",")) | {newest} if args.engine_names else set(known)
        group = []
        for engine in (e for e in known if e in wanted):
            row = code_row(data, label, "nn", None, n_params, model=spec, lanes=args.lanes, workers=1, engine=engine)
            row["engine"] = engine
            group.append(row)
            show_progress({**row, "codec": f"{label} {engine}"})
        best = next(r["bpb"] for r in group if r["engine"] == newest)
        for row in group:
            row["vs_newest"] = row["bpb"] / best - 1
        rows += group
    t = Table(title=f"nn by engine, {len(data):,} bytes, {args.lanes} lanes, one process")
    for col in ("model", "engine", "bpb", "ce bpb", "vs newest", "enc KB/s", "dec KB/s", "ok"):
        t.add_column(col, justify="left" if col in ("model", "engine") else "right")
    for r in rows:
        t.add_row(r["codec"], r.get("engine", "-"), f"{r['bpb']:.5f}", _f(r.get("ce_bpb"), ".5f"),
                  _pct(r.get("vs_newest"), 3), f"{r['enc_kbs']:.1f}", f"{r['dec_kbs']:.1f}",
                  "yes" if r.get("round_trip", True) else "[red]NO[/]")
    console.print(t)
    return {"bytes": len(data), "corpus": str(args.corpus), "lanes": args.lanes, "rows": rows}


def show_progress(row: dict) -> None:
    console.print(f"  {row['codec']}: {row['bpb']:.4f} bpb, {row['enc_kbs']:.1f}/{row['dec_kbs']:.1f} KB/s",
                  style="dim")


def _f(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def _pct(x: float | None, digits: int) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}%"


def quality_table(rows: list[dict], n: int) -> None:
    t = Table(title=f"Coding {n >> 10} KiB of gutenberg dev (gap target ≤ {GAP_TARGET:.1%})")
    for col in ("codec", "params", "bpb", "CE bpb", "gap", "gap w/o header", "enc KB/s", "dec KB/s",
                "x zlib enc", "ok"):
        t.add_column(col, justify="left" if col == "codec" else "right")
    zlib_enc = next(r["enc_kbs"] for r in rows if r["codec"] == "zlib-9")
    for r in rows:
        gap = r["gap"]
        style = "" if gap is None else ("green" if r["payload_gap"] <= GAP_TARGET else "red")
        t.add_row(r["codec"], f"{r['params']:,}" if r["params"] else "-", f"{r['bpb']:.4f}",
                  _f(r["ce_bpb"], ".4f"), _pct(gap, 2), _pct(r["payload_gap"], 3),
                  f"{r['enc_kbs']:.1f}", f"{r['dec_kbs']:.1f}", f"{r['enc_kbs'] / zlib_enc:.4f}",
                  "yes" if r["round_trip"] else "[red]NO[/]", style=style)
    console.print(t)


def random_checkpoint(size: str, folder: Path) -> tuple[Path, int]:
    """A random-init model of a ladder size saved as a checkpoint (fp16 storage, like trained ones)."""
    import torch

    from ziplab.models.checkpoint import save_checkpoint
    from ziplab.models.ladder import rung

    torch.manual_seed(0)
    r = rung(size)
    model = r.build().eval()
    meta = {"family": r.family, "size": size, "config": model.cfg.to_dict(), "note": "random init"}
    return save_checkpoint(model, meta, folder / f"{size}-random.safetensors"), model.num_params()


def speed(args: argparse.Namespace, data: bytes) -> dict:
    if len(data) < PARALLEL_MIN_BYTES:
        console.print(f"[yellow]{len(data)} bytes < {PARALLEL_MIN_BYTES}: 2 workers will run in-process[/]")
    rows = peer_rows(data)
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            path, n_params = random_checkpoint(size, Path(tmp))
            for workers in args.worker_counts:
                row = speed_row(data, f"nn {size}", n_params, model=str(path), lanes=args.lanes, workers=workers)
                row["size"] = size
                rows.append(row)
                show_progress(rows[-1])
    speed_table(rows, len(data), args.lanes)
    return {"bytes": len(data), "lanes": args.lanes, "weights": "random init", "rows": rows}


def speed_table(rows: list[dict], n: int, lanes: int) -> None:
    t = Table(title=f"nn coding speed (portable engine), random-init weights, {n >> 10} KiB, {lanes} lanes in all")
    for col in ("codec", "params", "workers", "enc KB/s", "dec KB/s", "x zlib enc", "target", "met", "ok"):
        t.add_column(col, justify="left" if col == "codec" else "right")
    zlib_enc = next(r["enc_kbs"] for r in rows if r["codec"] == "zlib-9")
    xz9e = next(r["enc_kbs"] for r in rows if r["codec"] == "xz-9e")
    for r in rows:
        target = xz9e / XZ_FRACTION if r.get("size") == SHIPPED_SIZE else None
        r["target_kbs"] = target
        met = None if target is None else min(r["enc_kbs"], r["dec_kbs"]) >= target
        t.add_row(r["codec"], f"{r['params']:,}" if r["params"] else "-", str(r.get("workers") or "-"),
                  f"{r['enc_kbs']:.1f}", f"{r['dec_kbs']:.1f}", f"{r['enc_kbs'] / zlib_enc:.4f}",
                  "-" if target is None else f"≥ {target:.0f}", {None: "-", True: "yes", False: "[red]no[/]"}[met],
                  "yes" if r["round_trip"] else "[red]NO[/]")
    console.print(t)


def cli(args: argparse.Namespace) -> dict:
    from cli_timing import cli_rows

    codec_args = ["-m", "nn"] + ([] if not args.model else ["--model", args.model[0]])
    rows = cli_rows(codec_args, args.cli_bytes, args.kernels, args.repeat, args.corpus)
    cli_table(rows, " ".join(codec_args))
    return {"command": " ".join(codec_args), "repeat": args.repeat, "rows": rows}


def cli_table(rows: list[dict], command: str) -> None:
    t = Table(title=f"ziplab {command} as a command (start-up included) beside xz -9e, medians")
    for col in ("kernels", "bytes", "enc s", "dec s", "xz -9e s", "enc KB/s", "dec KB/s", "enc ÷ xz", "dec ÷ xz"):
        t.add_column(col, justify="right")
    for r in rows:
        if "startup" in r:
            t.add_row(r["kernels"], "1,000", f"{r['startup']['wall_s']:.2f}", "-", "-", "-", "-",
                      f"start-up, {r['startup']['cpu_s']:.2f} s CPU", "")
            continue
        t.add_row(r["kernels"], f"{r['bytes']:,}", f"{r['enc_wall_s']:.2f}", f"{r['dec_wall_s']:.2f}",
                  f"{r['xz_enc_wall_s']:.2f}", f"{r['enc_kbs']:.1f}", f"{r['dec_kbs']:.1f}",
                  f"1/{1 / r['enc_vs_xz']:.1f}", f"1/{1 / r['dec_vs_xz']:.1f}")
    console.print(t)


def write_results(section: str, result: dict) -> None:
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    old[section] = {**result, "provenance": provenance.record(),
                    "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "note": "2 shared cores: timings are noisy; compare with the peers of the same run"}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    provenance.stamp(old, old[section]["provenance"])
    RESULTS.write_text(json.dumps(old, indent=2) + "\n")
    console.print(f"wrote {RESULTS} [{section}]")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bytes", type=int, default=None, help="slice size (default 256 KiB; 128 KiB with --speed)")
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--model", action="append", help="size name or checkpoint path (repeatable)")
    ap.add_argument("--checkpoints", type=Path, help="also every *.safetensors in this folder")
    ap.add_argument("--lanes", type=int, default=None, help="nn lanes (default: the codec's)")
    ap.add_argument("--workers", type=int, default=1, help="nn worker processes (quality mode)")
    ap.add_argument("--ctx-orders", default="1,2,3,4")
    ap.add_argument("--ctx-lanes", type=int, default=None)
    ap.add_argument("--speed", action="store_true", help="random-init ladder sizes, 1 and 2 workers")
    ap.add_argument("--engines", action="store_true", help="every engine of each model's family, same slice")
    ap.add_argument("--engine-names", default=None,
                    help="with --engines: only these engines (comma-separated) beside the newest")
    ap.add_argument("--sizes", default="l1,l2,l3,l4,l5,l6,t1,t2,t3,t4,t5,t6")
    ap.add_argument("--worker-counts", default="1,2")
    ap.add_argument("--cli", action="store_true", help="time the ziplab command beside xz -9e (start-up included)")
    ap.add_argument("--cli-bytes", default=f"{1 << 20},{128 << 10}", help="slice sizes for --cli")
    ap.add_argument("--kernels", default="native,avx2,default", help="kernel levels for --cli")
    ap.add_argument("--repeat", type=int, default=3, help="timed rounds per command for --cli")
    args = ap.parse_args()
    args.cli_bytes = [int(b) for b in args.cli_bytes.split(",") if b]
    args.kernels = [k for k in args.kernels.split(",") if k]
    args.ctx_orders = [int(o) for o in args.ctx_orders.split(",") if o]
    args.sizes = [s for s in args.sizes.split(",") if s]
    args.worker_counts = [int(w) for w in args.worker_counts.split(",") if w]
    args.lanes = args.lanes or codecs.get("nn").default_lanes
    args.ctx_lanes = args.ctx_lanes or codecs.get("ctx").default_lanes
    if args.bytes is None:
        args.bytes = 128 << 10 if args.speed else 256 << 10
    return args


def main() -> None:
    args = parse_args()
    data = load_slice(args.corpus, args.bytes)
    kernels = (torch_capability() or "cpu").lower()
    if args.cli:
        write_results(f"cli-{args.model[0] if args.model else 'shipped'}", cli(args))
    elif args.engines:
        chosen = f"-{args.engine_names.replace(',', '+')}" if args.engine_names else ""
        write_results(f"engines-{len(data) >> 10}KiB-{args.lanes}lanes{chosen}", engines_compared(args, data))
    elif args.speed:  # one section per kernel level, so ATEN_CPU_CAPABILITY runs sit side by side
        write_results(f"speed-{len(data) >> 10}KiB-{args.lanes}lanes-{kernels}", speed(args, data))
    else:
        write_results(f"quality-{len(data) >> 10}KiB", quality(args, data))


if __name__ == "__main__":
    main()
