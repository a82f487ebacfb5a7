"""`ziplab sweep`: the scaling curve, from training to a plotted, fitted report."""

from __future__ import annotations

import shlex
import sys
import click

@click.command()
@click.option("--corpus", default=None, help="Corpus name or path (default: the built-in stdlib corpus).")
@click.option("--family", "families", default="lstm,transformer", show_default=True,
              help="Comma-separated families whose whole ladder is swept.")
@click.option("--sizes", default=None, help="Comma-separated sizes (overrides --family), e.g. l1,l2,t3.")
@click.option("--train-bytes", type=int, default=None, help="Training bytes per size.")
@click.option("--minutes", type=float, default=None, help="Training minutes per size (instead of bytes).")
@click.option("--eval-bytes", type=int, default=None, help="Held-out bytes coded per size.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", default="sweep", show_default=True, type=click.Path(file_okay=False))
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True,
              help="Training device (auto: CUDA when torch sees a GPU); coding is portable and runs on the CPU.")
@click.option("--lanes", type=int, default=64, show_default=True, help="Coding lanes.")
@click.option("--workers", type=int, default=1, show_default=True, help="Coding worker processes.")
@click.option("--threads", type=click.IntRange(1, 1024), default=None,
              help="Training threads (default: torch's; with --jobs, CPUs / jobs).")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Sizes trained at once, one process each (results.json is shared safely).")
@click.option("--quick", is_flag=True, help="Tiny budget: checks every stage in well under a minute.")
def sweep(corpus, families, sizes, train_bytes, minutes, eval_bytes, seed, out, device, lanes, workers,
          threads, jobs, quick):
    """Train the size ladder, compress held-out text for real, fit and plot bpb against size.

    With no options: the built-in corpus (Python's standard library), sizes l0-l3 and t0-t3,
    5 MB of training each, 128 KiB coded: about 4 minutes on a 2-core laptop.
    Rerunning resumes: finished sizes are skipped."""
    from rich.console import Console

    from ..sweep.run import PRESETS, SweepSettings, run_sweep
    from .progress import byte_bars

    explicit = any(v is not None for v in (sizes, train_bytes, minutes)) or families != "lstm,transformer"
    preset = PRESETS["quick"] if quick else ({} if explicit else PRESETS["default"])
    if train_bytes is not None and minutes is not None:
        raise click.UsageError("give --train-bytes or --minutes, not both")
    chosen = tuple(f.strip() for f in families.split(",") if f.strip())
    if quick and not sizes:  # the quick preset's sizes, of the families asked for
        from ..models.ladder import rung

        preset = {**preset, "sizes": tuple(z for z in preset["sizes"] if rung(z).family in chosen)}
    settings = SweepSettings(
        corpus=corpus or SweepSettings.corpus,
        families=chosen,
        sizes=tuple(s.strip() for s in sizes.split(",")) if sizes else preset.get("sizes", ()),
        train_bytes=train_bytes if train_bytes is not None else (None if minutes else preset.get("train_bytes")),
        minutes=minutes,
        eval_bytes=eval_bytes or preset.get("eval_bytes", SweepSettings.eval_bytes),
        seed=seed, out=out, device=device, lanes=lanes, workers=workers, threads=threads, jobs=jobs,
        command="ziplab sweep " + " ".join(shlex.quote(a) for a in sys.argv[2:]),
    )
    console = Console(stderr=True)

    def hook(event: str, info: dict) -> None:
        if event == "baselines":
            console.print(f"[bold]baselines[/bold] on {info['bytes']:,} held-out bytes")
        elif event == "skip":
            console.print(f"{info['size']}: already measured, skipped")
        elif event == "stale":
            console.print(f"{info['size']}: measured with another recipe (or an older ziplab): measuring again")
        elif event == "reuse":
            console.print(f"{info['size']}: reusing checkpoint {info['path']}")
        elif event == "size":
            console.print(f"[bold]{info['size']}[/bold]: " + ("queued" if info.get("queued") else "training"))
        elif event == "measured":
            console.print(f"{info['size']}: {info['non_embedding_params']:,} params, actual {info['actual_bpb']:.4f} bpb "
                          f"(cross-entropy {info['cross_entropy_bpb']:.4f}), encode {info['encode_kbps']:.1f} KB/s, "
                          f"decode {info['decode_kbps']:.1f} KB/s")

    with byte_bars() as progress:
        results = run_sweep(settings, hook, progress)
    console.print(f"wrote {out}/results.json, results.csv, fit.json, curve.png, report.md "
                  f"({len(results['sizes'])} sizes)")
