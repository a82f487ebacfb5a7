"""One training loop for every family: random windows of the rung's context length from the
train split, AdamW with warmup + cosine decay, bf16 autocast on CPUs with native bf16 (fp32
elsewhere), periodic held-out bpb on a fixed slice, and a checkpoint whose metadata says exactly
how it was made.

Given a seed, a thread count and a byte budget (--train-bytes), a run is deterministic. A time
budget (--minutes) makes the schedule follow the wall clock, so it is not.
"""

from __future__ import annotations

import math
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ParameterError
from ..hardware import native_bf16
from .checkpoint import default_path, save_checkpoint
from .ladder import Rung, rung
from .predictor import BOS

LN2 = math.log(2.0)


@dataclass
class TrainResult:
    path: Path
    size: str
    family: str
    bytes_seen: int
    seconds: float
    train_bpb: float
    heldout_bpb: float
    bytes_per_s: float
    meta: dict = field(repr=False, default_factory=dict)


# ---- data ----------------------------------------------------------------------------------
def sample_batch(data: np.ndarray, rng: np.random.Generator, batch: int, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows -> (inputs, targets) of shape [batch, T]. Half the rows start with BOS and
    no history, as the first coded byte does; the rest are mid-stream windows."""
    starts = rng.integers(0, len(data) - T - 1, size=batch)
    win = torch.from_numpy(data[starts[:, None] + np.arange(T + 1)].astype(np.int64))
    x, y = win[:, :-1].clone(), win[:, 1:].clone()
    bos = torch.from_numpy(rng.random(batch) < 0.5)
    if bos.any():
        x[bos, 1:] = win[bos, :-2]
        x[bos, 0] = BOS
        y[bos] = win[bos, :-1]
    return x, y


# ---- held-out scoring ----------------------------------------------------------------------
@torch.inference_mode()
def heldout_bits(model: Any, data: np.ndarray, lanes: int = 16, chunk: int = 256) -> float:
    """Total bits to code `data` the way the coder does: lanes are contiguous streams that begin
    with BOS. Recurrent models carry state across chunks; transformers see up to T bytes of
    history through overlapping windows (each byte is scored with >= T/2 of context)."""
    n = len(data) // lanes * lanes
    if n == 0:
        raise ParameterError("held-out slice is shorter than the number of evaluation lanes")
    streams = torch.from_numpy(data[:n].astype(np.int64)).view(lanes, -1)
    inputs = torch.cat([torch.full((lanes, 1), BOS, dtype=torch.long), streams[:, :-1]], dim=1)
    total = 0.0
    if model.family == "lstm":
        state = None
        for s in range(0, streams.shape[1], chunk):
            logits, state = model(inputs[:, s : s + chunk], state)
            total += F.cross_entropy(logits.float().reshape(-1, 256), streams[:, s : s + chunk].reshape(-1), reduction="sum").item()
        return total / LN2
    T = model.cfg.context
    half = T // 2
    length = streams.shape[1]
    for s in range(0, length, half):
        lo = max(0, s + half - T)  # window [lo, s + half) scores positions [s, s + half)
        hi = min(length, s + half)
        logits = model(inputs[:, lo:hi])[0][:, s - lo :]
        total += F.cross_entropy(logits.float().reshape(-1, 256), streams[:, s:hi].reshape(-1), reduction="sum").item()
    return total / LN2


def heldout_bpb(model: Any, data: np.ndarray, lanes: int = 16) -> float:
    n = len(data) // lanes * lanes
    return heldout_bits(model, data, lanes) / n


# ---- schedule ------------------------------------------------------------------------------
def lr_at(progress: float, step: int, base: float, warmup: int) -> float:
    """Linear warmup over `warmup` steps, then cosine from base to base/10 over progress 0..1."""
    warm = min(1.0, (step + 1) / max(1, warmup))
    return base * warm * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


def make_optimizer(model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99), eps=1e-8)


def _round_weights(model: torch.nn.Module, dtype: str) -> None:
    """Round weights to the storage dtype, so the final bpb is that of the file as loaded."""
    with torch.no_grad():
        for p in model.state_dict().values():
            p.copy_(p.to(getattr(torch, dtype)).float())


# ---- the loop ------------------------------------------------------------------------------
def train_model(
    size: str,
    corpus: Any,
    train_bytes: int | None = None,
    minutes: float | None = None,
    seed: int = 0,
    device: str = "cpu",
    threads: int | None = None,
    out: str | Path | None = None,
    autocast: bool = True,
    eval_every: int = 0,
    eval_bytes: int = 1 << 16,
    final_eval_bytes: int = 1 << 20,
    storage_dtype: str = "float16",
    progress: bool = True,
    command: str | None = None,
    on_eval: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train one ladder rung on a corpus (a name/path for load_corpus, or a Corpus) and write a
    checkpoint. Stops at train_bytes bytes seen or `minutes` of wall clock, whichever is first;
    with neither, trains on 20 bytes per non-embedding parameter (at least 1 MB)."""
    from ..corpora import Corpus, load_corpus

    r: Rung = rung(size)
    if isinstance(corpus, (str, Path)):
        corpus = load_corpus(corpus)
    assert isinstance(corpus, Corpus)
    if threads:
        torch.set_num_threads(int(threads))
    if device not in ("cpu", "cuda"):
        raise ParameterError(f"device must be cpu or cuda, not {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ParameterError("--device cuda asked for, but torch sees no CUDA device")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    train = np.frombuffer(corpus.train(), dtype=np.uint8)
    held = np.frombuffer(corpus.heldout(), dtype=np.uint8)
    T, B = r.context, r.batch
    if len(train) < T + 2 or len(held) < 64:
        raise ParameterError(f"corpus {corpus.name!r} is too small to train {size} (context {T})")
    model = r.build().to(device)
    if train_bytes is None and minutes is None:
        train_bytes = max(1 << 20, 20 * model.non_embedding_params())
    budget_bytes = train_bytes if train_bytes is not None else float("inf")
    budget_s = minutes * 60.0 if minutes is not None else float("inf")
    per_step = B * T
    eval_slice = held[: min(len(held), eval_bytes)]
    eval_every = eval_every or max(50, int(2_000_000 // per_step))
    opt = make_optimizer(model, r.lr)
    use_amp = autocast and device == "cpu" and native_bf16()  # emulated bf16 is ~100x slower than fp32

    step, seen, t0 = 0, 0, time.perf_counter()
    ema = None
    bar = _Bar(progress, size, budget_bytes, budget_s)
    with bar:
        while True:
            elapsed = time.perf_counter() - t0
            frac = max(seen / budget_bytes, elapsed / budget_s)
            if frac >= 1.0:
                break
            for g in opt.param_groups:
                g["lr"] = lr_at(frac, step, r.lr, r.warmup)
            x, y = sample_batch(train, rng, B, T)
            model.train()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_amp):
                logits, _ = model(x.to(device))
            loss = F.cross_entropy(logits.float().reshape(-1, 256), y.to(device).reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            seen += per_step
            bpb = loss.item() / LN2
            ema = bpb if ema is None else 0.98 * ema + 0.02 * bpb
            held_now = None
            if step % eval_every == 0:
                model.eval()
                held_now = heldout_bpb(model, eval_slice)
                if on_eval:
                    on_eval(seen, held_now)
            bar.update(seen, time.perf_counter() - t0, ema, held_now)

    seconds = time.perf_counter() - t0
    model.eval()
    _round_weights(model, storage_dtype)
    final = heldout_bpb(model, held[: min(len(held), final_eval_bytes)])
    meta = {
        "family": r.family,
        "size": size,
        "config": model.cfg.to_dict(),
        "corpus": corpus.name,
        "corpus_sha256": corpus.sha256,
        "bytes_seen": seen,
        "steps": step,
        "seed": seed,
        "threads": torch.get_num_threads(),
        "device": device,
        "autocast_bf16": use_amp,
        "lr": r.lr,
        "batch": B,
        "warmup": r.warmup,
        "train_seconds": round(seconds, 2),
        "train_bytes_per_s": round(seen / max(seconds, 1e-9), 1),
        "final_train_bpb": round(float(ema or float("nan")), 4),
        "final_heldout_bpb": round(final, 4),
        "heldout_bytes": int(min(len(held), final_eval_bytes)),
        "num_params": model.num_params(),
        "non_embedding_params": model.non_embedding_params(),
        "command": command or " ".join(shlex.quote(a) for a in sys.argv),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(out) if out else default_path(size, corpus.sha256, seed, stamp)
    save_checkpoint(model.cpu(), meta, path, dtype=storage_dtype)
    bar.done(final, path)
    return TrainResult(path, size, r.family, seen, seconds, meta["final_train_bpb"], final, meta["train_bytes_per_s"], meta)


class _Bar:
    """Rich progress bar over whichever budget (bytes or time) binds; silent when disabled."""

    def __init__(self, enabled: bool, size: str, budget_bytes: float, budget_s: float) -> None:
        self.enabled = enabled
        self.size = size
        self.by_bytes = budget_bytes != float("inf")
        self.total = budget_bytes if self.by_bytes else budget_s
        self.held: float | None = None
        self.progress = None

    def __enter__(self) -> "_Bar":
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(), transient=False,
            )
            self.progress.__enter__()
            self.task = self.progress.add_task(f"train {self.size}", total=self.total, info="")
        return self

    def update(self, seen: int, elapsed: float, bpb: float | None, held: float | None) -> None:
        if held is not None:
            self.held = held
        if self.progress is None:
            return
        done = seen if self.by_bytes else elapsed
        held_txt = f" held {self.held:.3f}" if self.held is not None else ""
        info = f"{seen / 1e6:.2f} MB  bpb {bpb:.3f}{held_txt}  {seen / max(elapsed, 1e-9) / 1e3:.1f} KB/s"
        self.progress.update(self.task, completed=min(done, self.total), info=info)
        if held is not None and not self.progress.console.is_terminal:
            self.progress.console.print(f"{self.size} {elapsed:.0f}s {info}")  # logs get a line per eval

    def done(self, final: float, path: Path) -> None:
        if self.progress is not None:
            self.progress.console.print(f"held-out bpb {final:.4f} -> {path}")

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)
