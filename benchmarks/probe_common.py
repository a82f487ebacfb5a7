"""What the codec probes (lz_probe.py, lzh_probe.py) share: the text corpus, best-of-N timings
taken interleaved with zlib, the command line and the results file."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ziplab.provenance import record as provenance_record

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"
RESULTS_DIR = ROOT / "benchmarks" / "results"


def text_files() -> list[Path]:
    """The *.txt files of the bench corpus, then gutenberg/dev.txt when present."""
    bench = sorted((CORPORA / "bench").glob("*.txt"))
    dev = CORPORA / "gutenberg" / "dev.txt"
    files = bench + ([dev] if dev.is_file() else [])
    if not files:
        raise SystemExit(f"no text files under {CORPORA}")
    return files


def best_time(fn: Callable[[], object], reps: int) -> tuple[float, object]:
    """Best of ``reps`` wall-clock timings of ``fn()`` and its last result."""
    best = float("inf")
    result = None
    for _ in range(reps):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def coder_pair(name: str, level: int | None, data: np.ndarray):
    """(encode, decode) block functions of a codec at a level, checked by one round trip first."""
    from ziplab.codecs import get

    codec = get(name)
    encoder = codec.open_encoder(level)
    decoder = codec.open_decoder(encoder.params)
    payload = encoder.encode(data)
    assert decoder.decode(payload, data.size).tobytes() == data.tobytes()
    return encoder.encode, decoder.decode, payload


def interleaved_best(fns: dict[str, Callable[[], object]], reps: int) -> dict[str, float]:
    """Best time per function over ``reps`` rounds, each round running every function once in
    order, so load from other processes hits the codec and zlib alike."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(reps):
        for key, fn in fns.items():
            best[key] = min(best[key], best_time(fn, 1)[0])
    return best


def parse_args(doc: str, reps: int) -> tuple[argparse.Namespace, list[int]]:
    """``--reps`` and ``--levels`` (comma separated); returns the namespace and the levels."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--reps", type=int, default=reps)
    ap.add_argument("--levels", default="1,6,9")
    args = ap.parse_args()
    return args, [int(x) for x in args.levels.split(",")]


def write_results(name: str, reps: int, fields: dict) -> None:
    """benchmarks/results/<name>.json: the provenance record, ``reps`` and ``fields``."""
    path = RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"provenance": provenance_record(), "reps": reps, **fields}, indent=1))
    print(f"\nwrote {path.relative_to(ROOT)}")
