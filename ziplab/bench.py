"""Measure codecs side by side: size, bpb, speed, and a verified round trip for every entry.

Used by `ziplab bench`, benchmarks/ scripts and the sweep's baselines, so every table in the
project is measured the same way."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from . import codecs, container
from .errors import ParameterError
from .peers import all_peers

DEFAULT_CODECS = ["huffman", "lz77", "lzss", "lzh:1", "lzh:6", "lzh:9"]
#: model-driven codecs, in `ziplab bench` unless --fast (nn only where a model is available)
MODEL_CODECS = ["ctx:2", "ctx:4", "nn"]
MIN_SECONDS = 0.25  # repeat fast runs until this much time has passed, keep the best


@dataclass
class Entry:
    name: str
    compress: Callable[[bytes], bytes]
    decompress: Callable[[bytes], bytes]
    ours: bool


@dataclass
class Measurement:
    file: str
    codec: str
    ours: bool
    original_bytes: int
    compressed_bytes: int
    bpb: float
    ratio: float
    compress_mbps: float
    decompress_mbps: float
    round_trip: bool  # dataclasses.asdict(m) is its JSON row


def parse_spec(spec: str) -> tuple[str, int | None]:
    """'lzh:9' or 'lzh-9' -> ('lzh', 9); 'huffman' -> ('huffman', None)."""
    for sep in (":", "-"):
        name, found, level = spec.partition(sep)
        if found and name in codecs.names():
            try:
                return name, int(level)
            except ValueError:
                raise ParameterError(f"bad level in codec spec {spec!r}") from None
    return spec, None


def ours(spec: str, **options) -> Entry:
    name, level = parse_spec(spec)
    impl = codecs.get(name)
    level = impl.check_level(level)
    label = f"{name}-{level}" if level is not None else name
    return Entry(label, lambda d: container.compress(d, name, level, **options), container.decompress, True)


def entries(specs: list[str], peers: bool = True, **options) -> list[Entry]:
    found = [ours(s, **(options if parse_spec(s)[0] in ("nn", "ctx") else {})) for s in specs]
    if peers:
        found += [Entry(p.name, p.compress, p.decompress, False) for p in all_peers().values()]
    return found


def _timed(fn: Callable[[], bytes], repeat: bool) -> tuple[bytes, float]:
    best, spent, out = float("inf"), 0.0, b""
    while True:
        t0 = time.perf_counter()
        out = fn()
        took = time.perf_counter() - t0
        best, spent = min(best, took), spent + took
        if not repeat or spent >= MIN_SECONDS:
            return out, best


def measure(entry: Entry, data: bytes, file: str = "", repeat: bool = True) -> Measurement:
    """One entry on one input. A failed round trip is recorded, never hidden."""
    entry.decompress(entry.compress(data[:4096]))  # warm caches (numba loads, models) outside timing
    blob, t_c = _timed(lambda: entry.compress(data), repeat)
    back, t_d = _timed(lambda: entry.decompress(blob), repeat)
    n = len(data)
    mb = n / 1e6
    return Measurement(
        file=file, codec=entry.name, ours=entry.ours, original_bytes=n, compressed_bytes=len(blob),
        bpb=8 * len(blob) / n if n else 0.0, ratio=n / len(blob) if blob else 0.0,
        compress_mbps=mb / t_c if t_c > 0 else 0.0, decompress_mbps=mb / t_d if t_d > 0 else 0.0,
        round_trip=back == data,
    )


def builtin_sample() -> tuple[str, bytes]:
    """A bench input that needs no download: a slice of this Python's standard library."""
    from .corpora import load_corpus

    data = load_corpus("stdlib").heldout()[: 1 << 20]
    return f"stdlib held-out ({len(data) >> 10} KiB of Python sources)", data


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both speed (higher) and bpb (lower), by speed."""
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], points[i][1]))
    front, best = [], float("inf")
    for i in order:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return front


def plot_tradeoff(results: list[Measurement], path: str, title: str = "") -> None:
    """bpb against compression speed, one labelled point per codec, the Pareto front drawn: the
    picture people choose a compressor from."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120)
    pts = [(max(m.compress_mbps, 1e-4), m.bpb) for m in results]
    for m, (x, y) in zip(results, pts):
        ax.scatter(x, y, s=40, color="tab:red" if m.ours else "tab:gray", zorder=3)
        ax.annotate(m.codec, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    front = pareto(pts)
    ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "--", color="tab:blue", lw=1,
            label="Pareto front (faster and smaller: none)", zorder=2)
    ax.set_xscale("log")
    ax.set_xlabel("compression speed, MB/s (log)")
    ax.set_ylabel("bits per byte (lower is better)")
    ax.scatter([], [], color="tab:red", label="ziplab")
    ax.scatter([], [], color="tab:gray", label="peers")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or "size against speed")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
