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
from .joint import FORMS, LEGACY_RULE, R2_GATE, RULE, select_form
from .rates import expected_rate

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
    return list(dict.fromkeys(points))


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
    from .grid_report import split_by_recipe
    from .run import _locked, _write_json

    grid = Path(grid)
    if not (grid / "results.json").is_file():
        raise ParameterError(f"{grid} holds no grid results.json to predict from")
    results = _read(grid / "results.json", "runs", "grid results.json")
    if not isinstance(results.get("corpus_sha256"), str):
        raise ParameterError(f"{grid / 'results.json'} is not a grid results.json (no corpus_sha256)")
    path = grid / FILE
    if path.is_file():
        _read(path, "predictions", "predictions file")  # refuse before the fits, not after
    try:
        current, _ = split_by_recipe(results["runs"], results.get("tuning"))
        made = predict_points(current, points)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ParameterError(f"{grid / 'results.json'} holds a malformed run ({exc!r})") from None
    stamp = {"recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": _commit(),
             "corpus_sha256": results["corpus_sha256"]}
    # the rate the grid's rule gives the point now (None for a size not tuned yet): a run trained
    # later under another rule is another experiment, and the report does not compare the two
    entries = [{**p, "lr": expected_rate(results.get("tuning"), p["size"], p["budget"]), **stamp} for p in made]
    with _locked(grid):
        record = _read(path, "predictions", "predictions file") if path.is_file() else {"predictions": []}
        record["predictions"] += entries
        _write_json(path, record)
    return entries


def preregistered_section(record: dict, runs: list[dict], corpus_sha: str, tuning: dict | None = None) -> list[str]:
    """Report lines: each recorded prediction beside its run once measured (a prediction made for
    another corpus, an older recipe of the rung or another learning rate is marked, not compared).
    A prediction recorded before rates were recorded with it was made when every budget trained at
    the searched rate, so that is the rate it is held to."""
    from ..models.ladder import rung

    measured = {(r["size"], r["budget"]): r for r in runs}
    lines = ["", "## Predictions recorded before their runs were trained", "",
             "Written by `ziplab sweep --grid --predict SIZE@BYTES,...` with the law as it stood: the form chosen "
             "by the rule of the day over every run recorded then (what the report does once the new run is "
             "its top-compute run), fitted on all of them. Committed before the run trained. Rules: "
             f"*{LEGACY_RULE}* — the form with the smaller mean error predicting the three highest-compute "
             f"runs from all the others; *{RULE}* — the same, among the forms whose fit reaches R² ≥ "
             f"{R2_GATE} (adopted after the {LEGACY_RULE} rule's t5@90.5 MB miss; each entry is judged by "
             "the rule it was made under).", "",
             "| run | recorded | rule | fitted on | form (mean error chinchilla / kaplan; R², out: below the gate) | "
             "predicted | other form | measured | error |", "|---|---|---|---|---|---|---|---|---|"]
    for p in record.get("predictions", []):
        run = measured.get((p["size"], p["budget"]))
        other = ", ".join(f"{f} {v:.4f}" for f, v in p["forms"].items() if f != p["form"])
        chose = p["form"] + _selection_cell(p.get("selection", {}))
        if p.get("corpus_sha256") != corpus_sha:
            got, err = "another corpus", "–"
        elif p.get("recipe", rung(p["size"]).recipe) != rung(p["size"]).recipe:
            got, err = "older recipe", "–"
        elif run is None:
            got, err = "not yet trained", "–"
        elif (lr := _predicted_for(p, tuning)) is not None and lr != run["lr"]:
            got, err = f"{run['actual_bpb']:.4f} at lr {run['lr']:g}", f"– (predicted for lr {lr:g})"
        else:
            got, err = f"{run['actual_bpb']:.4f}", f"{p['predicted_bpb'] / run['actual_bpb'] - 1:+.2%}"
        lines.append(f"| {p['size']}@{p['budget']} | {p['recorded_at']} ({(p.get('commit') or '?')[:7]}) | "
                     f"{p.get('rule', LEGACY_RULE)} | {len(p['fitted_on'])} runs | {chose} | {p['predicted_bpb']:.4f} | {other} | {got} | {err} |")
    return lines


def _selection_cell(selection: dict) -> str:
    """` (1.20% / 0.80%; R² 0.926 out / 0.995)`: the mean errors, then the R² the gate saw, if any."""
    errors, r2 = selection.get("mean_abs_error", {}), selection.get("r2", {})
    parts = [" / ".join(_pct(errors.get(f)) for f in FORMS)] if errors else []
    if r2:
        eligible = selection.get("eligible", FORMS)
        parts.append("R² " + " / ".join("–" if f not in r2 else f"{r2[f]:.4f}" + ("" if f in eligible else " out")
                                        for f in FORMS))
    return f" ({'; '.join(parts)})" if parts else ""


def _predicted_for(prediction: dict, tuning: dict | None) -> float | None:
    """The rate a prediction was made for: recorded with it, or (written before rates were recorded,
    when every budget trained at the searched rate) the size's searched rate."""
    if "lr" in prediction:
        return prediction["lr"]
    entry = (tuning or {}).get(prediction["size"]) or {}
    return float(entry["chosen_lr"]) if "chosen_lr" in entry else None


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.2%}"
