"""`ziplab bench`: our codecs beside zlib, bz2, xz, zstd, brotli and PPMd, in one table."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from .. import bench as engine


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--codecs", "specs", default=None,
              help="Comma-separated ziplab codecs, with optional level: lzh:9,huffman,nn "
                   f"[default: {','.join(engine.DEFAULT_CODECS + engine.MODEL_CODECS)}].")
@click.option("--fast", is_flag=True, help="Leave out the model-driven codecs (ctx, nn), which run at KB/s.")
@click.option("--no-peers", is_flag=True, help="Measure only ziplab's codecs.")
@click.option("--model", default=None, help="nn: size name or checkpoint path (default: the shipped model).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Write the measurements as JSON (- for standard output).")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False), default=None,
              help="Write a bpb-against-speed scatter with the Pareto front (PNG), one per file.")
@click.option("--once", is_flag=True, help="Time a single run instead of the best of several.")
def bench(paths, specs, fast, no_peers, model, json_out, plot_out, once):
    """Compress each PATH with every codec; report size, bpb, MB/s and a verified round trip.

    Without PATHS, a built-in sample (part of Python's standard library) is used."""
    from rich.console import Console
    from rich.table import Table

    chosen = _codec_specs(specs, fast, model)
    options = {"model": model} if model else {}
    entries = engine.entries(chosen, not no_peers, **options)
    inputs = [(str(p), Path(p).read_bytes()) for p in paths] or [engine.builtin_sample()]
    console = Console(stderr=json_out == "-")
    results = []
    failed = False
    for index, (name, data) in enumerate(inputs):
        table = Table(title=f"{name} ({len(data):,} bytes)")
        for col in ("codec", "bytes", "bpb", "ratio", "comp MB/s", "dec MB/s", "ok"):
            table.add_column(col, justify="left" if col == "codec" else "right")
        measured = []
        with console.status(f"measuring {name}") as status:
            for entry in entries:
                status.update(f"{name}: {entry.name}")
                m = engine.measure(entry, data, name, repeat=not once)
                measured.append(m)
                failed |= not m.round_trip
                style = "bold" if m.ours else ""
                table.add_row(m.codec, f"{m.compressed_bytes:,}", f"{m.bpb:.3f}", f"{m.ratio:.3f}",
                              f"{m.compress_mbps:.1f}", f"{m.decompress_mbps:.1f}",
                              "yes" if m.round_trip else "[red]NO[/red]", style=style)
        console.print(table)
        results += [asdict(m) for m in measured]
        if plot_out:
            target = plot_out if len(inputs) == 1 else _nth(plot_out, index)
            engine.plot_tradeoff(measured, target, title=f"{Path(name).name}: {len(data):,} bytes")
            console.print(f"plot: {target}")
    if json_out:
        from ..provenance import record

        text = json.dumps({"provenance": record(), "measurements": results}, indent=2)
        if json_out == "-":
            click.echo(text)
        else:
            Path(json_out).write_text(text + "\n")
    if failed:
        raise click.ClickException("a round trip failed (see the ok column)")


def _codec_specs(specs: str | None, fast: bool, model: str | None) -> list[str]:
    if specs is not None:
        return [s.strip() for s in specs.split(",") if s.strip()]
    chosen = list(engine.DEFAULT_CODECS)
    if not fast:
        from ..models.checkpoint import shipped_path

        chosen += [c for c in engine.MODEL_CODECS if c != "nn" or model or shipped_path() is not None]
    return chosen


def _nth(path: str, index: int) -> str:
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{index + 1}{p.suffix}"))
