"""The (N, D) grid: every size trained at several data budgets, each run range-coded for real.

Per size the learning rate is chosen by a small search at the smallest budget (the rung's rate
times each of `lr_factors`), scored on a validation slice of the held-out split that lies *after*
the evaluation slice, so the reported bpb never tuned anything. The winning search run is the
grid's smallest-budget point; the larger budgets train afresh (a cosine schedule per budget: no
run is a truncated longer run) at that rate times (D / D_search)^-lr_horizon: a search of a few
hundred steps favours rates too high for runs of thousands (Bjorck et al. 2025, "Scaling optimal
LR across token horizons": the best rate falls as a power of the training tokens). lr_horizon = 0
keeps the searched rate at every budget.

Each finished run is written to results.json at once (under the sweep's lock, so one process per
family may share the folder), and training states are saved every `STATE_EVERY` steps, so a
killed grid resumes inside the run it was training. `finish_grid` fits, plots and reports.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import ParameterError
from ..provenance import record as provenance_record
from .rates import expected_rate, is_current
from .run import Hook, Progress, baselines, code_for_real
from .store import read, update

#: optimiser steps between saved training states (resume point of a killed grid)
STATE_EVERY = 200
#: the learning-rate search's name (a tuning recorded by another search is redone) and its bounds
SEARCH = "bracket-x2"
MIN_FACTOR, MAX_FACTOR = 1 / 8, 32.0


@dataclass
class GridSettings:
    corpus: str = "stdlib"
    sizes: tuple[str, ...] = ("l0", "l1", "l2", "l3", "l4", "t0", "t1", "t2", "t3", "t4")
    budgets: tuple[int, ...] = (1_000_000, 2_828_427, 8_000_000)  # geometric, 8x end to end
    lr_factors: tuple[float, ...] = (0.5, 1.0, 2.0)
    lr_horizon: float | None = None  # rate at D: chosen x (D / search budget)^-this; None keeps the recorded (0 if none)
    eval_bytes: int = 1 << 17
    tune_bytes: int = 1 << 17
    transfer: str | None = None  # a second text (other authors): its first eval_bytes are coded too
    seed: int = 0
    out: str = "grid"
    lanes: int = 64
    threads: int | None = None
    device: str = "cpu"  # training only (cpu | cuda | auto); coding is portable and always runs on the CPU
    command: str = ""
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        from ..models.distributed import check_device
        from ..models.ladder import rung

        for size in self.sizes:
            rung(size)
        if len(self.budgets) < 1 or any(b < 4096 for b in self.budgets):
            raise ParameterError("grid budgets must be at least 4096 bytes each")
        if not self.lr_factors or any(f <= 0 for f in self.lr_factors):
            raise ParameterError("learning-rate factors must be positive")
        if self.lr_horizon is not None and not 0.0 <= self.lr_horizon <= 1.0:
            raise ParameterError("the learning-rate horizon exponent must lie in [0, 1]")
        check_device(self.device)


def _key(s: GridSettings, corpus_sha: str) -> dict:
    """What must match for earlier runs in the folder to count (budgets and sizes may grow)."""
    return {"corpus_sha256": corpus_sha, "eval_bytes": s.eval_bytes, "tune_bytes": s.tune_bytes,
            "seed": s.seed, "lanes": s.lanes, "lr_factors": list(s.lr_factors), "transfer": s.transfer}


def recipe_tag(size: str) -> str:
    """Eight hex digits of the rung's recipe (config, batch, warmup)."""
    import hashlib
    import json

    from ..models.ladder import rung

    return hashlib.sha256(json.dumps(rung(size).recipe, sort_keys=True).encode()).hexdigest()[:8]


def flops(meta: dict, tokens: int) -> dict:
    """Training compute: 6·N·D with N the non-embedding parameters (Kaplan's C ≈ 6ND; an
    embedding lookup costs nothing), plus for transformers the attention term
    6·n_layer·n_ctx·d_model per byte (Kaplan's 2·n_layer·n_ctx·d_attn forward, ×3 for training)."""
    n = int(meta["non_embedding_params"])
    dense = 6.0 * n * tokens
    attention = 0.0
    if meta["family"] == "transformer":
        c = meta["config"]
        attention = 6.0 * c["n_layer"] * c["context"] * c["n_embd"] * tokens
    return {"flops": dense + attention, "flops_6nd": dense}


class Grid:
    """One grid folder: trains, tunes, measures and records runs."""

    def __init__(self, s: GridSettings, hook: Hook | None = None, progress: Progress | None = None) -> None:
        from ..corpora import load_corpus

        s.validate()
        self.s, self.hook, self.progress = s, hook or (lambda event, info: None), progress
        self.out = Path(s.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.corpus = load_corpus(s.corpus)
        held = self.corpus.heldout()
        if len(held) < s.eval_bytes + s.tune_bytes:
            raise ParameterError(f"corpus {self.corpus.name!r} holds {len(held):,} held-out bytes; the grid "
                                 f"needs eval + tune = {s.eval_bytes + s.tune_bytes:,}")
        self.eval = held[: s.eval_bytes]
        self.tune = held[s.eval_bytes : s.eval_bytes + s.tune_bytes]
        self.transfer = Path(s.transfer).read_bytes()[: s.eval_bytes] if s.transfer else b""
        self.fresh = {"corpus": self.corpus.name, "corpus_sha256": self.corpus.sha256, "eval_bytes": len(self.eval),
                      "transfer": s.transfer, "transfer_bytes": len(self.transfer), "commands": [],
                      "settings": asdict(s), "run_key": _key(s, self.corpus.sha256), "tuning": {}, "runs": [],
                      "baselines": {}, "transfer_baselines": {}, "provenance": provenance_record()}

    # ---- records -------------------------------------------------------------------------
    def results(self) -> dict:
        """The folder's current record (read under the lock; written only by `store.update`)."""
        return read(self.out, self.fresh["run_key"], self.fresh)

    def _start(self, results: dict) -> None:
        if self.s.command and self.s.command not in results["commands"]:
            results["commands"].append(self.s.command)

    def ensure_baselines(self) -> None:
        if not self.results()["baselines"]:
            self.hook("baselines", {"bytes": len(self.eval)})
            base = baselines(self.eval)
            other = baselines(self.transfer) if self.transfer else {}
            update(self.out, self.fresh, lambda r: r.update(baselines=base, transfer_baselines=other))

    # ---- training ------------------------------------------------------------------------
    def _checkpoint(self, size: str, lr: float, budget: int) -> Path:
        """Named by the rung's recipe too, so a retuned rung never resumes or reuses an older run."""
        return self.out / "checkpoints" / f"{size}-{recipe_tag(size)}-lr{lr:.3g}-b{budget}-s{self.s.seed}.safetensors"

    def train(self, size: str, lr: float, budget: int) -> tuple[Path, dict]:
        from ..models.checkpoint import read_meta
        from ..models.ladder import rung
        from ..models.train import TrainConfig, train_model

        path = self._checkpoint(size, lr, budget)
        if path.is_file():
            meta = read_meta(path)
            if ((meta.get("corpus_sha256"), meta.get("seed")) == (self.corpus.sha256, self.s.seed)
                    and rung(size).trained_by(meta, lr)):
                return path, meta
        path.parent.mkdir(parents=True, exist_ok=True)
        self.hook("train", {"size": size, "lr": lr, "budget": budget})
        cfg = TrainConfig(size=size, corpus=self.s.corpus, train_bytes=budget, seed=self.s.seed, lr=lr,
                          device=self.s.device, threads=self.s.threads or os.cpu_count(), out=str(path),
                          command=self.s.command,
                          final_eval_bytes=len(self.eval), state_every=STATE_EVERY, resume=True)
        advance = self.progress(f"train {size} lr {lr:.3g} {budget / 1e6:.2f} MB", budget) if self.progress else None
        result = train_model(cfg, self.corpus, on_step=(lambda info: advance(info.new_bytes)) if advance else None)
        return result.path, result.meta

    def validation_bpb(self, path: Path) -> float:
        import numpy as np

        from ..models.checkpoint import load_checkpoint
        from ..models.train import heldout_bpb

        model, _ = load_checkpoint(path)
        return round(float(heldout_bpb(model, np.frombuffer(self.tune, dtype=np.uint8))), 5)

    def tuned_lr(self, size: str) -> float:
        """Search the rung's rate × each factor at the smallest budget; the best validation bpb wins.
        While the best rate is at an edge of what was tried, the search steps one factor of 2
        further that way (within [1/8, 32] × the rung's rate), so the optimum is bracketed."""
        from ..models.ladder import rung

        done = self.results()["tuning"].get(size)
        if done and done.get("search") == SEARCH and done.get("recipe") == rung(size).recipe:
            return float(done["chosen_lr"])
        base = rung(size).lr
        scores: dict[float, float] = {}
        factors = sorted(self.s.lr_factors)
        while True:
            for f in factors:
                if f not in scores:
                    path, _ = self.train(size, round(base * f, 8), min(self.s.budgets))
                    scores[f] = self.validation_bpb(path)
            best = min(scores, key=scores.get)
            tried = sorted(scores)
            if best == tried[-1] and best * 2 <= MAX_FACTOR:
                factors = [best * 2]
            elif best == tried[0] and best / 2 >= MIN_FACTOR and len(tried) > 1:
                factors = [best / 2]
            else:
                break
        chosen = round(base * best, 8)
        entry = {"rung_lr": base, "recipe": rung(size).recipe, "budget": min(self.s.budgets), "search": SEARCH,
                 "validation_bpb": {f"{round(base * f, 8):.3g}": v for f, v in sorted(scores.items())},
                 "chosen_lr": chosen}
        update(self.out, self.fresh, lambda r: r["tuning"].__setitem__(size, entry))
        self.hook("tuned", {"size": size, **entry})
        return chosen

    # ---- measuring -----------------------------------------------------------------------
    def rate(self, size: str, budget: int) -> float:
        """The searched rate carried to `budget` by the horizon rule (recorded with the tuning, so
        the report and later processes know which rate each run should have). A grid run without
        an explicit horizon keeps the recorded one: resuming never silently changes the rule."""
        self.tuned_lr(size)
        recorded = float(self.results()["tuning"][size].get("horizon", 0.0))
        if self.s.lr_horizon is not None and self.s.lr_horizon != recorded:
            self.hook("horizon", {"size": size, "from": recorded, "to": self.s.lr_horizon})
            update(self.out, self.fresh, lambda r: r["tuning"][size].__setitem__("horizon", self.s.lr_horizon))
        return expected_rate(self.results()["tuning"], size, budget)

    def recorded(self, size: str, budget: int) -> tuple[dict | None, bool]:
        """The run recorded for this point, and whether it still counts (`is_current`)."""
        results = self.results()
        run = next((r for r in results["runs"] if (r["size"], r["budget"]) == (size, budget)), None)
        return run, run is not None and is_current(run, results["tuning"])

    def measure(self, size: str, budget: int) -> dict:
        from ..models.ladder import rung

        lr = self.rate(size, budget)
        recorded, current = self.recorded(size, budget)
        if current:
            return recorded
        if recorded is not None:  # another recipe, or a rate the current tuning did not choose
            was = ("with another recipe" if recorded.get("recipe") != rung(size).recipe
                   else f"at lr {recorded['lr']:g}, where the rule now gives {lr:g}" if "lr" in recorded
                   else "without a recorded lr")
            self.hook("stale", {"size": size, "budget": budget, "was": was})
        path, meta = self.train(size, lr, budget)
        coded = code_for_real(path, self.eval, self.s.lanes, 1, size, self.progress)
        record = {
            "family": meta["family"], "size": size, "budget": budget, "lr": lr, "recipe": rung(size).recipe,
            "params": meta["num_params"], "non_embedding_params": meta["non_embedding_params"],
            "train_bytes": meta["bytes_seen"], **flops(meta, meta["bytes_seen"]),
            "train_seconds": meta["train_seconds"], "threads": meta["threads"],
            "device": meta.get("device", "cpu"), "autocast_bf16": meta["autocast_bf16"], **coded,
            "model_bytes": path.stat().st_size, "checkpoint": path.name,
        }
        if self.transfer:
            other = code_for_real(path, self.transfer, self.s.lanes, 1, size + " transfer", self.progress)
            record["transfer"] = {k: other[k] for k in ("cross_entropy_bpb", "actual_bpb", "compressed_bytes")}
        update(self.out, self.fresh, lambda r: r.__setitem__(
            "runs", [x for x in r["runs"] if (x["size"], x["budget"]) != (size, budget)] + [record]))
        self.hook("measured", record)
        return record


def run_grid(s: GridSettings, hook: Hook | None = None, progress: Progress | None = None) -> dict:
    """Run (or resume) the grid in compute order: every size's tuning first, then each budget from
    the smallest, so a partial grid already spans the sizes. Returns the fit summary."""
    grid = Grid(s, hook, progress)
    update(grid.out, grid.fresh, grid._start)
    grid.ensure_baselines()
    for size in s.sizes:
        grid.tuned_lr(size)
    for budget in sorted(s.budgets):
        for size in s.sizes:
            grid.measure(size, budget)
    return finish_grid(grid.out)


def train_grid(s: GridSettings, hook: Hook | None = None, progress: Progress | None = None) -> list[Path]:
    """Train every point the grid would measure, and code nothing: on a GPU box, say, whose
    checkpoints a CPU box then measures (`run_grid` there finds and reuses them, since coding is
    portable). Points already recorded under the current rule are skipped; returns the checkpoint
    of every point left to measure, trained now or found from an earlier run (the "train" hook
    tells which). A checkpoint is reused whatever device trained it: the device is recorded, not
    part of the recipe."""
    grid = Grid(s, hook, progress)
    update(grid.out, grid.fresh, grid._start)
    ready = []
    for budget in sorted(s.budgets):
        for size in s.sizes:
            lr = grid.rate(size, budget)
            if not grid.recorded(size, budget)[1]:
                ready.append(grid.train(size, lr, budget)[0])
    return ready


def finish_grid(out: str | Path) -> dict:
    """Fit, plot and write the report from the folder's results.json (any process may call it)."""
    import json

    from .grid_report import write_grid_report

    out = Path(out)
    results = json.loads((out / "results.json").read_text())
    return write_grid_report(results, out)

