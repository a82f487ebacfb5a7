"""`ziplab bench`: our codecs beside zlib, bz2, xz, zstd, brotli and PPMd, in one table."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import bench as engine


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--codecs", "specs", default=",".join(engine.DEFAULT_CODECS), show_default=True,
              help="Comma-separated ziplab codecs, with optional level: lzh:9,huffman,nn.")
@click.option("--no-peers", is_flag=True, help="Measure only ziplab's codecs.")
@click.option("--model", default=None, help="nn: size name or checkpoint path.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Write results as JSON.")
@click.option("--once", is_flag=True, help="Time a single run instead of the best of several.")
def bench(paths, specs, no_peers, model, json_out, once):
    """Compress each PATH with every codec; report size, bpb, MB/s and a verified round trip.

    Without PATHS, a built-in sample (part of Python's standard library) is used."""
    from rich.console import Console
    from rich.table import Table

    options = {"model": model} if model else {}
    entries = engine.entries([s.strip() for s in specs.split(",") if s.strip()], not no_peers, **options)
    inputs = [(str(p), Path(p).read_bytes()) for p in paths] or [engine.builtin_sample()]
    console = Console()
    results = []
    failed = False
    for name, data in inputs:
        table = Table(title=f"{name} ({len(data):,} bytes)")
        for col in ("codec", "bytes", "bpb", "ratio", "comp MB/s", "dec MB/s", "ok"):
            table.add_column(col, justify="left" if col == "codec" else "right")
        with console.status(f"measuring {name}") as status:
            for entry in entries:
                status.update(f"{name}: {entry.name}")
                m = engine.measure(entry, data, name, repeat=not once)
                results.append(m.as_dict())
                failed |= not m.round_trip
                style = "bold" if m.ours else ""
                table.add_row(m.codec, f"{m.compressed_bytes:,}", f"{m.bpb:.3f}", f"{m.ratio:.3f}",
                              f"{m.compress_mbps:.1f}", f"{m.decompress_mbps:.1f}",
                              "yes" if m.round_trip else "[red]NO[/red]", style=style)
        console.print(table)
    if json_out:
        Path(json_out).write_text(json.dumps(results, indent=2))
    if failed:
        raise click.ClickException("a round trip failed (see the ok column)")
