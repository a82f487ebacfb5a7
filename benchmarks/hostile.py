"""The crafted corpus of issue #26 through the CLI, one file at a time: wall time, peak RSS, exit
status and the one line each gets, under the default memory limit; writes
benchmarks/results/hostile.json with the machine's record.

    python benchmarks/hostile.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import hostile  # noqa: E402 - the corpus lives beside the tests that use it

from ziplab.provenance import record as provenance_record  # noqa: E402


def measure(args: list[str], cwd: Path) -> dict:
    """One CLI run in a fresh wrapper process, so RUSAGE_CHILDREN's peak is this run's alone."""
    code = ("import resource, subprocess, sys, json, time; t = time.perf_counter(); "
            f"r = subprocess.run([sys.executable, '-m', 'ziplab', *{args!r}], capture_output=True); "
            "print(json.dumps([r.returncode, r.stderr.decode(errors='replace'), "
            "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=cwd, check=True, text=True)
    rc, err, rss_kb, seconds = json.loads(out.stdout)
    lines = err.strip().splitlines()
    return {"exit": rc, "lines": len(lines), "message": lines[-1][:300] if lines else "", "seconds": round(seconds, 2),
            "peak_rss_mib": round(rss_kb / 1024, 1), "traceback": "Traceback" in err}


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "in.txt").write_bytes(hostile.TEXT)
        for name, build in hostile.claims().items():
            (work / f"{name}.zl").write_bytes(build())
            row = measure(["-t", "-q", "--model", str(hostile.T1), f"{name}.zl"], work)
            rows.append({"class": "header claims 256 MiB", "case": name,
                         "file_bytes": (work / f"{name}.zl").stat().st_size, **row})
            print(rows[-1])
        for name, build in hostile.hostile_checkpoints().items():
            path = build(work / "evil.safetensors")
            row = measure(["compress", "-q", "-f", "-m", "nn", "--model", str(path), "-o", "out.zl", "in.txt"], work)
            rows.append({"class": "hostile checkpoint", "case": name, **row})
            print(rows[-1])
    worst = {"seconds": max(r["seconds"] for r in rows), "peak_rss_mib": max(r["peak_rss_mib"] for r in rows)}
    ok = all(r["exit"] == 1 and r["lines"] == 1 and not r["traceback"] for r in rows)
    record = {"command": "python benchmarks/hostile.py", "provenance": provenance_record(), "all_one_line_exit_1": ok,
              "worst": worst, "cases": rows}
    out = ROOT / "benchmarks" / "results" / "hostile.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"worst: {worst}; every case one line, exit 1: {ok} -> {out}")


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"{time.perf_counter() - t0:.0f} s")
