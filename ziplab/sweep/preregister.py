"""Predictions written down before the runs exist: the grid's law asked about runs not yet trained.

The report's headline test holds out a run that was already measured when the law's form was
chosen; a prediction recorded (and committed) before its run is trained cannot have been bent
toward it. The rule is the one the report will apply once the new run is its family's
highest-compute run: the form is chosen by `select_form` (R² gate, then the three-run rule; the
entry records which rule it was made under) over every run recorded now (the report
chooses over all runs but the held-out one — these same runs), then fitted on all of them. Each
asked (size, budget) gets the chosen form's prediction, the other form's, the selection's errors,
the time, the git commit, the rung's recipe and the runs it was fitted on. (Until then `fit.json`
holds out today's top run and may choose the other form: both are shown.)

The research protocol's top floor in ziplab (`grid_report.preregistered_section` shows the
entries; benchmarks/grid_rate_check.py and grid_largest.py are its other parts): it reads and
writes the grid folder through `store` and applies the rule in `rates` and `joint`.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..provenance import git_state
from ..provenance import stamp as stamp_provenance
from .joint import RULE, select_form
from .rates import expected_rate, split_by_recipe
from .store import PREREGISTERED, RESULTS, locked, write_json


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
    return list(dict.fromkeys(points))


def point_shape(size: str, budget: int) -> dict[str, Any]:
    """N (non-embedding, as the fit uses it) and the bytes the run will see (whole batches)."""
    from ..models.ladder import rung

    r = rung(size)
    per_step = r.batch * r.context
    return {"family": r.family, "non_embedding_params": r.build().non_embedding_params(),
            "train_bytes": -(-budget // per_step) * per_step}


def predict_points(runs: list[dict], points: list[tuple[str, int]]) -> list[dict]:
    """Each point predicted by its family's law over `runs` (see the module docstring for the rule)."""
    from ..models.ladder import rung

    out = []
    for size, budget in points:
        shape = point_shape(size, budget)
        fam = [r for r in runs if r["family"] == shape["family"]]
        if any(r["size"] == size and (r["budget"] == budget or r["train_bytes"] == shape["train_bytes"]) for r in fam):
            raise ParameterError(f"{size}@{budget} is already measured: nothing to predict")
        if len(fam) < 6:
            raise ParameterError(f"the {shape['family']} family has {len(fam)} runs; a law needs at least 6")
        n = np.array([r["non_embedding_params"] for r in fam], float)
        d = np.array([r["train_bytes"] for r in fam], float)
        y = np.array([r["actual_bpb"] for r in fam], float)
        selection = select_form(n, d, y, [r["flops"] for r in fam])
        preds = {form: round(float(f.predict(shape["non_embedding_params"], shape["train_bytes"])), 4)
                 for form, f in selection["fits"].items() if f is not None}
        chosen = selection["form"]
        if chosen not in preds:
            raise ParameterError(f"the {shape['family']} law could not be fitted")
        out.append({"size": size, "budget": budget, **shape, "recipe": rung(size).recipe, "rule": RULE, "form": chosen,
                    "predicted_bpb": preds[chosen], "forms": preds,
                    "selection": {"validation_runs": [f"{fam[i]['size']}@{fam[i]['budget']}"
                                                      for i in selection["validation_run_indices"]],
                                  "mean_abs_error": selection["mean_abs_error"], "r2": selection["r2"],
                                  "eligible": selection["eligible"]},
                    "fitted_on": sorted(f"{r['size']}@{r['budget']}" for r in fam)})
    return out


def _read(path: Path, key: str, what: str) -> dict:
    """A JSON object holding `key`, or a one-line error naming the file."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ParameterError(f"{path} is not a readable {what} ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise ParameterError(f"{path} is not a {what} (no {key!r} list)")
    return data


def preregister(grid: str | Path, points: list[tuple[str, int]]) -> list[dict]:
    """Append the points' predictions to `<grid>/preregistered.json` (earlier ones are never
    replaced: a second prediction of the same point is a new entry with its own time)."""
    grid = Path(grid)
    if not (grid / RESULTS).is_file():
        raise ParameterError(f"{grid} holds no grid results.json to predict from")
    results = _read(grid / RESULTS, "runs", "grid results.json")
    if not isinstance(results.get("corpus_sha256"), str):
        raise ParameterError(f"{grid / RESULTS} is not a grid results.json (no corpus_sha256)")
    path = grid / PREREGISTERED
    if path.is_file():
        _read(path, "predictions", "predictions file")  # refuse before the fits, not after
    try:
        current, _ = split_by_recipe(results["runs"], results.get("tuning"))
        made = predict_points(current, points)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ParameterError(f"{grid / RESULTS} holds a malformed run ({exc!r})") from None
    stamp = {"recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": git_state()[0],
             "corpus_sha256": results["corpus_sha256"]}
    # the rate the grid's rule gives the point now (None for a size not tuned yet): a run trained
    # later under another rule is another experiment, and the report does not compare the two
    entries = [{**p, "lr": expected_rate(results.get("tuning"), p["size"], p["budget"]), **stamp} for p in made]
    with locked(grid):
        record = _read(path, "predictions", "predictions file") if path.is_file() else {"predictions": []}
        record["predictions"] += entries
        write_json(path, stamp_provenance(record))
    return entries
