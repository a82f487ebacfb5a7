"""`ziplab models`: the size ladder, which rungs have trained checkpoints, and the shipped default."""

from __future__ import annotations

import click


def _fmt(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}K"


def _shape(family: str, cfg: dict) -> str:
    if family == "lstm":
        return f"{cfg['n_layer']}x{cfg['n_hidden']}"
    return f"{cfg['n_layer']}x{cfg['n_embd']}/{cfg['n_head']}h"


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def models(as_json: bool) -> None:
    """List the model size ladder and trained checkpoints."""
    import json

    from rich.console import Console
    from rich.table import Table

    from ..models.checkpoint import list_checkpoints, models_dir, read_meta, shipped_path
    from ..models.ladder import LADDER

    rows = []
    for size, r in LADDER.items():
        m = r.build()
        found = list_checkpoints(size)
        meta = read_meta(found[0]) if found else {}
        rows.append({
            "size": size, "family": r.family, "shape": _shape(r.family, r.config), "context": r.context,
            "params": m.num_params(), "non_embedding": m.non_embedding_params(), "lr": r.lr, "batch": r.batch,
            "checkpoint": str(found[0]) if found else None, "heldout_bpb": meta.get("final_heldout_bpb"),
        })
    shipped = shipped_path()
    ship_meta = read_meta(shipped) if shipped else {}
    if as_json:
        click.echo(json.dumps({"ladder": rows, "shipped": str(shipped) if shipped else None,
                               "shipped_meta": ship_meta}, indent=2))
        return
    table = Table(title="model ladder", caption=f"checkpoints: {models_dir()}; bpb = held-out bits per byte")
    for col in ("size", "family", "shape", "T", "params", "non-emb", "lr", "batch", "trained", "bpb"):
        table.add_column(col, no_wrap=True, justify="left" if col in ("size", "family", "shape", "trained") else "right")
    for row in rows:
        table.add_row(
            row["size"], row["family"], row["shape"], str(row["context"]), _fmt(row["params"]),
            _fmt(row["non_embedding"]), f"{row['lr']:g}", str(row["batch"]),
            "yes" if row["checkpoint"] else "-", f"{row['heldout_bpb']:.4f}" if row["heldout_bpb"] else "-",
        )
    console = Console()
    if not console.is_terminal:  # pipes and logs: don't squeeze the table into 80 columns
        console = Console(width=120)
    console.print(table)
    if shipped:
        bpb = ship_meta.get("final_heldout_bpb")
        console.print(f"shipped default: {ship_meta.get('size')} ({ship_meta.get('family')}) {shipped.name}, "
                      f"held-out bpb {bpb} on {ship_meta.get('corpus')}")
    else:
        console.print("shipped default: none in this installation (train one with `ziplab train`)")
