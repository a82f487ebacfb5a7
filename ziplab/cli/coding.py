"""`ziplab compress`, `decompress`, `info` and `codecs`: the gzip-like face of ziplab."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import codecs as registry
from .. import container
from ..errors import ZiplabError
from .files import PROGRESS_MIN_BYTES, atomic_output, input_size, open_input, progress_bar
from .signals import deferred_signals, with_checkpoint

SUFFIX = ".zl"
SLOW_CODEC_PROGRESS_BYTES = 1 << 16  # model-driven codecs run at KB/s: show progress early


def _neural_options(model: str | None, lanes: int | None, workers: int | None) -> dict:
    options = {"model": model, "lanes": lanes, "workers": workers}
    return {k: v for k, v in options.items() if v is not None}


def _check_outputs(files: tuple[str, ...], output: str | None) -> None:
    if not files:
        raise click.UsageError("no input files given (use - for standard input)")
    if output and len(files) > 1:
        raise click.UsageError("-o/--output takes a single input file")


def _to_stdout(force: bool, binary_for_terminal: bool) -> None:
    if binary_for_terminal and sys.stdout.isatty() and not force:
        raise ZiplabError("compressed data not written to a terminal (use -f to force)")


@click.command()
@click.argument("files", nargs=-1)
@click.option("-c", "--codec", default="lzh", show_default=True, help="Codec name (see `ziplab codecs`).")
@click.option("-l", "--level", type=int, default=None, help="Codec level (codec's default if omitted).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Output file.")
@click.option("--stdout", "to_stdout", is_flag=True, help="Write to standard output.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing output files.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@click.option("--block-size", type=int, default=None, help="Block size in bytes (codec's default if omitted).")
@click.option("--model", default=None, help="nn: size name, checkpoint path, or the shipped default.")
@click.option("--lanes", type=int, default=None, help="nn/ctx: parallel lanes coded in lockstep.")
@click.option("--workers", type=int, default=None, help="nn: worker processes, one thread each.")
def compress(files, codec, level, output, to_stdout, force, quiet, block_size, model, lanes, workers):
    """Compress FILES to FILE.zl, keeping the inputs (- reads standard input)."""
    _check_outputs(files, output)
    predictive = _is_predictive(codec)
    options = _neural_options(model, lanes, workers)

    def one(name: str) -> None:
        size = input_size(name)
        threshold = SLOW_CODEC_PROGRESS_BYTES if predictive else PROGRESS_MIN_BYTES
        with open_input(name) as src, progress_bar(f"compress {name}", size, quiet, threshold) as bar:
            step = _progress_options(bar, predictive)
            if to_stdout or (name == "-" and not output):
                _to_stdout(force, True)
                container.compress_file(src, sys.stdout.buffer, codec, level, block_size=block_size, **step, **options)
                sys.stdout.buffer.flush()
                return
            target = Path(output or name + SUFFIX)
            with atomic_output(target, force, like=_regular(name)) as dst:
                header = container.compress_file(src, dst, codec, level, block_size=block_size, **step, **options)
                written = dst.tell()
        if not quiet:
            _summary(name, header.original_size, written, str(target))

    return _each_file(files, one)


def _regular(name: str) -> Path | None:
    """The input whose mode and times the output takes (not standard input)."""
    return None if name == "-" else Path(name)


def _each_file(files: tuple[str, ...], one) -> int:
    """Run `one` on every file like gzip: a failure is reported (naming the file) and the rest
    still run; the exit code is 1 if any failed. Signals stop everything (deferred to a safe point)."""
    failed = 0
    with deferred_signals():
        for name in files:
            try:
                one(name)
            except (ZiplabError, OSError) as exc:
                failed += 1
                text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                text = text if text.startswith(name) else f"{name}: {text}"
                click.echo(f"ziplab: error: {text}", err=True)
    return 1 if failed else 0


def _is_predictive(codec: str) -> bool:
    from ..codecs.predictive import PredictiveCodec

    return isinstance(registry.get(codec), PredictiveCodec)


def _progress_options(bar, predictive: bool) -> dict:
    """Model-driven codecs report every few steps through their stats; others per block. Either
    way the callback is where a pending signal is acted on (see `signals`)."""
    report = with_checkpoint(bar)
    if predictive:
        from ..codecs.predictive import CodingStats

        return {"stats": CodingStats(progress=report)}
    return {"progress": report}


def _summary(name: str, original: int, compressed: int, target: str) -> None:
    bpb = 8 * compressed / original if original else 0.0
    click.echo(f"{name}: {original} -> {compressed} bytes ({bpb:.3f} bpb) -> {target}", err=True)


def _decompressed_name(name: str) -> Path:
    if not name.endswith(SUFFIX) or len(name) == len(SUFFIX):
        raise ZiplabError(f"{name}: unknown suffix, expected {SUFFIX} (use -o to name the output)")
    return Path(name[: -len(SUFFIX)])


@click.command()
@click.argument("files", nargs=-1)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Output file.")
@click.option("--stdout", "to_stdout", is_flag=True, help="Write to standard output.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing output files.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--model", default=None, help="nn: checkpoint to decode with, if not where the header says.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="nn/ctx: worker processes (default: one per substream, at most one per CPU).")
def decompress(files, output, to_stdout, force, quiet, model, workers):
    """Decompress FILE.zl files (codec and settings come from each header)."""
    _check_outputs(files, output)
    base = {"model": model} if model else {}
    if workers:
        base["workers"] = workers

    def one(name: str) -> None:
        with open_input(name) as src:
            header = container.read_header(src)
            predictive = _is_predictive(header.codec)
            threshold = SLOW_CODEC_PROGRESS_BYTES if predictive else PROGRESS_MIN_BYTES
            with progress_bar(f"decompress {name}", header.original_size, quiet, threshold) as bar:
                report = with_checkpoint(bar)
                # predictive decoders report every few steps, the container once per block
                step, options = ({}, {**base, "progress": report}) if predictive else ({"progress": report}, base)
                if to_stdout or (name == "-" and not output):
                    container.decompress_file(src, sys.stdout.buffer, header=header, **step, **options)
                    sys.stdout.buffer.flush()
                    return
                target = Path(output) if output else _decompressed_name(name)
                with atomic_output(target, force, like=_regular(name)) as dst:
                    container.decompress_file(src, dst, header=header, **step, **options)

    return _each_file(files, one)


def _printable(value: object) -> str:
    """Header text as data, never as terminal control sequences."""
    text = str(value)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@click.command()
@click.argument("files", nargs=-1, required=True)
def info(files):
    """Show the header of .zl files: codec, parameters, sizes, ratio and bpb."""
    def one(name: str) -> None:
        with open_input(name) as src:
            header = container.read_header(src)
        compressed = input_size(name)
        click.echo(f"{_printable(name)}:")
        click.echo(f"  codec        {header.codec} (format {header.version})")
        for key, value in sorted(header.params.items()):
            click.echo(f"  {_printable(key):<12} {_printable(value)}")
        click.echo(f"  original     {header.original_size} bytes")
        click.echo(f"  blocks       {header.blocks} x {header.block_size} bytes")
        click.echo(f"  crc32        {header.crc32:08x}")
        if compressed is not None:
            ratio = header.original_size / compressed if compressed else 0.0
            bpb = 8 * compressed / header.original_size if header.original_size else 0.0
            click.echo(f"  compressed   {compressed} bytes (ratio {ratio:.3f}, {bpb:.3f} bpb)")

    return _each_file(files, one)


@click.command()
def codecs():
    """List the codecs, one line each."""
    for name in registry.names():
        try:
            impl = registry.get(name)
        except ImportError as exc:
            click.echo(f"{name:<8} (unavailable: {exc})")
            continue
        levels = f"levels {impl.levels[0]}-{impl.levels[1]}, default {impl.default_level}" if impl.levels else "no levels"
        click.echo(f"{name:<8} {impl.summary} [{levels}]")
