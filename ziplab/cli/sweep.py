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
@click.option("--codec", "codecs", default="nn", show_default=True,
              help="nn, or nn,mix: also code the slice with each model inside `mix` (a second curve).")
@click.option("--models", default=None, metavar="A,B,...",
              help="External models (hf:DIR, checkpoints) coded on the same slice with `lm`, drawn and fitted "
                   "as one more family beside the ladder (x = their non-embedding parameters).")
@click.option("--models-family", default=None, help="The external family's label (default: each model's type).")
@click.option("--quick", is_flag=True, help="Tiny budget: checks every stage in well under a minute.")
@click.option("--grid", is_flag=True,
              help="The (N, D) grid: each size at every --budgets value, learning rate tuned per size; "
                   "joint fit bpb(N, D), held-out prediction, compute-optimal frontier, model cost.")
@click.option("--budgets", default=None, metavar="B1,B2,...",
              help="Grid training budgets in bytes (default 1e6,2.83e6,8e6; '1e6' notation accepted).")
@click.option("--lr-factors", default="0.5,1,2", show_default=True,
              help="Grid: learning rates tried per size at the smallest budget, as multiples of the rung's.")
@click.option("--transfer", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Grid: a second text (other authors) whose first --eval-bytes are coded by every run too.")
@click.option("--lr-horizon", type=click.FloatRange(0.0, 1.0), default=None,
              help="Grid: budgets above the search's train at the searched rate x (D / D_search)^-this "
                   "(longer runs want lower rates; 0: the searched rate; default: the folder's recorded value, else 0).")
@click.option("--train-only", is_flag=True,
              help="Grid: train every point and code nothing (say on a GPU with --device cuda); a later "
                   "--grid run on any CPU finds the checkpoints in <out>/checkpoints and measures them.")
@click.option("--predict", default=None, metavar="SIZE@BYTES,...",
              help="Grid: train nothing; record the law's predictions for runs not yet trained "
                   "(appended to <out>/preregistered.json; the report sets them beside the runs once measured).")
def sweep(corpus, families, sizes, train_bytes, minutes, eval_bytes, seed, out, device, lanes, workers,
          threads, jobs, codecs, models, models_family, quick, grid, budgets, lr_factors, transfer, lr_horizon, train_only, predict):
    """Train the size ladder, compress held-out text for real, fit and plot bpb against size.

    With no options: the built-in corpus (Python's standard library), sizes l0-l3 and t0-t3,
    5 MB of training each, 128 KiB coded: about 4 minutes on a 2-core laptop.
    Rerunning resumes: finished sizes are skipped."""
    from rich.console import Console

    from ..sweep.run import PRESETS, SweepSettings, run_sweep
    from .progress import byte_bars

    if predict is not None:
        if not grid:
            raise click.UsageError("--predict goes with --grid")
        return _predict(out, predict)
    if models and grid:
        raise click.UsageError("--models goes with the size sweep, not --grid")
    if train_only and not grid:
        raise click.UsageError("--train-only goes with --grid")
    if grid:
        return _grid(corpus, families, sizes, budgets, lr_factors, lr_horizon, eval_bytes, transfer, seed, out, lanes,
                     threads, device, train_only)
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
        codecs=_codecs(codecs),
        models=tuple(m.strip() for m in models.split(",") if m.strip()) if models else (),
        models_family=models_family,
        command="ziplab sweep " + " ".join(shlex.quote(a) for a in sys.argv[2:]),
    )
    console = Console(stderr=True)
    hook = _printer(console, {
        "skip": lambda i: f"{i['size']}: already measured, skipped",
        "stale": lambda i: f"{i['size']}: measured with another recipe (or an older ziplab): measuring again",
        "reuse": lambda i: f"{i['size']}: reusing checkpoint {i['path']}",
        "size": lambda i: f"[bold]{i['size']}[/bold]: " + ("queued" if i.get("queued") else "training"),
        "external": lambda i: f"[bold]{i['size']}[/bold]: coding the slice with lm",
        "measured": lambda i: (f"{i['size']}: {i['non_embedding_params']:,} params, actual {i['actual_bpb']:.4f} bpb "
                               f"(cross-entropy {i['cross_entropy_bpb']:.4f}), encode {i['encode_kbps']:.1f} KB/s, "
                               f"decode {i['decode_kbps']:.1f} KB/s"
                               + (f"; inside mix {i['mix']['actual_bpb']:.4f}" if "mix" in i else "")),
    })

    with byte_bars() as progress:
        results = run_sweep(settings, hook, progress)
    console.print(f"wrote {out}/results.json, results.csv, fit.json, curve.png, report.md "
                  f"({len(results['sizes'])} sizes)")


def _printer(console, lines: dict):
    """A sweep hook that prints one line per event it knows (the baselines line for every sweep)."""
    lines = {"baselines": lambda i: f"[bold]baselines[/bold] on {i['bytes']:,} held-out bytes", **lines}

    def hook(event: str, info: dict) -> None:
        if event in lines:
            console.print(lines[event](info))

    return hook


def _codecs(text: str) -> tuple[str, ...]:
    chosen = tuple(c.strip() for c in text.split(",") if c.strip())
    if not chosen or chosen[0] != "nn" or any(c not in ("nn", "mix") for c in chosen):
        raise click.BadParameter("give nn or nn,mix", param_hint="--codec")
    return tuple(dict.fromkeys(chosen))


def _numbers(text: str, what: str, kind: type) -> tuple:
    try:
        values = tuple(kind(float(v)) for v in text.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of numbers", param_hint=what) from None
    if not values:
        raise click.BadParameter("give at least one value", param_hint=what)
    return values


def _predict(out: str, points: str) -> None:
    from rich.console import Console

    from ..sweep.preregister import parse_points, preregister

    for p in preregister(out, parse_points(points)):
        others = ", ".join(f"{f} {v:.4f}" for f, v in p["forms"].items() if f != p["form"])
        Console(soft_wrap=True).print(f"{p['size']}@{p['budget']:,}: {p['predicted_bpb']:.4f} bpb predicted by the {p['form']} "
                        f"law over {len(p['fitted_on'])} runs ({others})")


def _grid(corpus, families, sizes, budgets, lr_factors, lr_horizon, eval_bytes, transfer, seed, out, lanes,
          threads, device, train_only) -> None:
    from rich.console import Console

    from ..models.ladder import LADDER
    from ..sweep.grid import GridSettings, run_grid, train_grid
    from .progress import byte_bars

    chosen = [f.strip() for f in families.split(",") if f.strip()]
    default_sizes = tuple(z for z in GridSettings.sizes if LADDER[z].family in chosen)
    settings = GridSettings(
        corpus=corpus or GridSettings.corpus,
        sizes=tuple(z.strip() for z in sizes.split(",")) if sizes else default_sizes,
        budgets=_numbers(budgets, "--budgets", int) if budgets else GridSettings.budgets,
        lr_factors=_numbers(lr_factors, "--lr-factors", float), lr_horizon=lr_horizon,
        eval_bytes=eval_bytes or GridSettings.eval_bytes, transfer=transfer, seed=seed,
        out=out if out != "sweep" else "grid", lanes=lanes, threads=threads, device=device,
        command="ziplab sweep " + " ".join(shlex.quote(a) for a in sys.argv[2:]),
    )
    console = Console(stderr=True)
    hook = _printer(console, {
        "train": lambda i: f"[bold]{i['size']}[/bold]: training {i['budget']:,} bytes at lr {i['lr']:.3g}",
        "stale": lambda i: f"{i['size']} @ {i['budget']:,} B: measured {i.get('was', 'with another recipe')}: "
                           "measuring again",
        "horizon": lambda i: f"{i['size']}: learning-rate horizon exponent {i['from']:g} -> {i['to']:g}: "
                             "runs above the search budget are measured again at the new rates",
        "tuned": lambda i: f"{i['size']}: validation bpb by lr {i['validation_bpb']}, chose {i['chosen_lr']:.3g}",
        "measured": lambda i: (f"{i['size']} @ {i['budget']:,} B: actual {i['actual_bpb']:.4f} bpb "
                               f"(cross-entropy {i['cross_entropy_bpb']:.4f}), {i['flops']:.2e} FLOPs"),
    })

    if train_only:
        with byte_bars() as progress:
            ready = train_grid(settings, hook, progress)
        console.print(f"{len(ready)} grid points left to measure have checkpoints in {settings.out}/checkpoints; "
                      "a --grid run without --train-only measures them")
        return
    with byte_bars() as progress:
        summary = run_grid(settings, hook, progress)
    console.print(f"wrote {settings.out}/results.json, fit.json, report.md and plots")
    for family, fit in summary.get("fits", {}).items():
        pred = fit.get("prediction") or {}
        if pred:
            console.print(f"{family}: predicted {pred['predicted_bpb']} vs measured {pred['measured_bpb']} "
                          f"on held-out runs ({pred['error']:+.2%})")
