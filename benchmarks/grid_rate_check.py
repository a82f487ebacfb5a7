"""Is the rate chosen at the smallest budget still right at a large one? (issue #12's recipe check)

The grid tunes each size's learning rate at its smallest budget (1 MB: ~250 optimiser steps for a
transformer), then trains every larger budget at that rate. Short runs favour high rates, so the
rate may be too high for the largest runs, which would bend the law at exactly the runs it is asked
to predict. This trains one (size, budget) point again at the tuned rate times each factor and
scores it like the grid does: validation bpb on the slice the tuning used, and bytes range-coded
for real on the grid's evaluation slice. Nothing here enters the fit.

    python benchmarks/grid_rate_check.py --size t5 --budget 22600000 --factors 0.5 [--threads 1]

The best rate is located between the rates tried (parabola in log rate through the best and its
neighbours, `ziplab.sweep.rates.rate_optimum`), and the exponent g that carries the size's chosen
rate there, chosen x (D / D_search)^-g, is reported (a bound when the best is an edge of the rates
tried): the measured input of `--lr-horizon`.

Resumable (training states are saved like the grid's); writes <grid>/rate_check.json and prints a
table beside the grid's own run at the tuned rate.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", default=str(ROOT / "docs" / "results" / "gutenberg-grid"))
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpora" / "gutenberg"))
    ap.add_argument("--size", required=True)
    ap.add_argument("--budget", type=int, required=True, help="a budget the grid has run for this size")
    ap.add_argument("--factors", default="0.5", help="comma-separated multiples of the tuned rate")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    from ziplab import provenance
    from ziplab.sweep.grid import Grid, GridSettings
    from ziplab.sweep.rates import split_by_recipe
    from ziplab.sweep.run import code_for_real
    from ziplab.sweep.store import RATE_CHECK, write_json

    try:
        factors = [float(f) for f in args.factors.split(",")]
    except ValueError:
        raise SystemExit(f"--factors takes comma-separated numbers, not {args.factors!r}") from None
    if any(not 0 < f < 100 for f in factors):
        raise SystemExit("--factors must lie between 0 and 100")

    grid_dir = Path(args.grid)
    results = json.loads((grid_dir / "results.json").read_text())
    from ziplab.sweep.rates import expected_rate, implied_horizon, rate_optimum

    tuned = expected_rate(results["tuning"], args.size, args.budget)
    if tuned is None:
        raise SystemExit(f"the grid has not tuned {args.size}")
    if args.budget <= results["tuning"][args.size]["budget"]:
        raise SystemExit(f"--budget must exceed the budget {args.size}'s rate was searched at "
                         f"({results['tuning'][args.size]['budget']:,})")
    current, _ = split_by_recipe(results["runs"], results["tuning"])
    base = next((r for r in current if (r["size"], r["budget"]) == (args.size, args.budget)), None)
    if base is None:
        raise SystemExit(f"the grid has no {args.size}@{args.budget} run at its tuned rate {tuned:g}")
    known = {k: v for k, v in results["settings"].items() if k in GridSettings.__dataclass_fields__}
    settings = GridSettings(**{**known, "sizes": (args.size,), "budgets": tuple(known["budgets"]),
                               "lr_factors": tuple(known["lr_factors"]), "corpus": args.corpus,
                               "out": str(grid_dir), "threads": args.threads})
    grid = Grid(settings)
    if grid.corpus.sha256 != results["corpus_sha256"]:
        raise SystemExit(f"{args.corpus} is not the corpus the grid trained on")

    console = Console(width=140)
    rows = [{"lr": tuned, "factor": 1.0, "checkpoint": base["checkpoint"],
             "validation_bpb": grid.validation_bpb(grid_dir / "checkpoints" / base["checkpoint"]),
             "actual_bpb": base["actual_bpb"], "cross_entropy_bpb": base["cross_entropy_bpb"],
             "train_seconds": base["train_seconds"]}]
    for factor in (f for f in factors if f != 1.0):  # the tuned rate's run is the grid's own
        lr = float(f"{tuned * factor:.3g}")  # the horizon rule's rounding, so the grid can reuse the run
        path, meta = grid.train(args.size, lr, args.budget)
        coded = code_for_real(path, grid.eval, settings.lanes, 1, f"{args.size} lr {lr:g}")
        rows.append({"lr": lr, "factor": factor, "checkpoint": path.name,
                     "validation_bpb": grid.validation_bpb(path), "actual_bpb": coded["actual_bpb"],
                     "cross_entropy_bpb": coded["cross_entropy_bpb"], "train_seconds": meta["train_seconds"]})
        console.print(f"{args.size}@{args.budget:,} lr {lr:g}: {coded['actual_bpb']:.4f} bpb")

    entry = results["tuning"][args.size]
    search_best, search_inside = rate_optimum({float(k): v for k, v in entry["validation_bpb"].items()})
    best, inside = rate_optimum({r["lr"]: r["validation_bpb"] for r in rows})
    # the rule carries the *chosen* rate, so the exponent is measured from it; an edge optimum bounds it
    bound = "=" if inside else ("≥" if best == min(r["lr"] for r in rows) else "≤")
    horizon = {"search_optimum": round(search_best, 6), "search_optimum_interior": search_inside,
               "optimum": round(best, 6), "optimum_interior": inside, "implied_horizon_bound": bound,
               "implied_horizon": round(implied_horizon(float(entry["chosen_lr"]), entry["budget"], best,
                                                        args.budget), 3)}
    console.print(f"best rate at {args.budget:,} B ~{best:.3g}{'' if inside else ' (an edge of those tried)'}; "
                  f"from the chosen {float(entry['chosen_lr']):.3g} at {entry['budget']:,} B that is a horizon "
                  f"exponent {bound} {horizon['implied_horizon']}")

    path = grid_dir / RATE_CHECK
    prov = provenance.record()
    record = json.loads(path.read_text()) if path.is_file() else {"checks": []}
    record["checks"] = [c for c in record["checks"] if (c["size"], c["budget"]) != (args.size, args.budget)]
    record["checks"].append({
        "size": args.size, "budget": args.budget, "tuned_lr": tuned,
        "tuned_at_budget": results["tuning"][args.size]["budget"], "runs": rows,
        "best_lr": min(rows, key=lambda r: r["validation_bpb"])["lr"], **horizon,
        "provenance": prov,
        "command": f"python benchmarks/grid_rate_check.py --grid {os.path.relpath(grid_dir, ROOT)} --size "
                   f"{args.size} --budget {args.budget} --factors {args.factors}"})
    write_json(path, provenance.stamp(record, prov))

    table = Table(title=f"{args.size}@{args.budget / 1e6:g} MB: the tuned rate (chosen at "
                        f"{results['tuning'][args.size]['budget'] / 1e6:g} MB) against others")
    for col in ("lr", "× tuned", "validation bpb", "grid slice bpb (coded)", "train s"):
        table.add_column(col, justify="right")
    for r in sorted(rows, key=lambda r: r["lr"]):
        table.add_row(f"{r['lr']:g}", f"{r['factor']:g}", f"{r['validation_bpb']:.4f}", f"{r['actual_bpb']:.4f}",
                      f"{r['train_seconds']:.0f}")
    console.print(table)
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
