"""Predictions written down before the runs exist: the grid's law asked about runs not yet trained.

The report's headline test holds out a run that was already measured when the law's form was
chosen; a prediction recorded (and committed) before its run is trained cannot have been bent
toward it. `preregister` applies the report's own procedure to the runs recorded now — the form
chosen by `select_form` over all of them, that form fitted on all of them — and writes, per asked
(size, budget), the chosen form's prediction and the other form's, with the time, the git commit
and the runs it was fitted on. The report then sets each beside its measured run once it exists.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ParameterError
from .joint import FORMS, fit_joint, select_form

FILE = "preregistered.json"


def parse_points(text: str) -> list[tuple[str, int]]:
    """`t5@64e6,l5@16e6` → [("t5", 64000000), ("l5", 16000000)]."""
    from ..models.ladder import rung

    points = []
    for item in (p.strip() for p in text.split(",") if p.strip()):
        size, sep, budget = item.partition("@")
        try:
            value = float(budget)
        except ValueError:
            value = math.nan
        if not sep or not math.isfinite(value) or not 4096 <= value <= 1e13:
            raise ParameterError(f"a prediction point is SIZE@BYTES (e.g. t5@64e6), not {item!r}")
        rung(size)
        points.append((size, int(value)))
    if not points:
        raise ParameterError("no prediction points given")
    return points


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def point_shape(size: str, budget: int) -> dict[str, Any]:
    """N (non-embedding, as the fit uses it) and the bytes the run will see (whole batches)."""
    from ..models.ladder import rung

    r = rung(size)
    per_step = r.batch * r.context
    return {"family": r.family, "non_embedding_params": r.build().non_embedding_params(),
            "train_bytes": -(-budget // per_step) * per_step}


def predict_points(runs: list[dict], points: list[tuple[str, int]]) -> list[dict]:
    """Each point predicted by its family's law over `runs` (the report's form choice)."""
    out = []
    for size, budget in points:
        shape = point_shape(size, budget)
        fam = [r for r in runs if r["family"] == shape["family"]]
        if any((r["size"], r["budget"]) == (size, budget) for r in fam):
            raise ParameterError(f"{size}@{budget} is already measured: nothing to predict")
        if len(fam) < 6:
            raise ParameterError(f"the {shape['family']} family has {len(fam)} runs; a law needs at least 6")
        n = np.array([r["non_embedding_params"] for r in fam], float)
        d = np.array([r["train_bytes"] for r in fam], float)
        y = np.array([r["actual_bpb"] for r in fam], float)
        chosen = select_form(n, d, y, [r["flops"] for r in fam])["form"]
        fits = {form: fit_joint(n, d, y, form=form) for form in FORMS}
        preds = {form: round(float(f.predict(shape["non_embedding_params"], shape["train_bytes"])), 4)
                 for form, f in fits.items() if f is not None}
        if chosen not in preds:
            raise ParameterError(f"the {shape['family']} law could not be fitted")
        out.append({"size": size, "budget": budget, **shape, "form": chosen, "predicted_bpb": preds[chosen],
                    "forms": preds, "fitted_on": sorted(f"{r['size']}@{r['budget']}" for r in fam)})
    return out


def preregister(grid: str | Path, points: list[tuple[str, int]]) -> list[dict]:
    """Append the points' predictions to `<grid>/preregistered.json` (earlier ones are never
    replaced: a second prediction of the same point is a new entry with its own time)."""
    from .grid_report import split_by_recipe

    grid = Path(grid)
    if not (grid / "results.json").is_file():
        raise ParameterError(f"{grid} holds no grid results.json to predict from")
    results = json.loads((grid / "results.json").read_text())
    current, _ = split_by_recipe(results.get("runs", []), results.get("tuning"))
    stamp = {"recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": _commit(),
             "corpus_sha256": results["corpus_sha256"]}
    entries = [{**p, **stamp} for p in predict_points(current, points)]
    path = grid / FILE
    record = json.loads(path.read_text()) if path.is_file() else {"predictions": []}
    record["predictions"] += entries
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)
    return entries


def preregistered_section(record: dict, runs: list[dict]) -> list[str]:
    """Report lines: each recorded prediction beside its run once measured."""
    measured = {(r["size"], r["budget"]): r for r in runs}
    lines = ["", "## Predictions recorded before their runs were trained", "",
             "Written by `ziplab sweep --grid --predict SIZE@BYTES,...` with the law as it stood (form chosen "
             "the report's way, fitted on every run recorded then), and committed before the run finished.", "",
             "| run | recorded | fitted on | form | predicted | other form | measured | error |",
             "|---|---|---|---|---|---|---|---|"]
    for p in record.get("predictions", []):
        run = measured.get((p["size"], p["budget"]))
        other = ", ".join(f"{f} {v:.4f}" for f, v in p["forms"].items() if f != p["form"])
        got = "not yet trained" if run is None else f"{run['actual_bpb']:.4f}"
        err = "–" if run is None else f"{p['predicted_bpb'] / run['actual_bpb'] - 1:+.2%}"
        lines.append(f"| {p['size']}@{p['budget']} | {p['recorded_at']} ({(p.get('commit') or '?')[:7]}) | "
                     f"{len(p['fitted_on'])} runs | {p['form']} | {p['predicted_bpb']:.4f} | {other} | {got} | {err} |")
    return lines
