"""`mix` on real text: the levels as shipped (a bpb-vs-speed Pareto table) and an ablation of
engine 3's parts, beside PPMd, xz and bz2 in the same run.

Rows are real files, decoded back and compared, timed for encode and decode, with the peak RSS
of the process that did it (one subprocess per row). The ablation: context mixing alone (with
and without engine 3's new contexts), each shipped model alone (`nn`), each model inside `mix`,
the pair, and the strongest single-model row without each of engine 3's parts (new contexts,
neural SSE, third mixer) and without the final SSE stages.

    python benchmarks/mix.py [--bytes 500000] [--plan full|levels|adaptation] [--file PATH]
    python benchmarks/mix.py --plan pair --extra runs/t5-large.safetensors
    python benchmarks/mix.py --plan contexts
    python benchmarks/mix.py --cli [--levels 2] [--kernels native,avx2,default] [--repeat 3]

`--plan levels` codes only the shipped levels (e.g. the whole dev.txt: `--bytes 0`); `adaptation`
the neural SSE on and off at level 2 (`--file` another text, e.g. a bench/ non-prose file); `pair`
a further model (`--extra`, e.g. a transformer beside the shipped LSTM) alone, inside mix, and
mixed with the strongest shipped model, beside the strongest alone; `contexts` level 2 without
each of engine 3's five new contexts in turn (its hash held at 0: the input stays, its
information goes).
`mix` rows run on one thread unless `--threads N` (-T) says otherwise; `nn` rows as the codec's
defaults. `--cli` times the `ziplab compress -m mix` command itself on 1 MiB and 128 KiB beside xz -9e in
the same run (`cli_timing`). Writes benchmarks/results/mix.json (one section per slice and plan,
or per CLI level) with the machine it ran on.
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
# this checkout's ziplab (a worktree's, not an installed one): the code `--cli` times, and the
# commit the results' provenance records
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "corpora" / "gutenberg" / "dev.txt"
RESULTS = Path(__file__).resolve().parent / "results" / "mix.json"
PEERS = ("ppmd-o6", "xz-9e", "bz2-9")
#: targets of issue #28, on the first 500,000 bytes of dev.txt (paq8px and cmix measured there)
TARGETS = {"paq8px -8L": 1.734, "cmix v21": 1.590, "strongest level": 1.62, "default level": 1.68,
           "default speed KB/s": 20.0}

ROW = r"""
import json, sys, time, resource
from ziplab import container
from ziplab.codecs import mix
spec = json.loads(sys.argv[1])
data = open(spec["path"], "rb").read()
data = data[:spec["n"]] if spec["n"] else data
codec, level = spec["codec"], spec["level"]
if codec == "mix":  # the row's variant of the level: its models, parts left out, SSE
    row = mix.LEVELS[level]
    mix.LEVELS[level] = row._replace(models=tuple(spec.get("models") or row.models), ablate=spec.get("ablate", 0),
                                     sse=spec.get("sse", True))
    options = {"model": "none"} if spec.get("models") == ["none"] else {}
    options["workers"] = spec.get("threads", 1)  # -T: threads over the model's lanes
else:  # nn: its default substreams and processes, as every earlier row
    options = {"model": spec["models"][0]}
lv = level if codec == "mix" else None
warm = container.compress(data[:4096], codec, lv, **options)
container.decompress(warm, workers=options.get("workers"))
t0 = time.perf_counter(); blob = container.compress(data, codec, lv, **options); enc = time.perf_counter() - t0
t0 = time.perf_counter(); back = container.decompress(blob, workers=options.get("workers")); dec = time.perf_counter() - t0
print(json.dumps({"bytes": len(blob), "bpb": 8 * len(blob) / len(data), "enc_kbs": len(data) / 1e3 / enc,
                  "dec_kbs": len(data) / 1e3 / dec, "round_trip": back == data,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_row(spec: dict) -> dict:
    res = subprocess.run([sys.executable, "-c", ROW, json.dumps(spec)], capture_output=True, text=True, cwd=ROOT)
    if res.returncode:
        raise SystemExit(res.stderr[-2000:])
    return {**json.loads(res.stdout.strip().splitlines()[-1]), "spec": {k: v for k, v in spec.items() if k != "path"}}


def plan_rows(plan: str, extra: str | None = None) -> list[tuple[str, dict]]:
    """(label, row spec) for a plan; models are shipped names (mix.LEVELS names them)."""
    from ziplab.codecs import mix
    from ziplab.codecs.kernels import mixing

    strong, fast = mix.STRONG_MODEL, mix.FAST_MODEL
    two = " + ".join(mix.LEVELS[2].models)  # level 2's own model(s): the rows without `models` mix these
    levels = [(f"mix -{lv} ({' + '.join(r.models)})", {"codec": "mix", "level": lv}) for lv, r in mix.LEVELS.items()]
    if plan == "levels":
        return levels
    if plan == "pair":
        if not extra:
            raise SystemExit("--plan pair needs --extra MODEL")
        name = Path(extra).stem
        extra = str(Path(extra).resolve()) if Path(extra).is_file() else extra  # rows run with cwd=ROOT
        return [(f"nn alone ({strong})", {"codec": "nn", "level": 0, "models": [strong]}),
                (f"nn alone ({name})", {"codec": "nn", "level": 0, "models": [extra]}),
                (f"mix -2 with {strong}", {"codec": "mix", "level": 2, "models": [strong]}),
                (f"mix -2 with {name}", {"codec": "mix", "level": 2, "models": [extra]}),
                (f"mix -2 with {strong} + {name}", {"codec": "mix", "level": 2, "models": [strong, extra]}),
                (f"mix -2 with {strong} + {name}, no neural SSE",
                 {"codec": "mix", "level": 2, "models": [strong, extra], "ablate": mixing.NO_NEURAL_SSE})]
    if plan == "contexts":  # each of engine 3's five new contexts without its information
        return [(f"mix -2 ({two})", {"codec": "mix", "level": 2})] + [
            (f"mix -2 ({two}), no {name} context", {"codec": "mix", "level": 2, "ablate": mixing.NO_CONTEXT << i})
            for i, name in enumerate(mixing.NEW_CONTEXT_NAMES)]
    if plan == "adaptation":
        return [(f"mix -2 ({two})", {"codec": "mix", "level": 2}),
                (f"mix -2 ({two}), no neural SSE", {"codec": "mix", "level": 2, "ablate": mixing.NO_NEURAL_SSE})]
    return levels + [
        ("cm alone (mix -2 --model none)", {"codec": "mix", "level": 2, "models": ["none"]}),
        ("cm alone, engine-2 contexts", {"codec": "mix", "level": 2, "models": ["none"],
                                         "ablate": mixing.NO_NEW_CONTEXTS}),
        (f"nn alone ({fast})", {"codec": "nn", "level": 0, "models": [fast]}),
        (f"nn alone ({strong})", {"codec": "nn", "level": 0, "models": [strong]}),
        (f"mix -2 with {fast}", {"codec": "mix", "level": 2, "models": [fast]}),
        (f"mix -2 with {strong} + {fast}", {"codec": "mix", "level": 2, "models": [strong, fast]}),
        (f"mix -2 ({two}), no new contexts", {"codec": "mix", "level": 2, "ablate": mixing.NO_NEW_CONTEXTS}),
        (f"mix -2 ({two}), no neural SSE", {"codec": "mix", "level": 2, "ablate": mixing.NO_NEURAL_SSE}),
        (f"mix -2 ({two}), no third mixer", {"codec": "mix", "level": 2, "ablate": mixing.NO_THIRD_MIXER}),
        (f"mix -2 ({two}), no final SSE", {"codec": "mix", "level": 2, "sse": False}),
        (f"mix -2 ({two}), engine 3 parts all off", {"codec": "mix", "level": 2, "ablate": 7}),
    ]


def peer_row(name: str, data: bytes) -> dict:
    from ziplab.bench import Entry, measure
    from ziplab.peers import all_peers

    p = all_peers()[name]
    m = measure(Entry(p.name, p.compress, p.decompress, False), data, repeat=False)
    return {"bytes": m.compressed_bytes, "bpb": m.bpb, "enc_kbs": m.compress_mbps * 1e3, "dec_kbs": m.decompress_mbps * 1e3,
            "round_trip": m.round_trip, "peak_rss_mb": None}


def save(key: str, section: dict) -> None:
    """Merge one section into mix.json, re-read just before writing: two runs of this script
    (e.g. one per core) each keep the other's sections."""
    import os

    from ziplab import provenance

    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    provenance.stamp(results)
    results.pop("machine", None)  # the record before provenance (backfilled from it, kept in earlier_provenance)
    results[key] = section
    tmp = RESULTS.with_name(f"{RESULTS.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(tmp, RESULTS)


def main() -> None:

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bytes", default="500000", help="slice sizes (0: the whole file)")
    ap.add_argument("--plan", default="full", choices=("full", "levels", "adaptation", "pair", "contexts"))
    ap.add_argument("--threads", type=int, default=1,
                    help="mix rows: threads sharing the model's lanes (-T; default 1: one core per row, as before)")
    ap.add_argument("--extra", help="--plan pair: the further model (a checkpoint path or shipped name)")
    ap.add_argument("--file", default=str(CORPUS))
    ap.add_argument("--model", default="shipped", help="--cli: the model (default: each level's own)")
    ap.add_argument("--levels", default="2,3", help="--cli: the levels timed")
    ap.add_argument("--cli", action="store_true", help="time the ziplab command beside xz -9e (start-up included)")
    ap.add_argument("--cli-bytes", default=f"{1 << 20},{128 << 10}")
    ap.add_argument("--kernels", default="native,avx2,default")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    console = Console(width=140)
    if args.cli:
        from cli_timing import cli_rows

        for lv in (int(v) for v in args.levels.split(",")):
            codec_args = ["-m", "mix", f"-{lv}"] + ([] if args.model == "shipped" else ["--model", args.model])
            rows = cli_rows(codec_args, [int(b) for b in args.cli_bytes.split(",")], args.kernels.split(","),
                            args.repeat)
            for r in rows:
                console.print(r)
            name = args.model if args.model == "shipped" else Path(args.model).stem  # a path: its file name
            save(f"cli-mix-{lv}-{name}", {"rows": rows, "command": " ".join(sys.argv),
                                                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        console.print(f"wrote {RESULTS}")
        return
    path = Path(args.file)
    for n in (int(v) for v in args.bytes.split(",")):
        whole = path.read_bytes()
        data = whole[:n] if n else whole
        rows: dict[str, dict] = {}
        t0 = time.time()
        for label, spec in plan_rows(args.plan, args.extra):
            rows[label] = run_row({**spec, "path": str(path), "n": n,
                                   **({"threads": args.threads} if spec["codec"] == "mix" else {})})
            console.print(f"{label}: {rows[label]['bpb']:.4f} bpb, {rows[label]['enc_kbs']:.1f} / "
                          f"{rows[label]['dec_kbs']:.1f} KB/s ({time.time() - t0:.0f} s)")
        for name in PEERS:
            rows[name] = peer_row(name, data)
        what = f"the first {n:,} bytes of {path.name}" if n else f"the whole {path.name} ({len(data):,} bytes)"
        table = Table(title=f"mix ({args.plan}), {what}")
        for col in ("coder", "bytes", "bpb", "enc KB/s", "dec KB/s", "peak RSS MB", "round trip"):
            table.add_column(col, justify="right" if col != "coder" else "left")
        for label, r in rows.items():
            table.add_row(label, f"{r['bytes']:,}", f"{r['bpb']:.4f}", f"{r['enc_kbs']:.1f}", f"{r['dec_kbs']:.1f}",
                          "–" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f}", str(r["round_trip"]))
        console.print(table)
        from ziplab import codecs

        key = f"v{codecs.get('mix').format_version}-{args.plan}-{path.name}-{n or 'whole'}"  # v3: ziplab 0.5-0.7
        save(key, {"rows": rows, "slice": what, "targets": TARGETS, "command": " ".join(sys.argv),
                   "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
