"""Models trained on fresh text, scored like the (N, D) grid and held against its law (issue #28).

The grid trains on gutenberg/train.txt (26 MB): its larger budgets read the same books two or
three times, and its law's D counts bytes seen, repeated or not. The shipped models train on
gutenberg-large (318 MB, the same kind of books, none by a held-out author), where 70 MB is a
fifth of one pass: every byte is new. Each checkpoint given here is range-coded for real on the
grid's own evaluation slice (decoded back), and its family's law (fitted on the grid's runs as
`--predict` does) predicts it at its N and its bytes seen. Below the prediction: fresh bytes are
worth more than the law's repeated ones; above it: something else differs (the rate, the data).

    python benchmarks/grid_fresh.py ziplab/models/shipped/l5-gutenberg-large.safetensors [more.safetensors]

Writes <grid>/fresh.json (one row per checkpoint, earlier rows of other checkpoints kept) with the
provenance of the run; the grid report shows it.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]


def passes(train_bytes: float, corpus_bytes: int) -> float:
    """How many times over the training text a run read it (bytes seen / distinct bytes)."""
    return round(train_bytes / corpus_bytes, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--grid", default=str(ROOT / "docs" / "results" / "gutenberg-grid"))
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpora" / "gutenberg"),
                    help="the grid's corpus (its evaluation slice is coded)")
    args = ap.parse_args()

    from grid_common import open_grid

    from ziplab import provenance
    from ziplab.corpora import load_corpus
    from ziplab.models.checkpoint import read_meta
    from ziplab.sweep.preregister import predict_points
    from ziplab.sweep.rates import split_by_recipe
    from ziplab.sweep.run import code_for_real
    from ziplab.sweep.store import FRESH, write_json

    grid = Path(args.grid)
    results, corpus = open_grid(grid, args.corpus)
    data = corpus.heldout()[: results["eval_bytes"]]
    lanes = results["settings"]["lanes"]
    current, _ = split_by_recipe(results["runs"], results.get("tuning"))
    console = Console(width=150)
    sizes: dict[str, int] = {}
    rows = []
    for path in (Path(p) for p in args.checkpoints):
        meta = read_meta(path)
        train_corpus = meta["corpus"]
        if train_corpus not in sizes:  # the corpus as the run named it, from the folder it trained in
            found = Path(train_corpus) if Path(train_corpus).is_absolute() else ROOT / train_corpus
            sizes[train_corpus] = len(load_corpus(str(found)).train())
        [law] = predict_points(current, [(meta["size"], int(meta["bytes_seen"]))])
        coded = code_for_real(path, data, lanes, 1, meta["size"])
        same_size = [r for r in current if r["size"] == meta["size"]]
        nearest = max(same_size, key=lambda r: r["train_bytes"]) if same_size else None
        rows.append({"checkpoint": os.path.relpath(path.resolve(), ROOT), "size": meta["size"], "family": meta["family"],
                     "train_corpus": train_corpus, "train_corpus_bytes": sizes[train_corpus],
                     "train_bytes": meta["bytes_seen"], "passes": passes(meta["bytes_seen"], sizes[train_corpus]),
                     "lr": meta["lr"], "command": meta.get("command"), "non_embedding_params": meta["non_embedding_params"],
                     "law_form": law["form"], "predicted_bpb": law["predicted_bpb"], **coded,
                     "error": round(coded["actual_bpb"] / law["predicted_bpb"] - 1, 4),
                     "grid_run": None if nearest is None else {
                         "run": f"{nearest['size']}@{nearest['budget']}", "train_bytes": nearest["train_bytes"],
                         "passes": passes(nearest["train_bytes"], len(corpus.train())),
                         "actual_bpb": nearest["actual_bpb"]}})
        console.print(f"{path.name}: {coded['actual_bpb']:.4f} bpb coded, law {law['predicted_bpb']:.4f} "
                      f"({rows[-1]['error']:+.2%}); {rows[-1]['passes']} passes over {train_corpus}")
    out = grid / FRESH
    kept = [r for r in (json.loads(out.read_text())["runs"] if out.is_file() else [])
            if r["checkpoint"] not in {row["checkpoint"] for row in rows}]
    record = {"corpus_sha256": results["corpus_sha256"], "eval_bytes": len(data), "lanes": lanes,
              "grid_train_bytes": len(corpus.train()), "runs": kept + rows,
              "command": "python benchmarks/grid_fresh.py " + " ".join(args.checkpoints)}
    write_json(out, provenance.stamp(record))
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
