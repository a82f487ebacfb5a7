"""`ziplab score`: bits per byte of any model on any text, by sliding-window cross-entropy."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator

import click

from ..errors import ZiplabError

CSV_COLUMNS = ["model", "family", "text", "bytes", "tokens", "bpb", "bits_per_token", "window", "stride", "params",
               "non_embedding_params", "seconds", "device", "model_sha256", "tokenizer_sha256"]


def _texts(files: tuple[str, ...], corpus: str | None, eval_bytes: int | None) -> list[tuple[str, bytes]]:
    """(label, bytes) for each file, or the held-out split of a corpus (its first eval_bytes)."""
    if files and corpus:
        raise click.UsageError("give FILES or --corpus, not both")
    if corpus:
        from ..corpora import load_corpus

        c = load_corpus(corpus)
        data = c.heldout()
        return [(f"{c.name} (held-out)", data[:eval_bytes] if eval_bytes else data)]
    if not files:
        raise click.UsageError("give a text file (or --corpus NAME)")
    out = []
    for name in files:
        data = Path(name).read_bytes()
        out.append((name, data[:eval_bytes] if eval_bytes else data))
    return out


@contextlib.contextmanager
def _bar(label: str, quiet: bool) -> Iterator[tuple]:
    """(on_total, advance) for one scoring run: a rich bar in tokens, on standard error."""
    if quiet:
        yield None, None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("tokens"),
                  TimeRemainingColumn(), transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=None)
        yield (lambda n: bar.update(task, total=n)), (lambda k: bar.advance(task, k))


def _write(records: list[dict], out: str | None, csv_path: str | None) -> None:
    if out:
        Path(out).write_text(json.dumps(records, indent=2) + "\n")
    if csv_path:
        import csv

        with open(csv_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(records)


@click.command()
@click.argument("files", nargs=-1)
@click.option("--model", "models", multiple=True, required=True,
              help="hf:DIR (local Hugging Face model), a ladder size, a checkpoint path or 'shipped'; repeatable.")
@click.option("--corpus", default=None, help="Score a corpus's held-out split instead of FILES.")
@click.option("--eval-bytes", type=click.IntRange(1), default=None, help="Score only the first N bytes of each text.")
@click.option("--window", type=click.IntRange(2), default=1900, show_default=True,
              help="Positions per window (clamped to the model's context).")
@click.option("--stride", type=click.IntRange(1), default=512, show_default=True,
              help="Positions each window advances; it scores only those.")
@click.option("--batch", type=click.IntRange(1, 4096), default=1, show_default=True, help="Windows per forward pass.")
@click.option("--device", default="cpu", show_default=True, help="cpu, or cuda where there is one.")
@click.option("--threads", type=click.IntRange(1, 1024), default=None, help="torch threads (default: torch's).")
@click.option("-o", "--out", default="score.json", show_default=True, help="JSON output ('' for none).")
@click.option("--csv", "csv_path", default=None, help="Also write a CSV table here.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def score(files, models, corpus, eval_bytes, window, stride, batch, device, threads, out, csv_path, quiet):
    """Bits per byte of each model on each text, by cross-entropy over sliding windows
    (Huang et al. 2024: window 1900, stride 512), token bits counted against the text's bytes."""
    from ..lm import load_lm
    from ..lm.score import ScoreSettings
    from ..lm.score import score as run_score

    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise click.BadParameter("cpu or cuda", param_hint="--device")
    texts = _texts(files, corpus, eval_bytes)
    settings = ScoreSettings(window=window, stride=stride, batch=batch, device=device, threads=threads)
    records = []
    for spec in models:
        model = load_lm(spec)
        for label, data in texts:
            with _bar(f"score {model.name} on {label}", quiet) as (on_total, advance):
                result = run_score(model, data, settings, advance, on_total)
            record = {"text": label, **result.to_dict()}
            records.append(record)
            click.echo(f"{model.name} on {label}: {result.bpb:.4f} bpb ({result.tokens:,} tokens, "
                       f"{result.bits_per_token:.3f} bits/token, window {result.window}, stride {result.stride}, "
                       f"{result.non_embedding_params:,} non-embedding params)")
    try:
        _write(records, out or None, csv_path)
    except OSError as exc:
        raise ZiplabError(f"cannot write results: {exc}") from None
    if out and not quiet:
        click.echo(f"wrote {out}" + (f" and {csv_path}" if csv_path else ""), err=True)
