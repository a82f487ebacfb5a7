"""`ziplab compress`, `decompress`, `info` and `codecs`: the gzip-like face of ziplab."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import codecs as registry
from .. import container
from ..codecs.base import CodingOptions
from ..codecs.substream_forks import forking
from ..errors import ZiplabError
from ..limits import default_limits, format_size
from .files import PROGRESS_MIN_BYTES, atomic_output, input_size, open_input, progress_bar
from .signals import deferred_signals, with_checkpoint

SUFFIX = ".zl"
SLOW_CODEC_PROGRESS_BYTES = 1 << 16  # model-driven codecs run at KB/s: show progress early


def _inputs(files: tuple[str, ...]) -> tuple[str, ...]:
    """No file named: standard input, when it is not a terminal (like gzip and zstd)."""
    if files:
        return files
    if sys.stdin.isatty():
        raise click.UsageError("no input files given (use - for standard input)")
    return ("-",)


def _check_outputs(files: tuple[str, ...], output: str | None) -> None:
    if output and output != "-" and len(files) > 1:
        raise click.UsageError("-o/--output takes a single input file (use -c to concatenate to standard output)")


def _to_stdout(force: bool, binary_for_terminal: bool) -> None:
    if binary_for_terminal and sys.stdout.isatty() and not force:
        raise ZiplabError("compressed data not written to a terminal (use -f to force)")


def _check_codec_choice(codec: str, files: tuple[str, ...], to_stdout: bool) -> None:
    """`-c lzh` meant "codec lzh" before 0.2; now -c is standard output, as in gzip and zstd."""
    if to_stdout and files and files[0] in registry.names() and not Path(files[0]).exists():
        raise click.UsageError(f"-c now means 'write to standard output' (as in gzip); choose the codec "
                               f"with -m {files[0]} (or --codec {files[0]})")


def _remove_input(name: str, target: Path | None, verify) -> None:
    """--rm: delete the input only after its output has been read back and verified."""
    if name == "-" or target is None:
        return
    verify(target)
    Path(name).unlink()


def _verify_compressed(original: str, options: CodingOptions):
    def check(target: Path) -> None:
        import zlib

        with open(target, "rb") as f:
            sink = _CrcSink()
            container.decompress_file(f, sink, options=options)
        crc, size = 0, 0
        with open(original, "rb") as f:
            while chunk := f.read(1 << 20):
                crc, size = zlib.crc32(chunk, crc), size + len(chunk)
        if (sink.crc, sink.size) != (crc, size):
            raise ZiplabError(f"{target} does not decode to {original}: input kept")

    return check


class _CrcSink:
    """A write-only file that keeps only the CRC32 and length of what it is given (-t, --rm)."""

    def __init__(self) -> None:
        self.crc, self.size = 0, 0

    def write(self, data: bytes) -> int:
        import zlib

        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


#: the options compress and decompress share, word for word
output_option = click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default=None,
                             help="Output file (- for standard output).")
keep_option = click.option("-k", "--keep", is_flag=True, help="Keep inputs (the default; accepted for gzip habits).")
memory_limit_option = click.option(
    "--memory-limit", "memory_limit", metavar="SIZE", default=None,
    help="Most memory decoding may use, e.g. 512M or 4G (default: $ZIPLAB_MEMORY_LIMIT, else 3/4 of available "
         "memory); a file needing more is refused before decoding.")


@click.command()
@click.argument("files", nargs=-1)
@click.option("-m", "--codec", default="lzh", show_default=True, help="Codec (method) name, see `ziplab codecs`.")
@click.option("-l", "--level", type=int, default=None, help="Codec level (-1 ... -9 work too).")
@click.option("-c", "--stdout", "to_stdout", is_flag=True, help="Write to standard output (concatenating several files).")
@output_option
@click.option("-f", "--force", is_flag=True, help="Overwrite outputs; compress files already ending in .zl.")
@keep_option
@click.option("--rm", "remove", is_flag=True, help="Delete each input after its output was written and verified.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@click.option("-v", "--verbose", is_flag=True, help="Name the codec and settings in the summary.")
@click.option("--block-size", type=click.IntRange(1, container.MAX_BLOCK), default=None,
              help="Block size in bytes (codec's default if omitted).")
@click.option("--model", default=None,
              help="nn/mix/lm: size name, checkpoint path, or the shipped default; mix also takes 'none'; "
                   "lm (and nn, for an exported lab transformer) hf:DIR, a local Hugging Face model.")
@click.option("--lanes", type=click.IntRange(1, 4096), default=None, help="nn/ctx: parallel lanes coded in lockstep.")
@click.option("--engine", default=None, metavar="NAME",
              help="nn/mix: the portable engine to write (default: the newest; e.g. lstm-int8x8-v2 for files "
                   "ziplab 0.3-0.5 decode).")
@click.option("-T", "--workers", type=click.IntRange(1, 64), default=None,
              help="nn/ctx: substreams and processes, one thread each (default: the codec's substreams, one "
                   "process each, at most one per CPU).")
@memory_limit_option
def compress(files, codec, level, to_stdout, output, force, keep, remove, quiet, verbose, block_size, model, lanes,
             engine, workers, memory_limit):
    """Compress FILES to FILE.zl, keeping the inputs (- or nothing reads standard input)."""
    _check_codec_choice(codec, files, to_stdout)
    files = _inputs(files)
    _check_outputs(files, output)
    impl = registry.get(codec)
    if level is not None:
        impl.check_level(level)
    predictive = _is_predictive(codec)
    if not predictive and (model or lanes or workers or engine):
        raise click.UsageError(f"--model, --lanes, --engine and -T/--workers are for the nn, ctx, mix and lm codecs, "
                               f"not {codec}")
    limits = default_limits(memory_limit)
    options = CodingOptions(model=model, lanes=lanes, workers=workers, limits=limits, engine=engine)
    to_stdout = to_stdout or output == "-"

    def one(name: str) -> None:
        if name != "-" and name.endswith(SUFFIX) and not force and not to_stdout and not output:
            raise ZiplabError(f"{name}: already has the {SUFFIX} suffix, skipped (use -f to compress it anyway)")
        size = input_size(name)
        threshold = SLOW_CODEC_PROGRESS_BYTES if predictive else PROGRESS_MIN_BYTES
        with open_input(name) as src, progress_bar(f"compress {name}", size, quiet, threshold) as bar:
            report = with_checkpoint(bar)
            if to_stdout or (name == "-" and not output):
                _to_stdout(force, True)
                container.compress_file(src, sys.stdout.buffer, codec, level, options=options, block_size=block_size,
                                        progress=report)
                sys.stdout.buffer.flush()
                return
            target = Path(output or name + SUFFIX)
            with atomic_output(target, force, like=_regular(name)) as dst:
                header = container.compress_file(src, dst, codec, level, options=options, block_size=block_size,
                                                     progress=report)
                written = dst.tell()
        if not quiet:
            _summary(name, header.original_size, written, str(target), header if verbose else None)
        if remove:
            _remove_input(name, target, _verify_compressed(name, CodingOptions(model=model, limits=limits)))

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
    return registry.get(codec).model_driven


def _model_copies(impl, params: dict) -> str:
    """How decoding holds the model, for `info`: shared by forked processes (nn, mix format 4;
    threads where the platform does not fork), by threads (mix formats 2/3), or one per worker
    process (ctx, lm)."""
    if not impl.model_driven:
        return ""
    sharing = impl.model_sharing(params)
    if sharing == "forks":
        return "; forked processes share one model" if forking() else "; threads share one model"
    return "; threads share one model" if sharing == "threads" else "; each worker process adds its own model"


def _summary(name: str, original: int, compressed: int, target: str, header=None) -> None:
    bpb = 8 * compressed / original if original else 0.0
    how = f" [{header.codec} {_printable(header.params)}]" if header is not None else ""
    click.echo(f"{name}: {original} -> {compressed} bytes ({bpb:.3f} bpb) -> {target}{how}", err=True)


def _decompressed_name(name: str) -> Path:
    if not name.endswith(SUFFIX) or len(name) == len(SUFFIX):
        raise ZiplabError(f"{name}: unknown suffix, expected {SUFFIX} (use -o to name the output)")
    return Path(name[: -len(SUFFIX)])


@click.command()
@click.argument("files", nargs=-1)
@click.option("-c", "--stdout", "to_stdout", is_flag=True, help="Write to standard output.")
@output_option
@click.option("-t", "--test", "test", is_flag=True, help="Decode and verify every checksum; write nothing.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing output files.")
@keep_option
@click.option("--rm", "remove", is_flag=True, help="Delete each .zl input after its output was written.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("-v", "--verbose", is_flag=True, help="Say what each file held.")
@click.option("--model", default=None, help="nn/lm: model to decode with, if not where the header says.")
@click.option("-T", "--workers", type=click.IntRange(1, 64), default=None,
              help="nn/ctx: worker processes (default: one per substream, at most one per CPU, as many as "
                   "the memory limit allows).")
@memory_limit_option
def decompress(files, to_stdout, output, test, force, keep, remove, quiet, verbose, model, workers, memory_limit):
    """Decompress FILE.zl files (codec and settings come from each header); -t only verifies,
    stopping at a file's first failing block."""
    files = _inputs(files)
    _check_outputs(files, output)
    options = CodingOptions(model=model, workers=workers, limits=default_limits(memory_limit))
    to_stdout = to_stdout or output == "-"

    def one(name: str) -> None:
        with open_input(name) as src:
            header = container.read_header(src)
            predictive = _is_predictive(header.codec)
            threshold = SLOW_CODEC_PROGRESS_BYTES if predictive else PROGRESS_MIN_BYTES
            with progress_bar(f"decompress {name}", header.original_size, quiet, threshold) as bar:
                report = with_checkpoint(bar)
                if test:
                    sink = _CrcSink()
                    container.decompress_file(src, sink, header=header, options=options, progress=report)
                    if verbose or not quiet:
                        click.echo(f"{name}: OK ({sink.size} bytes)", err=True)
                    return
                if to_stdout or (name == "-" and not output):
                    container.decompress_file(src, sys.stdout.buffer, header=header, options=options, progress=report)
                    sys.stdout.buffer.flush()
                    return
                target = Path(output) if output else _decompressed_name(name)
                with atomic_output(target, force, like=_regular(name)) as dst:
                    container.decompress_file(src, dst, header=header, options=options, progress=report)
        if verbose:
            click.echo(f"{name}: {header.codec} (format {header.version}) -> {target}", err=True)
        if remove and name != "-":
            Path(name).unlink()  # the output passed every block and file checksum on the way

    return _each_file(files, one)


def _printable(value: object) -> str:
    """Header text as data, never as terminal control sequences."""
    text = str(value)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _member_record(name: str, header, compressed: int, index: int) -> dict:
    ratio = header.original_size / compressed if compressed else 0.0
    bpb = 8 * compressed / header.original_size if header.original_size else 0.0
    return {"file": name, "member": index, "format_version": header.version, "codec": header.codec,
            "params": header.params, "original_bytes": header.original_size, "compressed_bytes": compressed,
            "block_size": header.block_size, "blocks": header.blocks, "crc32": f"{header.crc32:08x}",
            "ratio": round(ratio, 4), "bpb": round(bpb, 4),
            "decoding_memory_bytes": container.decoding_need(header).total(1)}


@click.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON list of members (keys documented in docs/cli.md).")
def info(files, as_json):
    """Show the header of .zl files (every member of a concatenated stream): codec, parameters,
    sizes, ratio and bpb."""
    records: list[dict] = []

    def one(name: str) -> None:
        with open_input(name) as src:
            found = [_member_record(name, h, n, i) for i, (h, n) in enumerate(container.members(src))]
        records.extend(found)
        if as_json:
            return
        for rec in found:
            member = f" (member {rec['member'] + 1} of {len(found)})" if len(found) > 1 else ""
            click.echo(f"{_printable(name)}{member}:")
            click.echo(f"  codec        {rec['codec']} (format {rec['format_version']})")
            for key, value in sorted(rec["params"].items()):
                click.echo(f"  {_printable(key):<12} {_printable(value)}")
            click.echo(f"  original     {rec['original_bytes']} bytes")
            click.echo(f"  blocks       {rec['blocks']} x {rec['block_size']} bytes")
            click.echo(f"  crc32        {rec['crc32']}")
            click.echo(f"  compressed   {rec['compressed_bytes']} bytes (ratio {rec['ratio']:.3f}, {rec['bpb']:.3f} bpb)")
            workers = _model_copies(registry.get(rec["codec"]), rec["params"])
            click.echo(f"  memory       {format_size(rec['decoding_memory_bytes'])} to decode{workers} "
                       f"(limit: --memory-limit)")

    code = _each_file(files, one)
    if as_json:
        import json

        click.echo(json.dumps(records, indent=2))
    return code


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON list of codecs.")
def codecs(as_json):
    """List the codecs, one line each."""
    rows = []
    for name in registry.names():
        try:
            impl = registry.get(name)
        except ImportError as exc:
            rows.append({"name": name, "available": False, "reason": str(exc)})
            continue
        rows.append({"name": name, "available": True, "summary": impl.summary, "levels": impl.levels,
                     "default_level": impl.default_level, "format_version": impl.format_version})
    if as_json:
        import json

        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        if not row["available"]:
            click.echo(f"{row['name']:<8} (unavailable: {row['reason']})")
            continue
        lv = row["levels"]
        levels = f"levels {lv[0]}-{lv[1]}, default {row['default_level']}" if lv else "no levels"
        click.echo(f"{row['name']:<8} {row['summary']} [{levels}]")
