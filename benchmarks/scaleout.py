"""Scale-out on this machine, measured in one run:

1. `ziplab sweep --jobs 2` against `--jobs 1` on the default sweep (wall time; target <= 0.6x);
2. DDP training of a mid-size rung with 2 gloo processes against 1 process at the same
   per-process thread count (training bytes/s; target >= 1.6x).

Writes benchmarks/results/scaleout.json (with the machine record) and prints a table.

    python benchmarks/scaleout.py [--size l4] [--train-bytes 2000000] [--skip-sweep]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ziplab import provenance

RESULTS = Path(__file__).resolve().parent / "results" / "scaleout.json"
console = Console()


def _run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stderr[-2000:]}")
    return time.perf_counter() - t0


def sweep_jobs(tmp: Path) -> dict:
    out = {}
    for jobs in (1, 2):
        folder = tmp / f"sweep-jobs{jobs}"
        # the default sweep's sizes and budgets, one training thread per process in both runs
        out[jobs] = _run([sys.executable, "-m", "ziplab", "sweep", "--out", str(folder), "--jobs", str(jobs),
                          "--threads", "1"])
        console.print(f"sweep --jobs {jobs}: {out[jobs]:.0f} s")
    return {"jobs1_s": round(out[1], 1), "jobs2_s": round(out[2], 1), "ratio": round(out[2] / out[1], 3),
            "target": "<= 0.6"}


def ddp(tmp: Path, size: str, train_bytes: int) -> dict:
    rates = {}
    for nproc in (1, 2):
        path = tmp / f"ddp{nproc}" / f"{size}.safetensors"
        args = ["-m", "ziplab", "train", "--size", size, "--corpus", "stdlib", "--train-bytes", str(train_bytes),
                "--threads", "1", "--quiet", "--out", str(path)]
        cmd = [sys.executable, *args] if nproc == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc), *args]
        _run(cmd)
        meta = json.loads(path.with_suffix(".json").read_text())
        rates[nproc] = meta["train_bytes_per_s"]
        console.print(f"{size} with {nproc} process(es): {rates[nproc] / 1e3:.1f} KB/s of training "
                      f"(held-out {meta['final_heldout_bpb']:.4f} bpb)")
    return {"size": size, "train_bytes": train_bytes, "one_process_bps": rates[1], "two_process_bps": rates[2],
            "speedup": round(rates[2] / rates[1], 3), "target": ">= 1.6"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="l4")
    ap.add_argument("--train-bytes", type=int, default=2_000_000)
    ap.add_argument("--skip-sweep", action="store_true")
    args = ap.parse_args()
    result = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}  # a partial rerun keeps the rest
    result.pop("machine", None)  # the record before provenance (backfilled from it)
    result.update(when=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  cpus=os.cpu_count())
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_sweep:
            result["sweep_jobs"] = sweep_jobs(Path(tmp))
        result.setdefault("ddp_runs", {})[args.size] = result["ddp"] = ddp(Path(tmp), args.size, args.train_bytes)
    t = Table(title="scale-out on this machine")
    for col in ("measure", "one", "two", "ratio", "target"):
        t.add_column(col)
    if "sweep_jobs" in result:
        s = result["sweep_jobs"]
        t.add_row("default sweep wall s (--jobs)", f"{s['jobs1_s']:.0f}", f"{s['jobs2_s']:.0f}", f"{s['ratio']:.2f}x",
                  s["target"])
    d = result["ddp"]
    t.add_row(f"{d['size']} training KB/s (processes)", f"{d['one_process_bps'] / 1e3:.1f}",
              f"{d['two_process_bps'] / 1e3:.1f}", f"{d['speedup']:.2f}x", d["target"])
    console.print(t)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(provenance.stamp(result), indent=2) + "\n")
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
