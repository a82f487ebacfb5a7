"""`ziplab` command line. Subcommands live in their own modules and are imported only when
invoked, so a plain `ziplab compress` starts without importing torch or matplotlib."""

from __future__ import annotations

import importlib
import sys

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


def main() -> None:
    """Entry point: ziplab errors become one line on stderr and exit code 1, never a traceback."""
    from ..errors import ZiplabError
    from .signals import Interrupted

    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("ziplab: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:  # usage errors: exit 2, like click itself
        exc.show()
        sys.exit(exc.exit_code)
    except ZiplabError as exc:
        click.echo(f"ziplab: error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("ziplab: interrupted", err=True)
        sys.exit(130)
    except Interrupted as exc:  # a signal, acted on at a safe point; partial outputs are gone
        click.echo(f"ziplab: interrupted ({exc.name})", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        name = f" {exc.filename}:" if getattr(exc, "filename", None) else ""
        click.echo(f"ziplab: error:{name} {exc.strerror or exc}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
