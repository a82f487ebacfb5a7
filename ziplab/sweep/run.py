"""The scaling sweep: train each rung of the ladder, range-code held-out text with it for real,
decode it back, and record bpb against parameters beside the classic coders.

Every finished size is written to results.json at once, so a killed sweep resumes where it
stopped: finished sizes are skipped, and trained checkpoints with the same corpus, size,
budget, seed and training recipe are reused instead of retrained."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import bench, container
from ..codecs.base import CodingStats
from ..errors import CorruptDataError, ParameterError
from ..provenance import record as provenance_record
from .store import RESULTS, load_previous, locked, update

FAMILY_PREFIX = {"transformer": "t", "lstm": "l"}
BASELINE_CODECS = ["huffman", "lzh:9", "ctx:2", "ctx:4"]
BASELINE_PEERS = ["zlib-9", "bz2-9", "xz-9e", "zstd-19", "brotli-11", "ppmd-o6"]


@dataclass
class SweepSettings:
    corpus: str = "stdlib"
    families: tuple[str, ...] = ("lstm", "transformer")
    sizes: tuple[str, ...] = ()  # empty: every rung of each family
    train_bytes: int | None = None
    minutes: float | None = None  # per size, when train_bytes is not given
    eval_bytes: int = 1 << 20
    seed: int = 0
    out: str = "sweep"
    device: str = "cpu"
    lanes: int = 64
    workers: int = 1
    threads: int | None = None  # training threads (coding always uses one per process)
    jobs: int = 1  # sizes trained and measured at once, one process each
    codecs: tuple[str, ...] = ("nn",)  # "mix" also codes the slice with each model inside `mix`
    models: tuple[str, ...] = ()  # external models (hf:DIR, checkpoints), one family beside the ladder
    models_family: str | None = None  # their label on the plot (default: each model's own type)
    command: str = ""
    extra: dict = field(default_factory=dict)

    def budget_tag(self) -> str:
        if self.train_bytes is not None:
            return f"b{self.train_bytes}"
        return f"m{self.minutes:g}" if self.minutes is not None else "auto"

    def ladder(self) -> list[str]:
        from ..models.ladder import LADDER, rung

        if self.sizes:
            return [rung(s).size for s in self.sizes]
        unknown = [f for f in self.families if f not in FAMILY_PREFIX]
        if unknown:
            raise ParameterError(f"unknown family {unknown[0]!r} (known: {', '.join(FAMILY_PREFIX)})")
        return [s for f in self.families for s, r in LADDER.items() if r.family == f]


#: named settings the CLI starts from; explicit options override them
PRESETS: dict[str, dict[str, Any]] = {
    # `ziplab sweep` with no options: the built-in corpus, about 4-5 minutes on 2 cores
    "default": {"sizes": ("l0", "l1", "l2", "l3", "t0", "t1", "t2", "t3"), "train_bytes": 5_000_000,
                "eval_bytes": 1 << 17},
    # --quick: every stage in well under a minute
    "quick": {"sizes": ("l1", "l2", "t1"), "train_bytes": 16_384, "eval_bytes": 4096},
}

Hook = Callable[[str, dict], None]


def run_key(s: SweepSettings, corpus_sha: str) -> dict:
    """What must match for earlier results in the output folder to be reused."""
    return {"corpus_sha256": corpus_sha, "eval_bytes": s.eval_bytes, "seed": s.seed,
            "budget": s.budget_tag(), "lanes": s.lanes, **({"codecs": list(s.codecs)} if s.codecs != ("nn",) else {})}


def baselines(data: bytes, codecs: tuple[str, ...] = ("nn",)) -> dict[str, float]:
    """bpb of ziplab's classic coders and the peers on the same slice, every round trip verified."""
    peers = {e.name: e for e in bench.entries([], peers=True)}
    entries = [bench.ours(s) for s in BASELINE_CODECS] + [peers[p] for p in BASELINE_PEERS if p in peers]
    out = {}
    if "mix" in codecs:  # the context-mixing floor the mixed curve is read against
        entries.append(bench.ours("mix", model="none"))
    for entry in entries:
        m = bench.measure(entry, data, repeat=False)
        if not m.round_trip:
            raise CorruptDataError(f"baseline {entry.name} failed its round trip")
        out[entry.name] = round(m.bpb, 4)
    return out


def _checkpoint(s: SweepSettings, size: str, corpus_sha: str) -> Path:
    return Path(s.out) / "checkpoints" / f"{size}-{corpus_sha[:12]}-{s.budget_tag()}-s{s.seed}.safetensors"


Progress = Callable[[str, Any], Callable[[int], None]]


def _trained(s: SweepSettings, size: str, corpus: Any, hook: Hook,
             progress: Progress | None = None) -> tuple[Path, dict]:
    from ..models.checkpoint import read_meta
    from ..models.ladder import rung
    from ..models.train import TrainConfig, train_model

    path = _checkpoint(s, size, corpus.sha256)
    if path.is_file():
        meta = read_meta(path)
        same_run = meta.get("corpus_sha256") == corpus.sha256 and meta.get("seed") == s.seed
        if same_run and meta.get("size") == size and rung(size).trained_by(meta):
            hook("reuse", {"size": size, "path": str(path)})
            return path, meta
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig(size=size, corpus=s.corpus, train_bytes=s.train_bytes, minutes=s.minutes, seed=s.seed,
                      device=s.device, threads=s.threads, out=str(path), command=s.command,
                      final_eval_bytes=s.eval_bytes)
    advance = progress(f"train {size}", s.train_bytes) if progress else None
    result = train_model(cfg, corpus, on_step=(lambda info: advance(info.new_bytes)) if advance else None)
    return result.path, result.meta


def code_for_real(model: Path | str, data: bytes, lanes: int, workers: int | None, label: str = "",
                  progress: Progress | None = None, codec: str = "nn") -> dict:
    """Range-code `data` with a checkpoint (through `nn`, or inside `mix`), decode it back, and
    report both bpb figures: the coder's cross-entropy and the real compressed size (header and all)."""
    stats = CodingStats()
    t0 = time.perf_counter()
    blob = container.compress(data, codec, model=str(model), lanes=lanes, workers=workers, stats=stats,
                              progress=progress(f"{codec} encode " + label, len(data)) if progress else None)
    enc_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    back = container.decompress(blob, workers=workers,
                                progress=progress(f"{codec} decode " + label, len(data)) if progress else None)
    dec_s = time.perf_counter() - t0
    if back != data:
        raise CorruptDataError(f"{label}: the decoded slice differs from the original")
    n = len(data)
    return {"cross_entropy_bpb": round(stats.ideal_bits / n, 5), "actual_bpb": round(8 * len(blob) / n, 5),
            "compressed_bytes": len(blob), "encode_kbps": round(n / 1e3 / enc_s, 2),
            "decode_kbps": round(n / 1e3 / dec_s, 2), "verified_bytes": n}


def measure_size(s: SweepSettings, size: str, corpus: Any, data: bytes, hook: Hook,
                 progress: Progress | None = None) -> dict:
    """Train (or reuse) one rung, then code the slice for real and decode it back."""
    path, meta = _trained(s, size, corpus, hook, progress)
    coded = code_for_real(path, data, s.lanes, s.workers, size, progress)
    model_bytes = path.stat().st_size
    return {
        "family": meta["family"], "size": size,
        "params": meta["num_params"], "non_embedding_params": meta["non_embedding_params"],
        "train_bytes": meta["bytes_seen"], "train_seconds": meta["train_seconds"],
        "train_bytes_per_s": meta.get("train_bytes_per_s"),
        "train_heldout_bpb": meta.get("final_heldout_bpb"),
        "cross_entropy_bpb": coded["cross_entropy_bpb"], "actual_bpb": coded["actual_bpb"],
        "compressed_bytes": coded["compressed_bytes"], "model_bytes": model_bytes,
        "adjusted_bpb": round(8 * (coded["compressed_bytes"] + model_bytes) / len(data), 5),
        "encode_kbps": coded["encode_kbps"], "decode_kbps": coded["decode_kbps"],
        "verified_bytes": coded["verified_bytes"], "checkpoint": path.name,
        "recipe": {k: meta.get(k) for k in ("config", "lr", "batch", "warmup")},
        **({"mix": _mixed(path, data, s, size, progress)} if "mix" in s.codecs else {}),
    }


def _mixed(path: Path, data: bytes, s: SweepSettings, size: str, progress: Progress | None) -> dict:
    """The same slice coded by `mix` with this model as its neural input."""
    coded = code_for_real(path, data, s.lanes, 1, size, progress, codec="mix")
    return {k: coded[k] for k in ("actual_bpb", "cross_entropy_bpb", "compressed_bytes", "encode_kbps", "decode_kbps")}


def run_sweep(s: SweepSettings, hook: Hook | None = None, progress: Progress | None = None) -> dict:
    """Run (or resume) a sweep; returns the results dict also written to `s.out`."""
    from ..corpora import load_corpus

    hook = hook or (lambda event, info: None)
    sizes = s.ladder()
    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = load_corpus(s.corpus)
    heldout = corpus.heldout()
    data = heldout[: s.eval_bytes]
    if len(data) < 1024:
        raise ParameterError(f"corpus {corpus.name!r} holds only {len(heldout)} held-out bytes")
    fresh = {
        "corpus": corpus.name, "corpus_sha256": corpus.sha256, "eval_bytes": len(data),
        "command": s.command, "commands": [], "settings": asdict(s), "run_key": run_key(s, corpus.sha256),
        "sizes": [], "baselines": {}, "provenance": provenance_record(),
    }

    def start(results: dict) -> None:
        if s.command and s.command not in results.setdefault("commands", []):
            results["commands"].append(s.command)
        if not results["baselines"]:
            hook("baselines", {"bytes": len(data)})
            results["baselines"] = baselines(data, s.codecs)

    results = update(out, fresh, start)
    todo = []
    for size in sizes:
        record = next((r for r in results["sizes"] if r["size"] == size), None)
        if record is not None and _current(record):
            hook("skip", {"size": size})
            continue
        if record is not None:
            hook("stale", {"size": size})
        todo.append(size)
    if s.jobs > 1 and len(todo) > 1:
        _run_jobs(s, todo, fresh, hook)
    for size in todo if s.jobs <= 1 or len(todo) <= 1 else []:
        hook("size", {"size": size})
        record = measure_size(s, size, corpus, data, hook, progress)
        results = update(out, fresh, lambda res: add_record(res, record))
        hook("measured", record)
    results = _externals(s, out, fresh, data, results, hook, progress)
    with locked(out):
        results = load_previous(out / RESULTS, fresh["run_key"]) or results
        results["sizes"].sort(key=lambda r: (r["family"], r["non_embedding_params"]))
        finish(results, out)
    return results


def _externals(s: SweepSettings, out: Path, fresh: dict, data: bytes, results: dict, hook: Hook,
               progress: Progress | None) -> dict:
    """Measure each external model not yet in results.json (see `external`)."""
    from .external import already_measured, measure_external

    for spec in s.models:
        if already_measured(results, spec, s.models_family):
            hook("skip", {"size": spec})
            continue
        hook("external", {"size": spec})
        record = measure_external(spec, data, s.lanes, _lm_coder, s.models_family, progress)
        results = update(out, fresh, lambda res: add_record(res, record))
        hook("measured", record)
    return results


def _lm_coder(spec: str, data: bytes, lanes: int, progress: Progress | None) -> dict:
    """An external model codes the slice through `lm` (one process: it takes no workers)."""
    return code_for_real(spec, data, lanes, None, spec, progress, codec="lm")


def _current(record: dict) -> bool:
    """Whether a recorded size was trained with the rung's current recipe (a retuned rung, or a
    record too old to say, is measured again; its checkpoint is reused only if it matches)."""
    from ..models.ladder import rung

    recipe = record.get("recipe")
    return recipe is not None and rung(record["size"]).trained_by({**recipe, "family": record["family"]})


def _run_jobs(s: SweepSettings, sizes: list[str], fresh: dict, hook: Hook) -> None:
    """Sizes in `s.jobs` worker processes, biggest first (they take longest); each worker trains
    with cpus // jobs threads unless told otherwise and saves its record under the lock."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from ..models.ladder import rung

    threads = s.threads or max(1, (os.cpu_count() or 1) // s.jobs)
    job = {**asdict(s), "threads": threads, "jobs": 1}
    order = sorted(sizes, key=lambda size: -rung(size).build().num_params())
    with ProcessPoolExecutor(s.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_measure_job, job, size, fresh): size for size in order}
        for size in order:
            hook("size", {"size": size, "queued": True})
        for done in as_completed(futures):
            hook("measured", done.result())


def _measure_job(settings: dict, size: str, fresh: dict) -> dict:
    """One size in a worker process: train, code, decode, and save the record (locked)."""
    from ..corpora import load_corpus

    from ..codecs.workers import shutdown_pools

    s = SweepSettings(**{**settings, "families": tuple(settings["families"]), "sizes": tuple(settings["sizes"]),
                         "codecs": tuple(settings["codecs"]), "models": tuple(settings["models"])})
    corpus = load_corpus(s.corpus)
    data = corpus.heldout()[: s.eval_bytes]
    try:
        record = measure_size(s, size, corpus, data, lambda event, info: None)
    finally:
        shutdown_pools()  # coding workers of this job process, or it never exits
    update(Path(s.out), fresh, lambda res: add_record(res, record))
    return record


def add_record(results: dict, record: dict) -> None:
    results["sizes"] = [r for r in results["sizes"] if r["size"] != record["size"]] + [record]


def finish(results: dict, out: Path) -> dict:
    """Fit, plot and write the report files from a results dict."""
    from .fit import fit_results
    from .plot import plot_curve
    from .report import write_report

    fits = fit_results(results)
    plot_curve(results, fits, out / "curve.png")
    write_report(results, fits, out, plot=out / "curve.png")
    return fits
