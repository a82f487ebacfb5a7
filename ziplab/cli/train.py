"""`ziplab train`: train one ladder rung on a corpus and write a checkpoint (also under torchrun)."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys

import click

from .signals import Interrupted, deferred_signals, pending, received


@click.command("train")
@click.option("--size", required=True, help="Ladder rung, e.g. t3 or l4 (see `ziplab models`).")
@click.option("--corpus", "corpus", required=True, help="Corpus name, folder (train.txt + dev.txt) or file.")
@click.option("--train-bytes", type=click.IntRange(1), default=None, help="Stop after this many training bytes.")
@click.option("--minutes", type=click.FloatRange(0, min_open=True), default=None,
              help="Stop after this much wall-clock time.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=None,
              help="Peak learning rate (default: the rung's; the grid's horizon rule gives one per budget).")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True,
              help="auto: CUDA when torch sees a GPU.")
@click.option("--threads", type=click.IntRange(1, 1024), default=None, help="torch threads (default: torch's choice).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Checkpoint file (.safetensors).")
@click.option("--no-autocast", is_flag=True,
              help="Train in fp32 even where bf16 is native (bf16 autocast is used only on CUDA and CPUs with native bf16).")
@click.option("--state-every", type=click.IntRange(0), default=0, show_default=True,
              help="Save a resumable training state (OUT.state.pt) every N optimiser steps.")
@click.option("--resume", is_flag=True, help="Continue from OUT.state.pt if an earlier run of the same recipe left one.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(size, corpus, train_bytes, minutes, seed, lr, device, threads, out, no_autocast, state_every, resume,
          quiet) -> None:
    """Train a byte-level predictor on a corpus.

    Data-parallel: `torchrun --nproc-per-node K -m ziplab train ...` (gloo on CPU, NCCL on GPU)."""
    from ..models.train import TrainConfig, TrainingStopped, train_model
    from .progress import TrainBar

    if resume and not out:
        raise click.UsageError("--resume needs --out (the checkpoint whose saved state to continue)")
    cfg = TrainConfig(size=size, corpus=corpus, train_bytes=train_bytes, minutes=minutes, seed=seed, lr=lr, device=device,
                      threads=threads, out=out, autocast=not no_autocast, state_every=state_every, resume=resume,
                      command="ziplab " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    main_rank = os.environ.get("RANK", "0") == "0"
    # SIGINT/SIGTERM/SIGHUP (a preempted cluster job gets SIGTERM) stop after the current step with
    # the state saved, when there is a checkpoint path to save it beside
    stop = deferred_signals() if out else contextlib.nullcontext()
    try:
        with stop, TrainBar(size, enabled=not quiet and main_rank) as bar:
            res = train_model(cfg, on_step=bar, should_stop=pending if out else None)
            bar.done(res.heldout_bpb, res.path)
    except TrainingStopped as exc:
        if main_rank:
            click.echo(f"ziplab: {exc}", err=True)
        raise Interrupted(received() or signal.SIGTERM) from None
    if main_rank:
        click.echo(f"{res.size}: {res.bytes_seen} bytes in {res.seconds:.0f}s ({res.bytes_per_s / 1e3:.1f} KB/s), "
                   f"train bpb {res.train_bpb:.3f}, held-out bpb {res.heldout_bpb:.4f} -> {res.path}")
