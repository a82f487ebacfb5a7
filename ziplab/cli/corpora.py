"""`ziplab corpora`: list the named corpora; `ziplab corpora fetch NAME`: download and verify one."""

from __future__ import annotations

import click


def _human(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON list of corpora.")
@click.pass_context
def corpora(ctx: click.Context, as_json: bool) -> None:
    """List corpora: name, size, whether it is available offline, and what it is."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console
    from rich.table import Table

    from ..corpora import REGISTRY, corpora_cache_dir

    if as_json:
        import json

        click.echo(json.dumps([{"name": e.name, "bytes": e.size(), "status": e.status(), "description": e.description}
                               for e in REGISTRY.values()], indent=2))
        return

    table = Table(title="ziplab corpora")
    for col in ("name", "size", "status", "description"):
        table.add_column(col, no_wrap=col != "description")
    for entry in REGISTRY.values():
        status = entry.status()
        style = "green" if status in ("built in", "cached") else "yellow"
        table.add_row(entry.name, _human(entry.size()), f"[{style}]{status}[/]", entry.description)
    console = Console()
    console.print(table)
    console.print(
        f"Also: any folder with train.txt + dev.txt (or test.txt), or any file (last 10% held out).\n"
        f"Downloads are cached in {corpora_cache_dir()}; get one with `ziplab corpora fetch NAME`."
    )


@corpora.command()
@click.argument("name")
@click.option("--mirror", metavar="URL", help="Folder URL serving NAME.zip (default: $ZIPLAB_MIRROR, else mattmahoney.net).")
def fetch(name: str, mirror: str | None) -> None:
    """Download, unzip and verify a standard corpus (resumes an interrupted download)."""
    from ..corpora import STANDARD, CorpusError, fetch as fetch_file

    if name not in STANDARD:
        raise CorpusError(f"{name!r} is not downloadable: choose one of {', '.join(STANDARD)}")
    path = fetch_file(STANDARD[name].spec, mirror=mirror)
    click.echo(f"{name}: verified, {path.stat().st_size:,} bytes at {path}")
