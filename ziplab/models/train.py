"""One training loop for every family: random windows of the rung's context length from the
train split, AdamW with warmup + cosine decay, bf16 autocast on CPUs with native bf16 (fp32
elsewhere), periodic held-out bpb on a fixed slice, and a checkpoint whose metadata says exactly
how it was made.

Given a seed, a thread count and a byte budget (--train-bytes), a run is deterministic. A time
budget (--minutes) makes the schedule follow the wall clock, so it is not.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ParameterError
from ..hardware import native_bf16, torch_threads
from .checkpoint import default_path, save_checkpoint
from .ladder import Rung, rung
from .predictor import BOS

LN2 = math.log(2.0)
#: optimiser steps between stop checks (each is a collective under torchrun: not every step)
STOP_EVERY = 8


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
    device = next(model.parameters()).device  # a model training on a GPU is scored there
    streams = torch.from_numpy(data[:n].astype(np.int64)).view(lanes, -1).to(device)
    inputs = torch.cat([torch.full((lanes, 1), BOS, dtype=torch.long, device=device), streams[:, :-1]], dim=1)
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
@dataclass
class TrainConfig:
    """Everything a training run depends on. Given seed, threads and a byte budget, a run is
    deterministic (a wall-clock budget, `minutes`, is not)."""

    size: str
    corpus: str = "stdlib"  # a name or path for load_corpus (recorded in the checkpoint)
    train_bytes: int | None = None  # with neither budget: 20 bytes per non-embedding parameter, >= 1 MB
    minutes: float | None = None
    seed: int = 0
    device: str = "cpu"  # cpu | cuda | auto
    threads: int | None = None
    out: str | None = None  # checkpoint path (default: the models folder)
    autocast: bool = True  # bf16 autocast where it is native: CUDA, and CPUs with AVX-512 BF16/AMX
    eval_every: int = 0  # optimiser steps between held-out evaluations (0: about every 2 MB)
    eval_bytes: int = 1 << 16
    final_eval_bytes: int = 1 << 20
    storage_dtype: str = "float16"
    command: str = ""
    state_every: int = 0  # optimiser steps between saved training states (0: never)
    resume: bool = False  # continue from the training state saved beside `out`, if it matches
    lr: float | None = None  # peak learning rate (default: the rung's); grid sweeps tune it per size


@dataclass
class StepInfo:
    """What `on_step` hears after every optimiser step (on rank 0 only)."""

    step: int
    seen: int
    new_bytes: int
    elapsed: float
    budget_bytes: float
    budget_s: float
    train_bpb: float  # moving average
    heldout_bpb: float | None  # set on evaluation steps


def state_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.name + ".state.pt")


def _recipe(cfg: TrainConfig, corpus_sha: str, world: int) -> dict:
    """What a saved training state must match to be resumed."""
    return {"size": cfg.size, "rung": rung(cfg.size).recipe, "corpus_sha256": corpus_sha, "seed": cfg.seed,
            "train_bytes": cfg.train_bytes, "minutes": cfg.minutes, "world": world,
            **({"lr": cfg.lr} if cfg.lr is not None else {})}


class TrainingStopped(ParameterError):
    """Training was asked to stop (`should_stop`); the state to resume from was saved."""

    def __init__(self, path: Path, step: int) -> None:
        super().__init__(f"training stopped at step {step}; its state is in {path} (rerun with --resume)")
        self.path, self.step = path, step


def train_model(cfg: TrainConfig, corpus: Any = None, on_step: Callable[[StepInfo], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train one ladder rung and write a checkpoint; `corpus` (a Corpus) overrides `cfg.corpus`.

    Under torchrun every rank runs this: each trains on its slice of the same global batch,
    rank 0 evaluates, reports and writes; all ranks return the same result. `should_stop` is
    asked after every step (rank 0 decides for all): on true the training state is saved and
    TrainingStopped raised, so a preempted or interrupted run resumes where it stopped.
    torch trains with `cfg.threads` threads; the caller's setting is restored on return."""
    with torch_threads(cfg.threads):
        return _train(cfg, corpus, on_step, should_stop)


def _train(cfg: TrainConfig, corpus: Any, on_step: Callable[[StepInfo], None] | None,
           should_stop: Callable[[], bool] | None) -> TrainResult:
    from ..corpora import Corpus, load_corpus
    from . import distributed

    r: Rung = rung(cfg.size)
    corpus = load_corpus(cfg.corpus) if corpus is None else corpus
    assert isinstance(corpus, Corpus)
    device = distributed.resolve_device(cfg.device)
    dist = distributed.from_env(device)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    train = np.frombuffer(corpus.train(), dtype=np.uint8)
    held = np.frombuffer(corpus.heldout(), dtype=np.uint8)
    T, B = r.context, r.batch
    if len(train) < T + 2 or len(held) < 64:
        raise ParameterError(f"corpus {corpus.name!r} is too small to train {cfg.size} (context {T})")
    mine = dist.share(B)
    model = r.build().to(device)
    train_bytes = cfg.train_bytes
    if train_bytes is None and cfg.minutes is None:
        train_bytes = max(1 << 20, 20 * model.non_embedding_params())
    budget_bytes = train_bytes if train_bytes is not None else float("inf")
    budget_s = cfg.minutes * 60.0 if cfg.minutes is not None else float("inf")
    per_step = B * T
    eval_slice = held[: min(len(held), cfg.eval_bytes)]
    eval_every = cfg.eval_every or max(50, int(2_000_000 // per_step))
    base_lr = r.lr if cfg.lr is None else float(cfg.lr)
    opt = make_optimizer(model, base_lr)
    if device == "cuda":
        amp = {"device_type": "cuda", "dtype": torch.bfloat16, "enabled": cfg.autocast}
    else:  # emulated bf16 is ~100x slower than fp32 and has no LSTM kernel
        amp = {"device_type": "cpu", "dtype": torch.bfloat16, "enabled": cfg.autocast and native_bf16()}

    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(cfg.out) if cfg.out else default_path(cfg.size, corpus.sha256, cfg.seed, stamp)
    recipe = _recipe(cfg, corpus.sha256, dist.world)
    step, seen, spent, ema, devices = 0, 0, 0.0, None, []
    if cfg.resume and state_path(path).is_file():
        step, seen, spent, ema, devices = _load_state(state_path(path), recipe, model, opt, rng)
    # a run resumed on another device says so (a state saved before states kept the list counts as this device's)
    devices = devices if devices[-1:] == [device] else devices + [device]
    net = distributed.wrap(model, dist, device)
    t0 = time.perf_counter() - spent
    while True:
        elapsed = time.perf_counter() - t0
        frac = max(seen / budget_bytes, elapsed / budget_s)
        if distributed.agree(frac >= 1.0, dist) if cfg.minutes is not None else frac >= 1.0:
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(frac, step, base_lr, r.warmup)
        x, y = sample_batch(train, rng, B, T)  # every rank draws the global batch; each trains on its rows
        net.train()
        with torch.autocast(**amp):
            logits, _ = net(x[mine].to(device))
        loss = F.cross_entropy(logits.float().reshape(-1, 256), y[mine].to(device).reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        seen += per_step
        bpb = loss.item() / LN2
        ema = bpb if ema is None else 0.98 * ema + 0.02 * bpb
        held_now = None
        if dist.main and step % eval_every == 0:
            model.eval()
            held_now = heldout_bpb(model, eval_slice)
        if dist.main and cfg.state_every and step % cfg.state_every == 0:
            _save_state(state_path(path), recipe, model, opt, rng, step, seen, time.perf_counter() - t0, ema, devices)
        if on_step is not None and dist.main:
            on_step(StepInfo(step, seen, per_step, time.perf_counter() - t0, budget_bytes, budget_s, ema, held_now))
        if should_stop is not None and step % STOP_EVERY == 0 and distributed.agree(should_stop(), dist):
            if dist.main:
                _save_state(state_path(path), recipe, model, opt, rng, step, seen, time.perf_counter() - t0, ema,
                            devices)
            distributed.barrier(dist)
            raise TrainingStopped(state_path(path), step)

    seconds = time.perf_counter() - t0
    model.eval()
    _round_weights(model, cfg.storage_dtype)
    final = heldout_bpb(model, held[: min(len(held), cfg.final_eval_bytes)]) if dist.main else 0.0
    final = distributed.broadcast_float(final, dist)
    meta = {
        "family": r.family,
        "size": cfg.size,
        "config": model.cfg.to_dict(),
        "corpus": corpus.name,
        "corpus_sha256": corpus.sha256,
        "bytes_seen": seen,
        "steps": step,
        "seed": cfg.seed,
        "threads": torch.get_num_threads(),
        "device": "+".join(devices),  # e.g. cuda+cpu: begun on a GPU, finished on a CPU
        "processes": dist.world,
        "autocast_bf16": bool(amp["enabled"]),
        "lr": base_lr,
        "batch": B,
        "warmup": r.warmup,
        "train_seconds": round(seconds, 2),
        "train_bytes_per_s": round(seen / max(seconds, 1e-9), 1),
        "final_train_bpb": round(float(ema or float("nan")), 4),
        "final_heldout_bpb": round(final, 4),
        "heldout_bytes": int(min(len(held), cfg.final_eval_bytes)),
        "num_params": model.num_params(),
        "non_embedding_params": model.non_embedding_params(),
        "command": cfg.command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if dist.main:
        save_checkpoint(model.cpu(), meta, path, dtype=cfg.storage_dtype)
        state_path(path).unlink(missing_ok=True)  # finished: nothing left to resume
    distributed.barrier(dist)
    return TrainResult(path, cfg.size, r.family, seen, seconds, meta["final_train_bpb"], final,
                       meta["train_bytes_per_s"], meta)


def _save_state(path: Path, recipe: dict, model, opt, rng: np.random.Generator, step: int, seen: int,
                elapsed: float, ema: float | None, devices: list[str]) -> None:
    """Weights, optimiser moments, data-sampler state and counters: enough to continue exactly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"recipe": recipe, "model": model.state_dict(), "opt": opt.state_dict(),
                "rng": json.dumps(rng.bit_generator.state), "step": step, "seen": seen,
                "elapsed": elapsed, "ema": ema, "devices": devices}, tmp)
    os.replace(tmp, path)


def _load_state(path: Path, recipe: dict, model, opt,
                rng: np.random.Generator) -> tuple[int, int, float, float | None, list[str]]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file: say so in one line
        raise ParameterError(f"cannot resume from {path}: {str(exc).splitlines()[0]}") from None
    if state.get("recipe") != recipe:
        raise ParameterError(f"{path} was saved by a different run (size, recipe, corpus, seed, budget or "
                             "process count differ): delete it to start afresh")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    rng.bit_generator.state = json.loads(state["rng"])
    return (int(state["step"]), int(state["seen"]), float(state["elapsed"]), state["ema"],
            list(state.get("devices", [])))
