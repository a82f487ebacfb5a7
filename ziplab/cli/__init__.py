"""`ziplab` command line. Subcommands live in their own modules and are imported only when
invoked, so a plain `ziplab compress` starts without importing torch or matplotlib."""

from __future__ import annotations

import importlib
import sys
from typing import NoReturn

import click

# command name -> ("module:attribute", one-line help shown by `ziplab --help` without importing)
COMMANDS: dict[str, tuple[str, str]] = {
    "compress": ("ziplab.cli.coding:compress", "Compress files to FILE.zl (like gzip -k)."),
    "decompress": ("ziplab.cli.coding:decompress", "Decompress .zl files."),
    "info": ("ziplab.cli.coding:info", "Show a .zl file's header: codec, sizes, ratio, bpb."),
    "codecs": ("ziplab.cli.coding:codecs", "List the codecs."),
    "bench": ("ziplab.cli.bench:bench", "Benchmark codecs side by side with zlib, xz, zstd..."),
    "models": ("ziplab.cli.models:models", "List the model size ladder and trained checkpoints."),
    "train": ("ziplab.cli.train:train", "Train a byte-level predictor on a corpus."),
    "corpora": ("ziplab.cli.corpora:corpora", "List corpora; fetch the standard ones."),
    "sweep": ("ziplab.cli.sweep:sweep", "Train the size ladder and plot bpb against model size."),
    "score": ("ziplab.cli.score:score", "Bits per byte of any model (hf:DIR too) on a text, by cross-entropy."),
    "export": ("ziplab.cli.export:export", "Write a lab transformer as a Hugging Face model directory."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, text) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ziplab")
def cli() -> None:
    """ziplab: compression as intelligence. Classic coders, neural range coding, bpb curves."""


#: single-letter flags that may be bundled gzip-style (-dc, -9v, -kf)
_BUNDLABLE = set("dctlkfqv123456789")
_ROUTES = {"-d": "decompress", "--decompress": "decompress", "--uncompress": "decompress",
           "-t": "test", "--test": "test", "-l": "info", "--list": "info"}


def gzip_style(argv: list[str]) -> list[str]:
    """`ziplab FILE...`, `ziplab -d FILE.zl`, `ziplab -t`, `ziplab -l`, `-1`...`-9`, bundled short
    flags: rewritten into the subcommands, so gzip/zstd habits work. Subcommands are unchanged."""
    if argv and (argv[0] in COMMANDS or argv[0] in ("-h", "--help", "--version")):
        if argv[0] == "compress":
            return ["compress", *_levels(argv[1:])]
        return argv
    if not argv:  # `cat f | ziplab > f.zl`, like gzip; on a terminal, the help
        return ["compress"] if not sys.stdin.isatty() else argv
    _check_typo(argv[0])
    flags: list[str] = []
    for arg in argv:
        if arg == "--":
            flags.append(arg)
            continue
        if len(arg) > 2 and arg[0] == "-" and arg[1] != "-" and set(arg[1:]) <= _BUNDLABLE:
            flags += [f"-{c}" for c in arg[1:]]
        else:
            flags.append(arg)
    route = "compress"
    rest = []
    for i, arg in enumerate(flags):
        level_follows = arg == "-l" and i + 1 < len(flags) and flags[i + 1].isdigit()  # old habit: -l 9
        if arg in _ROUTES and route == "compress" and not level_follows:
            route = _ROUTES[arg]
        else:
            rest.append(arg)
    if route == "test":
        return ["decompress", "--test", *rest]
    if route == "compress":
        return ["compress", *_levels(rest)]
    return [route, *rest]


def _check_typo(first: str) -> None:
    """`ziplab compres f` would compress files "compres" and "f": say what was meant instead."""
    import difflib
    import os

    if first.startswith("-") or os.path.exists(first):
        return
    close = difflib.get_close_matches(first, list(COMMANDS), n=1, cutoff=0.75)
    if close:
        raise click.UsageError(f"no such command or file {first!r} (did you mean `ziplab {close[0]}`?)")


def _levels(args: list[str]) -> list[str]:
    """-1 ... -9 -> --level N (before a lone --, after which everything is a file name)."""
    out, files_only = [], False
    for arg in args:
        if arg == "--":
            files_only = True
        if not files_only and len(arg) == 2 and arg[0] == "-" and arg[1] in "123456789":
            out += ["--level", arg[1]]
        else:
            out.append(arg)
    return out


#: commands whose every output is closed before they return (atomic renames, stdout): they may
#: leave without the interpreter's teardown (`leave`)
QUICK_EXIT = ("compress", "decompress", "info")


def main() -> None:
    """Entry point: ziplab errors become one line on stderr and exit code 1, never a traceback."""
    try:
        args = gzip_style(sys.argv[1:])
    except click.UsageError as exc:  # a mistyped command: exit 2, like click's usage errors
        exc.show()
        sys.exit(exc.exit_code)
    code = run(args)
    if args and args[0] in QUICK_EXIT:
        leave(code)
    sys.exit(code)


def run(args: list[str]) -> int:
    """The exit code of the subcommand line `args` (`gzip_style`'s); ziplab errors, usage errors
    and signals as one line each."""
    from ..hardware import one_blas_thread, tune_heap

    one_blas_thread()  # before anything loads numpy
    from ..errors import ZiplabError
    from .signals import Interrupted

    tune_heap()  # block buffers go back to the system when freed (memory O(block)); step temporaries stay
    try:
        code = cli.main(args=args, prog_name="ziplab", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("ziplab: aborted", err=True)
        return 1
    except click.ClickException as exc:  # usage errors: exit 2, like click itself
        exc.show()
        return exc.exit_code
    except ZiplabError as exc:
        click.echo(f"ziplab: error: {exc}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("ziplab: interrupted", err=True)
        return 130
    except Interrupted as exc:  # a signal, acted on at a safe point; partial outputs are gone
        click.echo(f"ziplab: interrupted ({exc.name})", err=True)
        return exc.exit_code
    except OSError as exc:
        name = f" {exc.filename}:" if getattr(exc, "filename", None) else ""
        click.echo(f"ziplab: error:{name} {exc.strerror or exc}", err=True)
        return 1
    return code if isinstance(code, int) else 0


def leave(code: int) -> NoReturn:
    """Exit with `code` without tearing the interpreter down: with torch and numba loaded, the
    teardown (a garbage collection over every object, then every module) took ~0.4 s after the
    work was done (measured on 1 MiB nn). The atexit handlers still run (worker pools stop) and
    standard streams are flushed; only `QUICK_EXIT` commands come here, whose files are closed
    by then. Another thread still running (none does after them) gets the usual exit instead."""
    import atexit
    import os
    import threading

    if threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (| head) or a closed stream: nothing to flush to
            code = code or 1
    os._exit(code)
