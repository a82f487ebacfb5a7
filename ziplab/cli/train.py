"""`ziplab train`: train one ladder rung on a corpus and write a checkpoint."""

from __future__ import annotations

import shlex
import sys

import click


@click.command("train")
@click.option("--size", required=True, help="Ladder rung, e.g. t3 or l4 (see `ziplab models`).")
@click.option("--corpus", "corpus", required=True, help="Corpus name, folder (train.txt + dev.txt) or file.")
@click.option("--train-bytes", type=int, default=None, help="Stop after this many training bytes.")
@click.option("--minutes", type=float, default=None, help="Stop after this much wall-clock time.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--threads", type=int, default=None, help="torch threads (default: torch's choice).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Checkpoint file (.safetensors).")
@click.option("--no-autocast", is_flag=True, help="Train in fp32 even where the CPU has native bf16 (bf16 autocast is used only there).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(size, corpus, train_bytes, minutes, seed, device, threads, out, no_autocast, quiet) -> None:
    """Train a byte-level predictor on a corpus."""
    from ..models.train import train_model

    res = train_model(
        size, corpus, train_bytes=train_bytes, minutes=minutes, seed=seed, device=device,
        threads=threads, out=out, autocast=not no_autocast, progress=not quiet,
        command="ziplab " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[0].endswith("ziplab") else None,
    )
    click.echo(
        f"{res.size}: {res.bytes_seen} bytes in {res.seconds:.0f}s ({res.bytes_per_s / 1e3:.1f} KB/s), "
        f"train bpb {res.train_bpb:.3f}, held-out bpb {res.heldout_bpb:.4f} -> {res.path}"
    )
