"""The long mutation-fuzz campaign for the model-driven codecs (nn, ctx, mix), under numba bounds checks.

The same cases as tests/test_hardening.py::test_long_fuzz (its `mutate` and its files), run in
chunks of `--chunk` cases, one seed per chunk (seeds --seed, --seed+1, ...; seed 1 is the test's
default), so a campaign cut short still counts every finished chunk. Each chunk is its own process
under `nice`, with NUMBA_BOUNDSCHECK=1 and a separate NUMBA_CACHE_DIR (so no kernel compiled
without bounds checks is reused from __pycache__); before its first case each chunk proves the
checks are live: one of ziplab's own njit kernels, indexed out of range, must raise IndexError.

Unlike the test, a failure does not stop the chunk: every mutated file that decodes to other bytes,
raises anything but a ZiplabError, or takes over --hang seconds is saved under --log-dir as
<codec>-<sha256>.zl with its traceback in the chunk's JSON. A crash (signal) of the chunk's
process leaves the case being decoded in <codec>-seed<S>-inflight.zl.

    python benchmarks/fuzz_campaign.py [--codecs mix,ctx,nn] [--cases 100000] [--chunk nn=3000,ctx=3000,mix=1000]
                                       [--jobs 2] [--minutes 100] [--nice 5] [--keep-earlier --seed 101]
    python benchmarks/fuzz_campaign.py --summarise-only

Writes benchmarks/results/fuzz.json (counts per codec, seconds, cases/s, bounds checks, CPU flags).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "fuzz.json"
CODECS = ("mix", "ctx", "nn")  # the scheduling order: see campaign()


# ---- one chunk (runs in its own process) -------------------------------------------------------
def prove_boundscheck() -> str:
    """Index ziplab's own cached kernels out of range, one per model family (ctx's context model,
    nn's portable arithmetic, mix's counters): each must raise IndexError, else bounds checks are off."""
    import numba
    import numpy as np

    from ziplab.codecs.kernels import mixing
    from ziplab.models import context
    from ziplab.models.portable import arith

    if not numba.config.BOUNDSCHECK:
        raise SystemExit("NUMBA_BOUNDSCHECK is not set in this process")
    probes = {
        "models.context.context_key(hist[2,3], lane=2)": lambda: context.context_key(np.zeros((2, 3), np.int64), 2, 2),
        "models.portable.arith.lut_sigmoid(0.0, table[4])": lambda: arith.lut_sigmoid(0.0, np.zeros(4)),
        "codecs.kernels.mixing.update_counter(slots[2,4], row=2)": lambda: mixing.update_counter(np.zeros((2, 4), np.int64), 2, 0, 1, 255),
    }
    seen = []
    for name, probe in probes.items():
        try:
            probe()
        except IndexError as exc:
            seen.append(f"{name}: IndexError: {exc}")
        else:
            raise SystemExit(f"bounds checks are not live: {name} did not raise IndexError")
    return "; ".join(seen)


def chunk_main(codec: str, seed: int, cases: int, log_dir: Path, hang: float) -> None:
    import faulthandler

    sys.path.insert(0, str(ROOT))
    import numpy as np

    import ziplab
    from tests.test_hardening import FUZZ_CASES, TEXT, mutate
    from ziplab.errors import ZiplabError

    proof = prove_boundscheck()
    level, options = next((lv, opt) for c, lv, opt in FUZZ_CASES if c == codec)
    # the files of tests/test_hardening.py::fuzz for the model-driven codecs
    data = TEXT[:3000] + bytes(range(256)) + TEXT[3000:5000]
    data = data[:700] + bytes(range(256)) + data[700:1000]
    blob = ziplab.compress(data, codec, level, block_size=512, **options)
    model = {"model": options["model"]} if "model" in options else {}
    assert ziplab.decompress(blob, **model) == data

    log_dir.mkdir(parents=True, exist_ok=True)
    out_json = log_dir / f"{codec}-seed{seed}.json"
    inflight = log_dir / f"{codec}-seed{seed}-inflight.zl"
    crash_log = open(log_dir / f"{codec}-seed{seed}-faulthandler.txt", "w")
    faulthandler.enable(crash_log)

    counts = {"cases": 0, "errors": 0, "exact": 0}
    failures: list[dict] = []
    error_kinds: dict[str, int] = {}
    slowest = 0.0
    current: dict = {"bad": None, "t0": None, "flagged": False}

    def save(bad: bytes) -> str:
        sha = hashlib.sha256(bad).hexdigest()
        (log_dir / f"{codec}-{sha}.zl").write_bytes(bad)
        return sha

    def watchdog() -> None:  # a case over `hang` seconds: save it and dump where it is
        while True:
            time.sleep(1.0)
            t0, bad = current["t0"], current["bad"]
            if t0 is not None and not current["flagged"] and time.monotonic() - t0 > hang:
                current["flagged"] = True
                sha = save(bad)
                with open(log_dir / f"{codec}-{sha}-hang.txt", "w") as f:
                    f.write(f"seed {seed} case {counts['cases']}: over {hang} s\n")
                    faulthandler.dump_traceback(f, all_threads=True)

    threading.Thread(target=watchdog, daemon=True).start()
    rng = np.random.default_rng(seed)
    start = time.monotonic()
    for i in range(cases):
        bad = mutate(blob, rng)
        inflight.write_bytes(bad)
        current.update(bad=bad, t0=time.monotonic(), flagged=False)
        failure = None
        try:
            out = ziplab.decompress(bad, **model)
        except ZiplabError as exc:
            counts["errors"] += 1
            kind = type(exc).__name__
            error_kinds[kind] = error_kinds.get(kind, 0) + 1
        except BaseException as exc:  # noqa: BLE001 - any other exception is the finding
            if isinstance(exc, KeyboardInterrupt):
                raise
            failure = {"kind": type(exc).__name__, "traceback": traceback.format_exc()}
        else:
            if out == data:
                counts["exact"] += 1
            else:
                failure = {"kind": "other bytes", "traceback": f"decoded {len(out)} bytes, not the original {len(data)}"}
        took = time.monotonic() - current["t0"]
        current.update(t0=None)
        slowest = max(slowest, took)
        if took > hang and failure is None:
            failure = {"kind": "hang", "traceback": f"{took:.1f} s on one case"}
        if failure is not None:
            failure.update(seed=seed, case=i, sha256=save(bad), seconds=round(took, 3))
            failures.append(failure)
            print(f"FAILURE {codec} seed {seed} case {i}: {failure['kind']} {failure['sha256']}\n{failure['traceback']}",
                  flush=True)
        counts["cases"] += 1
        if counts["cases"] % 250 == 0:
            print(f"progress {counts} {time.monotonic() - start:.0f} s", flush=True)
    seconds = time.monotonic() - start
    inflight.unlink()
    result = {"codec": codec, "seed": seed, **counts, "failures": failures, "error_kinds": error_kinds,
              "seconds": round(seconds, 2), "slowest_case_s": round(slowest, 3), "boundscheck": proof,
              "numba_cache_dir": os.environ.get("NUMBA_CACHE_DIR"), "ziplab": ziplab.__file__}
    out_json.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "failures"}), flush=True)


# ---- the campaign ---------------------------------------------------------------------------
def cpu_flags() -> dict:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "")
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), [])
    return {"model": model, "cpus": os.cpu_count(), "flags": sorted(flags)}


def summarise(log_dir: Path, meta: dict | None = None) -> dict:
    per: dict[str, dict] = {}
    for path in sorted(log_dir.glob("*-seed*.json")):
        r = json.loads(path.read_text())
        p = per.setdefault(r["codec"], {"cases": 0, "errors": 0, "exact": 0, "failures": [], "seeds": [],
                                        "cpu_seconds_sum": 0.0, "slowest_case_s": 0.0, "error_kinds": {}})
        for k in ("cases", "errors", "exact"):
            p[k] += r[k]
        p["failures"] += r["failures"]
        p["seeds"].append(r["seed"])
        p["cpu_seconds_sum"] = round(p["cpu_seconds_sum"] + r["seconds"], 2)
        p["slowest_case_s"] = max(p["slowest_case_s"], r["slowest_case_s"])
        for k, v in r["error_kinds"].items():
            p["error_kinds"][k] = p["error_kinds"].get(k, 0) + v
        p["boundscheck"] = r["boundscheck"]
    for p in per.values():
        p["seeds"] = sorted(p["seeds"])
        p["cases_per_s_per_process"] = round(p["cases"] / p["cpu_seconds_sum"], 2) if p["cpu_seconds_sum"] else None
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    earlier = old.get("earlier_campaigns", [])
    out = {"what": "tests/test_hardening.py mutation fuzz (its mutate and files), one seed per chunk; invariant: "
                   "a ZiplabError or the exact original, nothing else, no case over the hang limit",
           **(meta or {k: v for k, v in old.items() if k not in ("what", "codecs", "earlier_campaigns", "totals")}),
           "codecs": per, "earlier_campaigns": earlier, "totals": totals(per, earlier)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    return out


def totals(per: dict, earlier: list[dict]) -> dict:
    """Cases, failures and seconds per codec over this campaign and the earlier ones kept beside it."""
    out: dict[str, dict] = {}
    for block in [per] + [e["codecs"] for e in earlier]:
        for codec, p in block.items():
            t = out.setdefault(codec, {"cases": 0, "failures": 0, "cpu_seconds_sum": 0.0})
            t["cases"] += p["cases"]
            t["failures"] += len(p["failures"])
            t["cpu_seconds_sum"] = round(t["cpu_seconds_sum"] + p["cpu_seconds_sum"], 2)
    return out


def keep_earlier(log_dir: Path) -> None:
    """Start a new campaign (new seeds, a new log dir) beside the one in the results file: its counts,
    seeds and machine move to `earlier_campaigns`, so the totals count both and no case is run twice."""
    if not RESULTS.exists() or any(log_dir.glob("*-seed*.json")):
        return
    old = json.loads(RESULTS.read_text())
    if "codecs" not in old:
        return
    moved = {k: v for k, v in old.items() if k not in ("what", "earlier_campaigns", "totals")}
    old["earlier_campaigns"] = old.get("earlier_campaigns", []) + [moved]
    old["codecs"] = {}
    RESULTS.write_text(json.dumps(old, indent=1) + "\n")


def earlier_cases(codec: str) -> int:
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    return sum(e["codecs"].get(codec, {}).get("cases", 0) for e in old.get("earlier_campaigns", []))


def chunk_sizes(spec: str, codecs: list[str]) -> dict[str, int]:
    if "=" not in spec:
        return {c: int(spec) for c in codecs}
    sizes = {k: int(v) for k, v in (item.split("=") for item in spec.split(","))}
    return {c: sizes[c] for c in codecs}


def campaign(args: argparse.Namespace) -> None:
    """Chunks in processes, at most --jobs at a time, each codec given about the same process time
    (the next chunk goes to the codec, not already running, that has had the least), so a campaign
    cut short by --minutes has reached every codec alike. A rerun resumes: it skips finished chunks
    and adopts chunks still running from an earlier, killed campaign (their inflight file is fresh)."""
    from ziplab.provenance import record as provenance_record

    log_dir = Path(args.log_dir).resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=args.cache_dir,
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    codecs = args.codecs.split(",")
    if args.keep_earlier:
        keep_earlier(log_dir)
    chunk = chunk_sizes(args.chunk, codecs)
    done = lambda c, seed: (log_dir / f"{c}-seed{seed}.json").exists()  # noqa: E731
    inflight = lambda c, seed: log_dir / f"{c}-seed{seed}-inflight.zl"  # noqa: E731
    live = lambda c, seed: inflight(c, seed).exists() and time.time() - inflight(c, seed).stat().st_mtime < 120  # noqa: E731
    spent = {c: sum(json.loads(f.read_text())["seconds"] for f in log_dir.glob(f"{c}-seed*.json")) for c in codecs}
    adopted = [(c, seed) for c in codecs for seed in range(args.seed, args.seed + 10_000)
               if not done(c, seed) and live(c, seed)]
    todo = {c: [] for c in codecs}
    for c in codecs:  # the next seeds of each codec up to --cases, counting the cases already run
        have = sum(json.loads(f.read_text())["cases"] for f in log_dir.glob(f"{c}-seed*.json"))
        have += sum(chunk[c] for a, _ in adopted if a == c)
        have += earlier_cases(c) if args.keep_earlier else 0
        seed = args.seed
        while have < args.cases:
            if not done(c, seed) and (c, seed) not in adopted:
                todo[c].append(seed)
                have += chunk[c]
            seed += 1
    deadline = time.monotonic() + 60 * args.minutes
    start = time.time()
    running: list[tuple[subprocess.Popen | None, tuple[str, int], float]] = [(None, a, time.time()) for a in adopted]
    for c, seed in adopted:
        print(f"{time.strftime('%H:%M:%S')} adopted {c} seed {seed}, still running", flush=True)
    crashes: list[dict] = []
    while any(todo.values()) or running:
        while any(todo.values()) and len(running) < args.jobs and time.monotonic() < deadline:
            now = time.time()
            busy = {c for _, (c, _), _ in running}
            ready = [c for c in codecs if todo[c]]
            load = {c: spent[c] + sum(now - t for _, (b, _), t in running if b == c) for c in ready}
            codec = min((c for c in ready if c not in busy), key=load.get, default=None) or min(ready, key=load.get)
            seed = todo[codec].pop(0)
            cmd = ["nice", "-n", str(args.nice), sys.executable, __file__, "--chunk-of", codec, "--seed", str(seed),
                   "--chunk", str(chunk[codec]), "--log-dir", str(log_dir), "--hang", str(args.hang)]
            log = open(log_dir / f"{codec}-seed{seed}.log", "w")
            running.append((subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT),
                            (codec, seed), time.time()))
            print(f"{time.strftime('%H:%M:%S')} start {codec} seed {seed}", flush=True)
        if time.monotonic() >= deadline:
            todo = {c: [] for c in codecs}
        time.sleep(2)
        for item in list(running):
            proc, (codec, seed), t0 = item
            if proc is None:  # adopted: finished when its JSON is written, dead when its inflight file is stale
                if done(codec, seed):
                    rc = 0
                elif not live(codec, seed):
                    rc = -1
                else:
                    continue
            elif proc.poll() is None:
                continue
            else:
                rc = proc.returncode
            running.remove(item)
            spent[codec] += time.time() - t0
            print(f"{time.strftime('%H:%M:%S')} done {codec} seed {seed}: exit {rc}", flush=True)
            if rc != 0:  # a crash: the case it was decoding is in the inflight file
                crashes.append({"codec": codec, "seed": seed, "exit": rc,
                                "inflight": inflight(codec, seed).name, "log": f"{codec}-seed{seed}.log"})
    meta = {"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(start)), "wall_seconds": round(time.time() - start),
            "chunk": chunk, "cases_asked": args.cases, "minutes": args.minutes, "jobs": args.jobs, "nice": args.nice,
            "NUMBA_BOUNDSCHECK": 1, "numba_cache_dir": args.cache_dir, "hang_limit_s": args.hang,
            "crashed_chunks": crashes, "cpu": cpu_flags(), "provenance": provenance_record()}
    print(json.dumps({c: {k: v for k, v in p.items() if k != "failures"} for c, p in summarise(log_dir, meta)["codecs"].items()}, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--codecs", default=",".join(CODECS))
    ap.add_argument("--cases", type=int, default=100_000, help="cases per codec")
    ap.add_argument("--chunk", default="nn=3000,ctx=3000,mix=1000",
                    help="cases per seed (one process): N, or codec=N,...")
    ap.add_argument("--seed", type=int, default=1, help="first seed")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=float("inf"), help="start no chunk after this")
    ap.add_argument("--nice", type=int, default=5)
    ap.add_argument("--hang", type=float, default=60.0, help="seconds on one case that count as a hang")
    ap.add_argument("--log-dir", default=str(ROOT / "fuzz-logs"))
    ap.add_argument("--cache-dir", default="/tmp/numba-boundscheck")
    ap.add_argument("--keep-earlier", action="store_true",
                    help="count the campaign already in the results file toward --cases (use new --seed values)")
    ap.add_argument("--chunk-of", help=argparse.SUPPRESS)
    ap.add_argument("--summarise-only", action="store_true")
    args = ap.parse_args()
    if args.chunk_of:
        chunk_main(args.chunk_of, args.seed, int(args.chunk), Path(args.log_dir), args.hang)
    elif args.summarise_only:
        summarise(Path(args.log_dir))
    else:
        campaign(args)


if __name__ == "__main__":
    main()
