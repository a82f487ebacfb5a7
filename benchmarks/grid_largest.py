"""The (N, D) grid's largest runs against PPMd on a longer held-out slice (issue #12's last target).

The grid codes 128 KiB per run; PPMd gains more from a longer file than a static model does, so the
target is set on the first 1 MiB of dev.txt. Per family the highest-compute run of the current
recipe is range-coded for real (decoded back and compared) on the same bytes as PPMd o6 and the
other classic coders, in the same run. Where benchmarks/grid_rate_check.py trained that point at
other rates too, the one with the best validation bpb is coded (the grid's own choice rule applied
at that budget; the table says which rate and why).

    python benchmarks/grid_largest.py [--grid docs/results/gutenberg-grid] [--bytes 1048576]

With --mix each run is also coded inside `mix` (level 2: ziplab's context models learn the file
while the run brings what it knows), beside `mix --model none`, so a reader sees what the static
model leaves to adaptation. The target itself is the static run's.

Writes <grid>/largest.json (with the provenance record of the run) and prints a table; the grid report shows
it when present.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
PEER = "ppmd-o6"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", default=str(ROOT / "docs" / "results" / "gutenberg-grid"))
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpora" / "gutenberg"))
    ap.add_argument("--bytes", type=int, default=1 << 20)
    ap.add_argument("--lanes", type=int, default=None, help="coding lanes (default: the grid's)")
    ap.add_argument("--mix", action="store_true", help="also code each run inside mix (level 2)")
    ap.add_argument("--family", choices=("lstm", "transformer"), default=None,
                    help="code this family's largest run only; the other family's row in largest.json stays "
                         "(coded earlier on the same bytes; the report marks it if no longer the largest run)")
    args = ap.parse_args()

    from grid_common import open_grid

    from ziplab import provenance
    from ziplab.sweep.grid_report import largest_runs, rate_checked, rate_checks
    from ziplab.sweep.rates import split_by_recipe
    from ziplab.sweep.run import baselines, code_for_real
    from ziplab.sweep.store import LARGEST, write_json

    grid = Path(args.grid)
    results, corpus = open_grid(grid, args.corpus)
    data = corpus.heldout()[: args.bytes]
    lanes = args.lanes or results["settings"]["lanes"]
    console = Console(width=150)
    t0 = time.perf_counter()
    peers = baselines(data, codecs=("nn", "mix") if args.mix else ("nn",))
    console.print(f"classic coders on {len(data):,} held-out bytes: {time.perf_counter() - t0:.0f} s")
    kept = _kept_rows(grid / LARGEST, args.family, results["corpus_sha256"], len(data), lanes, args.mix,
                      peers) if args.family else []  # refused before any coding, not after
    rows = []
    checks = rate_checks(grid)
    for family, grid_run in sorted(largest_runs(split_by_recipe(results["runs"], results.get("tuning"))[0]).items()):
        if args.family not in (None, family):
            continue
        run = rate_checked(grid_run, checks)
        coded = code_for_real(grid / "checkpoints" / run["checkpoint"], data, lanes, 1, run["size"])
        rows.append({"family": family, "size": run["size"], "budget": run["budget"], "flops": run["flops"],
                     "checkpoint": run["checkpoint"], "lr": run["lr"], "rate_source": run["rate_source"],
                     "grid_checkpoint": run["grid_checkpoint"], "grid_slice_bpb": run["actual_bpb"], **coded,
                     "vs_peer": round(coded["actual_bpb"] - peers[PEER], 4),
                     "below_peer": coded["actual_bpb"] < peers[PEER]})
        if args.mix:
            mixed = code_for_real(grid / "checkpoints" / run["checkpoint"], data, lanes, 1, run["size"], codec="mix")
            rows[-1]["mix"] = {k: mixed[k] for k in ("actual_bpb", "compressed_bytes", "encode_kbps", "decode_kbps")}
        console.print(f"{family} {run['size']}@{run['budget']:,} lr {run['lr']:g} ({run['rate_source']}): "
                      f"{coded['actual_bpb']:.4f} bpb")
    prov = provenance.record()
    for r in rows:
        r["provenance"] = prov
    earlier = json.loads((grid / LARGEST).read_text()).get("provenance") if kept else None
    rows = kept + rows
    record = {"corpus": results["corpus"], "corpus_sha256": results["corpus_sha256"], "bytes": len(data),
              "slice": f"the first {len(data):,} bytes of the held-out split", "lanes": lanes,
              "overlap": "the slice holds the grid's evaluation slice and the validation slice its rates were "
                         "chosen on (none of it is trained on)",
              "peer": PEER, "peers": peers, "runs": rows, **({"provenance": earlier} if earlier else {}),
              "command": f"python benchmarks/grid_largest.py --grid {os.path.relpath(args.grid, ROOT)} "
                         f"--corpus {os.path.relpath(args.corpus, ROOT)} --bytes {args.bytes} --lanes {lanes}"
                         + (" --mix" if args.mix else "") + (f" --family {args.family}" if args.family else "")}
    write_json(grid / LARGEST, provenance.stamp(record, prov))

    table = Table(title=f"largest grid runs vs {PEER} on the first {len(data):,} held-out bytes ({prov['cpu']})")
    for col in ("family", "run", "lr", "128 KiB grid slice", "CE bpb", "actual bpb", PEER, "Δ vs peer", "enc KB/s",
                "inside mix"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["family"], f"{r['size']}@{r['budget'] / 1e6:g} MB", f"{r['lr']:g}", f"{r['grid_slice_bpb']:.4f}",
                      f"{r['cross_entropy_bpb']:.4f}", f"{r['actual_bpb']:.4f}", f"{peers[PEER]:.4f}",
                      f"{r['vs_peer']:+.4f}", f"{r['encode_kbps']:.1f}",
                      f"{r['mix']['actual_bpb']:.4f}" if "mix" in r else "–")
    console.print(table)
    console.print(f"wrote {grid / LARGEST}")


def _kept_rows(path: Path, family: str, corpus_sha: str, size: int, lanes: int, mix: bool,
               peers: dict) -> list[dict]:
    """The other families' rows of an earlier largest.json, if it coded the same bytes the same way,
    with or without mix alike (its classic coders' figures must match this run's: they are
    deterministic)."""
    from ziplab.sweep.grid_report import MIX_ALONE

    if not path.is_file():
        return []
    old = json.loads(path.read_text())
    same = (old.get("corpus_sha256"), old.get("bytes"), old.get("lanes"), old.get("peers", {}).get(PEER),
            MIX_ALONE in old.get("peers", {}))
    if same != (corpus_sha, size, lanes, peers[PEER], mix):
        raise SystemExit(f"{path} coded other bytes, lanes or codecs; run without --family to redo every row")
    return [r if "provenance" in r else {**r, "environment": r.get("environment", old.get("environment"))}
            for r in old.get("runs", []) if r["family"] != family]


if __name__ == "__main__":
    main()
