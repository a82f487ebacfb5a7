"""`ziplab models`: the size ladder, which rungs have trained checkpoints, and the shipped models
(with the size, speed and bpb that benchmarks/results/mix.json measured, from the package's
shipped/index.json)."""

from __future__ import annotations

from pathlib import Path

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

    from ..models.checkpoint import list_checkpoints, models_dir, read_meta, shipped_index, shipped_path
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
    index = shipped_index()
    if as_json:
        click.echo(json.dumps({"ladder": rows, "shipped": str(shipped) if shipped else None,
                               "shipped_meta": ship_meta, "shipped_models": index}, indent=2))
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
    if index.get("models"):
        console.print(_shipped_table(index))
    if shipped:
        bpb = ship_meta.get("final_heldout_bpb")
        console.print(f"shipped default: {ship_meta.get('size')} ({ship_meta.get('family')}) {shipped.name}, "
                      f"held-out bpb {bpb} on {ship_meta.get('corpus')}")
    else:
        console.print("shipped default: none in this installation (train one with `ziplab train`)")


def _shipped_table(index: dict):
    """One row per shipped model: what it is, what it was trained on, and its measured figures."""
    from rich.table import Table

    from ..codecs.mix import LEVELS

    table = Table(title="shipped models", caption=f"measured on {index.get('slice', '?')}; "
                  "KB/s encode / decode in one process (benchmarks/results/mix.json)")
    for col in ("name", "model", "params", "file MB", "sha256", "trained on", "nn bpb", "nn KB/s", "mix levels",
                "mix bpb", "mix KB/s"):
        table.add_column(col, no_wrap=True, justify="left" if col in ("name", "model", "sha256", "trained on",
                                                                      "mix levels") else "right")
    for name, m in index["models"].items():
        measured = m.get("measured", {})
        nn = measured.get("nn", {})
        levels = [lv for lv, row in LEVELS.items() if name in row.models]
        alone = [lv for lv in levels if LEVELS[lv].models == (name,)]
        mixed = measured.get(f"mix-{alone[0]}", {}) if alone else {}
        table.add_row(
            name, f"{m['size']} ({m['family']})", _fmt(m["num_params"]), f"{m['bytes'] / 1e6:.1f}", m["sha256"][:12],
            f"{m['bytes_seen'] / 1e6:.0f} MB of {Path(str(m['corpus'])).name}",
            f"{nn['bpb']:.4f}" if nn else "-", f"{nn['enc_kbs']:.0f} / {nn['dec_kbs']:.0f}" if nn else "-",
            ", ".join(f"-{lv}" for lv in levels) or "-",
            f"{mixed['bpb']:.4f} (-{alone[0]})" if mixed else "-",
            f"{mixed['enc_kbs']:.0f} / {mixed['dec_kbs']:.0f}" if mixed else "-",
        )
    return table
