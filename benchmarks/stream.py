"""Peak memory of `cat big | ziplab | ziplab -d`: the CLI codes a pipe as it arrives.

A generated stream (default 1 GiB, made on the fly, never stored) is written into
`ziplab -c -m CODEC`, whose output is piped straight into `ziplab -d`, whose output this script
hashes and compares with the input's hash. The peak resident set of each ziplab process comes
from wait4 (ru_maxrss). The same pipeline run on a 64 KiB stream gives the baseline of a
process that has loaded Python and numpy and has coded one small block (so numba has compiled
the codec: a 1-byte input is stored and would leave that out); the issue's bound is

    peak RSS < baseline (interpreter, compiled codec) + 2 x block size + the codec's own tables

for both processes. A run on exactly one block shows the rest: what the codec and the container
need for one full block, which a long stream must not exceed. Before ziplab 0.3 a piped input was spooled (64 MiB in memory, then to a
temporary file) before any coding.

    python benchmarks/stream.py [--size-mib 1024] [--codec store] [--level N] [--block-mib 4]

Prints one line per run and writes benchmarks/results/stream.json.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from probe_common import ROOT, write_results

PIECE = 1 << 20
BASELINE = 64 << 10  # bytes: one small block, coded


def _pieces(size: int):
    """`size` bytes of text-like data, 1 MiB at a time, each piece numbered (so no two match)."""
    line = b"It was the best of times, it was the worst of times, it was the age of wisdom %08d.\n"
    base = b"".join(line % i for i in range(PIECE // len(line % 0) + 1))[:PIECE]
    for index in range(0, size, PIECE):
        n = min(PIECE, size - index)
        yield (b"%016d" % index + base[16:])[:n]


def _reap(proc: subprocess.Popen) -> tuple[int, int]:
    """(exit code, peak RSS in bytes) of a child, from wait4."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss * 1024  # Linux reports KiB


def pipeline(size: int, codec: str, level: int | None, block: int) -> dict:
    """One run of generator | ziplab -c | ziplab -d | sha256."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = [sys.executable, "-m", "ziplab", "-c", "-q", "-m", codec, "--block-size", str(block)]
    args += ["-l", str(level)] if level is not None else []
    comp = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    decomp = subprocess.Popen([sys.executable, "-m", "ziplab", "-d", "-c", "-q"], stdin=comp.stdout,
                              stdout=subprocess.PIPE, env=env)
    comp.stdout.close()  # decomp holds the only read end now
    sent = hashlib.sha256()

    def feed() -> None:
        try:
            for piece in _pieces(size):
                sent.update(piece)
                comp.stdin.write(piece)
        finally:
            comp.stdin.close()

    start = time.perf_counter()
    writer = threading.Thread(target=feed)
    writer.start()
    back, got = hashlib.sha256(), 0
    while chunk := decomp.stdout.read(PIECE):
        back.update(chunk)
        got += len(chunk)
    writer.join()
    seconds = time.perf_counter() - start
    comp_rc, comp_rss = _reap(comp)
    decomp_rc, decomp_rss = _reap(decomp)
    return {"input_bytes": size, "round_trip": comp_rc == decomp_rc == 0 and got == size
            and back.digest() == sent.digest(), "seconds": round(seconds, 2),
            "MBps": round(size / 1e6 / seconds, 1) if size > PIECE else None,
            "compress_peak_rss": comp_rss, "decompress_peak_rss": decomp_rss}


BARE = r"""
import resource, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from stream import _pieces
from ziplab.codecs import get

side, name, level, block, payload_path = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
codec = get(name)
encoder = codec.open_encoder(None if level == "-" else int(level))
decoder = codec.open_decoder(encoder.params)
warm = next(_pieces(1 << 16))
decoder.decode(encoder.encode(np.frombuffer(warm, np.uint8)), len(warm))  # numba compiles here
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if side == "encode":
    data = b"".join(_pieces(block))
    payload = encoder.encode(np.frombuffer(data, np.uint8))
    open(payload_path, "wb").write(payload)
else:
    payload = open(payload_path, "rb").read()
    decoder.decode(payload, block)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before * 1024, after * 1024, len(payload))
"""


def codec_tables(codec: str, level: int | None, block: int) -> dict:
    """The codec's own working memory for one block, without the container: the peak RSS a bare
    encoder (then decoder) adds, in a warmed-up process, beyond the block and its payload."""
    import tempfile

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        payload_path = str(Path(tmp) / "payload")
        for side in ("encode", "decode"):
            args = [sys.executable, "-c", BARE, str(Path(__file__).parent), side, codec,
                    "-" if level is None else str(level), str(block), payload_path]
            env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
            before, after, payload = map(int, subprocess.run(args, capture_output=True, check=True, env=env,
                                                             text=True).stdout.split())
            out[side] = max(0, after - before - block - payload)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--codec", default="store")
    ap.add_argument("--level", type=int, default=None)
    ap.add_argument("--block-mib", type=float, default=4)
    args = ap.parse_args()
    block = int(args.block_mib * (1 << 20))
    baseline = pipeline(BASELINE, args.codec, args.level, block)
    one_block = pipeline(block, args.codec, args.level, block)
    run = pipeline(args.size_mib << 20, args.codec, args.level, block)
    tables = codec_tables(args.codec, args.level, block)
    mib = 1 << 20
    # glibc raises its mmap threshold after a large free, so a codec's freed per-block arrays may stay
    # in the heap: a fixed threshold (MALLOC_MMAP_THRESHOLD_=131072) shows what is live
    row = {"codec": args.codec, "level": args.level, "block_size": block,
           "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"), **run,
           "baseline_compress_peak_rss": baseline["compress_peak_rss"],
           "baseline_decompress_peak_rss": baseline["decompress_peak_rss"],
           "one_block_compress_peak_rss": one_block["compress_peak_rss"],
           "one_block_decompress_peak_rss": one_block["decompress_peak_rss"]}
    for side, bare in (("compress", "encode"), ("decompress", "decode")):
        extra = row[f"{side}_peak_rss"] - row[f"baseline_{side}_peak_rss"]
        row[f"{side}_codec_tables"] = tables[bare]
        row[f"{side}_extra_over_baseline"] = extra
        row[f"{side}_extra_beyond_tables_in_blocks"] = round((extra - tables[bare]) / block, 2)
        row[f"{side}_bound"] = row[f"baseline_{side}_peak_rss"] + 2 * block + tables[bare]
        row[f"{side}_within_bound"] = row[f"{side}_peak_rss"] < row[f"{side}_bound"]
        print(f"{side:>10}: {args.size_mib} MiB through {args.codec} ({block / mib:g} MiB blocks): peak RSS "
              f"{row[f'{side}_peak_rss'] / mib:.1f} MiB; baseline {row[f'baseline_{side}_peak_rss'] / mib:.1f} MiB "
              f"+ codec tables {tables[bare] / mib:.1f} MiB + 2 blocks = {row[f'{side}_bound'] / mib:.1f} MiB; "
              f"one block alone {row[f'one_block_{side}_peak_rss'] / mib:.1f} MiB")
    print(f"round trip {'ok' if run['round_trip'] else 'FAILED'} in {run['seconds']} s")
    path = Path(ROOT / "benchmarks" / "results" / "stream.json")
    runs = []
    if path.exists():
        import json

        old = json.loads(path.read_text()).get("runs", [])
        key = ("codec", "level", "block_size", "input_bytes", "malloc_mmap_threshold")
        runs = [r for r in old if [r.get(k) for k in key] != [row[k] for k in key]]
    write_results("stream", 1, {"runs": runs + [row]})


if __name__ == "__main__":
    main()
