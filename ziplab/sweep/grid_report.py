"""fit.json and report.md of an (N, D) grid folder (its plots are drawn by grid_plot.py), with the
sections read from the side files the research protocol writes beside results.json (predictions,
rate checks, the largest runs on a longer slice). It reads them; it never imports what writes them.

fit.json, per family: {"n_runs", "form", "E", "A", "alpha", "B", "beta", "r2", "ci": {"E", "alpha", "beta"},
"selection": {...}, "forms": {form: {"r2", "E", "alpha", "beta", "predicted_bpb", "error"}},
"prediction": {"held_out_runs", "form", "predicted_bpb", "measured_bpb", "error"}, "frontier": {...},
"model_cost": [...]}, and beside the families the "provenance" of the process that fitted them.
The prediction fits every run but the family's highest-compute one and predicts that one: the
number that says whether the law is worth anything. The law's form is chosen before, on the other
runs only.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..provenance import stamp, summary
from .grid_plot import FILE_SIZES, plot_grid
from .joint import (FORMS, LEGACY_RULE, bootstrap, fit_joint, frontier_exponents, model_cost, select_form,
                    total_param_law, R2_GATE, RULE, VALIDATION_RUNS)
from .rates import split_by_recipe
from .store import FRESH, LARGEST, PREREGISTERED, RATE_CHECK

#: `baselines(..., codecs=("mix",))`'s name for pure context mixing (`mix --model none`, default level)
MIX_ALONE = "mix-2"


def _columns(runs: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.array([r["non_embedding_params"] for r in runs], float),
            np.array([r["train_bytes"] for r in runs], float),
            np.array([r["actual_bpb"] for r in runs], float))


def family_summary(runs: list[dict]) -> dict[str, Any]:
    """Joint fit, bootstrap intervals, held-out prediction, frontier and model cost for one family.

    The highest-compute run is held out for the prediction. The law's form is chosen before that,
    on the other runs alone (`select_form`: which form best predicts *their* few highest-compute
    runs, each from all the rest), and both forms' fits and predictions are reported beside the
    chosen one."""
    note = {"n_runs": len(runs), "note": "needs >= 6 runs over >= 2 sizes and >= 2 budgets"}
    if len(runs) < 6:
        return note
    n, d, y = _columns(runs)
    compute = np.array([r["flops"] for r in runs], float)
    top = int(np.argmax(compute))
    rest = [i for i in range(len(runs)) if i != top]
    selection = select_form(n[rest], d[rest], y[rest], compute[rest])
    full = {form: fit_joint(n, d, y, form=form) for form in FORMS}
    partial = selection["fits"]
    fit = full[selection["form"]]
    if fit is None:
        return note
    out: dict[str, Any] = {**{k: round(v, 6) if isinstance(v, float) else v for k, v in fit.to_dict().items()},
                           "ci": bootstrap(n, d, y, fit)}
    out["selection"] = {"label": RULE, "rule": f"among the forms whose fit reaches R² >= {R2_GATE} (all when none does), the "
                                f"one with the smaller mean error predicting each of the {VALIDATION_RUNS} "
                                "highest-compute runs from all the others (the held-out run never takes part)",
                        "r2": selection["r2"], "eligible": selection["eligible"],
                        "validation_runs": [f"{runs[rest[i]]['size']}@{runs[rest[i]]['budget']}"
                                            for i in selection["validation_run_indices"]],
                        "validation_errors": selection["errors"], "mean_abs_error": selection["mean_abs_error"],
                        "default": selection["default"]}
    held = f"{runs[top]['size']}@{runs[top]['budget']}"
    out["forms"] = {}
    for form in FORMS:
        if full[form] is None or partial[form] is None:
            continue
        pred = float(partial[form].predict(n[top], d[top]))
        out["forms"][form] = {"r2": round(full[form].r2, 6), "E": round(full[form].E, 6),
                              "alpha": round(full[form].alpha, 6), "beta": round(full[form].beta, 6),
                              "predicted_bpb": round(pred, 4), "error": round(float(pred / y[top] - 1), 4)}
    if selection["form"] in out["forms"]:
        chosen = out["forms"][selection["form"]]
        out["prediction"] = {"held_out_runs": [held], "fitted_on": len(rest), "form": selection["form"],
                             "predicted_bpb": chosen["predicted_bpb"], "measured_bpb": round(float(y[top]), 4),
                             "error": chosen["error"]}
    flops = np.array([r["flops_6nd"] for r in runs])
    compute = np.geomspace(flops.min(), flops.max() * 100, 12)
    out["frontier"] = {"compute_range": [float(compute[0]), float(compute[-1])], **frontier_exponents(fit, compute),
                       "chinchilla": {"a": 0.5, "b": 0.5}}
    law = total_param_law(n, [r["params"] for r in runs])
    d_max = float(d.max())
    out["model_cost"] = [{**model_cost(fit, law, s, d_max), "train_bytes": d_max} for s in FILE_SIZES]
    out["model_cost"] += [{**model_cost(fit, law, s, np.inf), "train_bytes": None} for s in FILE_SIZES]
    out["total_param_law"] = {"c": law[0], "k": law[1]}
    return out


def write_grid_report(results: dict, out: Path) -> dict:
    """Fits, plots and report over the runs trained with the ladder's current recipes; runs of an
    older recipe stay in results.json (a grid with their budget measures them again) but are
    listed apart and fitted with nothing."""
    current, stale = split_by_recipe(results.get("runs", []), results.get("tuning"))
    results = {**results, "runs": current}
    families = sorted({r["family"] for r in current})
    fits = {f: family_summary([r for r in current if r["family"] == f]) for f in families}
    (out / "fit.json").write_text(json.dumps(stamp({**fits}), indent=2, default=float))
    plots = plot_grid(results, fits, out)
    lines = _report(results, fits, plots)
    sha = results["corpus_sha256"]
    lines += side_lines(out / LARGEST, lambda r: largest_section(r, current, sha, rate_checks(out)))
    lines += side_lines(out / PREREGISTERED, lambda r: preregistered_section(r, current, sha, results.get("tuning")))
    lines += side_lines(out / RATE_CHECK, rate_check_section)
    lines += side_lines(out / FRESH, lambda r: fresh_section(r, current, sha))
    if stale:
        lines += ["", "## Runs of an older recipe or rate rule (kept in results.json, not fitted or plotted)", "",
                  ", ".join(f"{r['size']}@{r['budget']} ({r['actual_bpb']:.4f})" for r in stale)]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return {"fits": fits}


def rate_checks(out: Path) -> list[dict]:
    """rate_check.json's checks (none when absent; an unreadable file turns each section that reads
    it into a note)."""
    path = out / RATE_CHECK
    return json.loads(path.read_text())["checks"] if path.is_file() else []


def side_lines(path: Path, render: Any) -> list[str]:
    """A section from a side file the benchmarks or `--predict` wrote; one that cannot be read or
    rendered becomes a one-line note instead of failing the report (results.json is already safe)."""
    if not path.is_file():
        return []
    try:
        return render(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, StopIteration) as exc:
        return ["", f"{path.name} could not be read or shown ({exc.__class__.__name__}: {exc}); it is left out."]


def largest_runs(runs: list[dict]) -> dict[str, dict]:
    """The highest-compute run of each family."""
    best: dict[str, dict] = {}
    for r in runs:
        if r["family"] not in best or r["flops"] > best[r["family"]]["flops"]:
            best[r["family"]] = r
    return best


def rate_checked(run: dict, checks: list[dict]) -> dict:
    """`run`, or where benchmarks/grid_rate_check.py trained the same (size, budget) at other rates
    (a check holding `run` among its runs), the one of them with the best validation bpb: the
    grid's own choice rule (validation slice, never the evaluation slice) applied at that budget.
    The returned record keeps the grid run's checkpoint as `grid_checkpoint` and says where its
    rate came from ("grid" when the grid's own run wins or nothing was checked)."""
    check = next((c for c in checks if (c["size"], c["budget"]) == (run["size"], run["budget"])
                  and any(r["checkpoint"] == run["checkpoint"] for r in c["runs"])), None)
    scored = [r for r in (check or {}).get("runs", []) if math.isfinite(r["validation_bpb"])]
    best = min(scored, key=lambda r: r["validation_bpb"]) if scored else None
    if best is None or best["checkpoint"] == run["checkpoint"]:
        return {**run, "grid_checkpoint": run["checkpoint"], "rate_source": "grid"}
    source = f"best validation bpb of {len(scored)} rates (grid + rate check)"
    return {**run, "grid_checkpoint": run["checkpoint"], "rate_source": source,
            **{k: best[k] for k in ("checkpoint", "lr", "actual_bpb", "cross_entropy_bpb", "train_seconds")}}


def largest_section(longer: dict, current: list[dict], corpus_sha: str, checks: list[dict] | None = None) -> list[str]:
    """benchmarks/grid_largest.py's record: the largest runs coded on a longer slice beside PPMd.
    A row whose run is no longer the one the benchmark would code (another largest run, or a rate
    check that now prefers another rate) is marked stale (re-run the benchmark)."""
    top = {f: rate_checked(r, checks or []) for f, r in largest_runs(current).items()}
    peer = longer["peer"]
    if longer.get("corpus_sha256") != corpus_sha:
        return ["", "## Largest runs on a longer slice", "", "largest.json was measured on another corpus: re-run "
                f"`{longer.get('command')}`"]

    def still(r: dict) -> str:
        best = top.get(r["family"], {})
        same = (best.get("grid_checkpoint"), best.get("checkpoint")) == (r.get("grid_checkpoint", r.get("checkpoint")),
                                                                       r.get("checkpoint"))
        return "yes" if same else "no: re-run it"

    rows = [[r["family"], f"{r['size']}@{r['budget']}", f"{r['lr']:.3g}" + ("" if r.get("rate_source", "grid") == "grid"
                                                                           else " ¹"),
             f"{r['cross_entropy_bpb']:.4f}", f"{r['actual_bpb']:.4f}",
             f"{longer['peers'][peer]:.4f}", f"{r['vs_peer']:+.4f}", _num(r.get("mix", {}).get("actual_bpb")),
             still(r)] for r in longer["runs"]]
    floor = longer["peers"].get(MIX_ALONE)
    return _section(f"Largest runs on {longer['slice']}, beside {peer}",
                    ["family", "run", "lr", "CE bpb", "actual bpb", peer, "Δ", "inside mix", "still the largest run"],
                    rows) + [
        "", f"Measured by `{longer['command']}` on {summary(longer)['cpu']}"
        + (" (the other family's row is kept from an earlier run on the same bytes)." if "--family" in longer["command"]
           else ".")
        + ("" if all(r.get("rate_source", "grid") == "grid" for r in longer["runs"]) else
           " ¹ The rate a rate check found best on the validation slice at this budget (the grid's choice rule "
           "applied there), not the rate the grid's rule gave it; the fit and the prediction use the grid's own "
           "run.")
        + ("" if floor is None else f" 'inside mix': the run as the neural input of `mix` level 2, whose context "
           f"models alone (`--model none`) code the slice at {floor:.4f}; the target is the static run's.")]


def fresh_section(record: dict, current: list[dict], corpus_sha: str) -> list[str]:
    """benchmarks/grid_fresh.py's record: models trained on fresh text (a larger corpus, less than
    one pass) coded on the grid's slice beside their family's law. The grid's own runs read their
    26 MB more than once at the larger budgets, and the law's D counts those repeated bytes."""
    if record.get("corpus_sha256") != corpus_sha:
        return ["", "## Fresh text against repeated text", "", "fresh.json coded another corpus's slice: re-run "
                f"`{record.get('command')}`"]
    distinct = record["grid_train_bytes"]
    repeated = sorted((r for r in current if r["train_bytes"] > distinct), key=lambda r: -r["train_bytes"])
    rows = [[r["checkpoint"], f"{r['train_bytes'] / 1e6:.1f} MB of {r['train_corpus']}", f"{r['passes']:.2f}",
             f"{r['lr']:.3g}", f"{r['cross_entropy_bpb']:.4f}", f"{r['actual_bpb']:.4f}",
             f"{r['predicted_bpb']:.4f} ({r['law_form']})", f"{r['error']:+.2%}",
             "–" if not r.get("grid_run") else f"{r['grid_run']['run']}: {r['grid_run']['actual_bpb']:.4f} "
                                              f"({r['grid_run']['passes']:.2f} passes)"]
            for r in record["runs"]]
    note = (f"The grid's runs train on {distinct:,} distinct bytes: {len(repeated)} of its {len(current)} runs read "
            "them more than once" + (f" (up to {repeated[0]['train_bytes'] / distinct:.2f} passes, "
                                     f"{repeated[0]['size']}@{repeated[0]['budget']})" if repeated else "")
            + ", and the law's D counts bytes seen, repeated or not: a repeated byte teaches less than a new one, "
            "so the law fitted there is a law of this corpus's repetition as much as of D. The runs below train on "
            "fresh text (less than one pass over a larger corpus of the same kind of books, no held-out author) and "
            "are coded for real on the grid's evaluation slice; 'law' is their family's fit at their N and bytes "
            "seen. Their rates are their own, not the grid's rule.")
    return _section("Fresh text against repeated text",
                    ["checkpoint", "trained on", "passes", "lr", "CE bpb", "actual bpb", "law", "vs law",
                     "the grid's largest run of that size"], rows) + [
        "", note, "", f"Measured by `{record['command']}` on {summary(record)['cpu']}."]


def rate_check_section(record: dict) -> list[str]:
    """benchmarks/grid_rate_check.py's record: large-budget runs trained again at other multiples of
    the rate tuned at the smallest budget (a check of the recipe protocol; nothing here is fitted)."""
    rows = [[f"{c['size']}@{c['budget']}", f"{c['tuned_lr']:.3g} (at {c['tuned_at_budget']})", f"{r['lr']:.3g}",
             f"{r['validation_bpb']:.4f}", f"{r['actual_bpb']:.4f}",
             "expected" if r["lr"] == c["tuned_lr"] else f"{r['actual_bpb'] - _tuned_bpb(c):+.4f}"]
            for c in record.get("checks", []) for r in sorted(c["runs"], key=lambda r: r["lr"])]
    commands = [f"    {c['command']}" for c in record.get("checks", [])]
    rows += [[f"{c['size']}@{c['budget']}: best rate", f"~{c['search_optimum']:.3g} in the search",
              f"~{c['optimum']:.3g}" + ("" if c["optimum_interior"] else " (edge)"),
              "horizon exponent from the chosen rate", f"{c.get('implied_horizon_bound', '=')} {c['implied_horizon']}", ""]
             for c in record.get("checks", []) if "implied_horizon" in c]
    return _section("Is the rate tuned at the smallest budget right at a large one?",
                    ["run", "expected lr (searched at)", "lr", "validation bpb", "grid slice bpb", "Δ vs expected"],
                    rows) + [
        "", "Each point is trained again at other multiples of its tuned rate and scored like the grid "
        "(validation slice; evaluation slice range-coded). Not fitted. Commands:", "", *commands]


def _tuned_bpb(check: dict) -> float:
    tuned = [r["actual_bpb"] for r in check["runs"] if r["lr"] == check["tuned_lr"]]
    if not tuned:
        raise ValueError(f"the {check['size']}@{check['budget']} check has no run at its tuned rate")
    return tuned[0]


def _pct(v: float | None, signed: bool = True) -> str:
    return "–" if v is None else (f"{v:+.2%}" if signed else f"{v:.2%}")


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.4f}"


def _section(title: str, header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["", f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]


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
    parts = [" / ".join(_pct(errors.get(f), signed=False) for f in FORMS)] if errors else []
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


# ---- report --------------------------------------------------------------------------------
def _report(results: dict, fits: dict, plots: list[str]) -> list[str]:
    runs = sorted(results.get("runs", []), key=lambda r: (r["family"], r["non_embedding_params"], r["budget"]))
    env = summary(results)
    lines = ["# (N, D) scaling grid", "",
             f"Corpus `{results['corpus']}` (sha256 {results['corpus_sha256'][:16]}…), {results['eval_bytes']:,} "
             f"held-out bytes range-coded per run; transfer text `{results.get('transfer')}` "
             f"({results.get('transfer_bytes', 0):,} bytes). Machine: {env.get('cpu')}, {env.get('cpu_count')} CPUs, "
             f"torch {env.get('torch')}.", "", "Commands:", ""]
    lines += [f"    {c}" for c in results.get("commands", [])]
    lines += ["", "## Runs", "",
              "| family | size | N | D (bytes) | lr | FLOPs | train s (device) | CE bpb | actual bpb | transfer bpb |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        t = r.get("transfer", {}).get("actual_bpb")
        lines.append(f"| {r['family']} | {r['size']} | {r['non_embedding_params']:,} | {r['train_bytes']:,} | {r['lr']:.3g} | "
                     f"{r['flops']:.2e} | {r['train_seconds']:,.0f} ({r.get('device', 'cpu')}) | {r['cross_entropy_bpb']:.4f} | {r['actual_bpb']:.4f} | "
                     f"{t if t is None else format(t, '.4f')} |")
    if any(r.get("device", "cpu") != "cpu" for r in runs):
        lines += ["", "Train seconds are wall time on the device named, which may have been shared with other "
                  "runs training at the same time, so they are not speed figures; cuda+cpu: begun on a GPU, finished on the CPU "
                  "from its saved state. Every run is coded on the CPU (the coder is portable)."]
    lines += ["", "## Learning-rate search (validation slice after the evaluation slice, smallest budget)", "",
              "| size | rung lr | validation bpb by lr | chosen | horizon γ: lr at D = chosen × (D / D_search)^-γ |",
              "|---|---|---|---|---|"]
    for size, t in sorted(results.get("tuning", {}).items()):
        lines.append(f"| {size} | {t['rung_lr']:.3g} | {t['validation_bpb']} | {t['chosen_lr']:.3g} | "
                     f"{t.get('horizon', 0.0):g} |")
    fitted = {fam: f for fam, f in fits.items() if "alpha" in f}
    lines += ["", "## Form of the law, chosen without the held-out run", "",
              "Both forms share E, A, α, B, β and the limits bpb(N, ∞) = E + A·N^-α, bpb(∞, D) = E + B·D^-β. "
              "chinchilla: E + A·N^-α + B·D^-β (a bigger model gains the same at every D); "
              "kaplan: E + ((A·N^-α)^(1/β) + (B·D^-β)^(1/β))^β (its gain grows with D). Per family, with the "
              f"held-out run set aside, only forms whose fit on the remaining runs reaches R² ≥ {R2_GATE} may be "
              f"chosen (both when neither does); among them, each of the {VALIDATION_RUNS} highest-compute "
              "remaining runs is predicted by each form fitted on all the others, and the smaller mean error "
              "chooses the form. Both forms' "
              "held-out predictions are shown. Disclosure: the Kaplan form was added after the additive law "
              "had missed the transformers' then top run (t4@22.6 MB, +9.1%); the first rule (one validation "
              "run) was replaced by this one after it flipped on a single new run (t5@8 MB) — a reviewer had "
              "flagged it as fragile before. The held-out run never entered a fit or a choice, but these "
              "rules were not fixed before all results were seen. The R² gate was added after the three-run "
              "rule's preregistered prediction of t5@90.5 MB missed (+2.62%, chinchilla, whose R² was 0.92; "
              "kaplan, R² 0.99, gave −0.14%): that test stays a miss, shown under its own rule below; only "
              "predictions recorded after the gate was committed test it."]
    lines += _section("Form selection", ["family", f"R² ≥ {R2_GATE} without the held-out run", "validation runs",
                                         "mean error chinchilla", "mean error kaplan", "chosen", "R² chinchilla",
                                         "R² kaplan", "held-out error chinchilla", "held-out error kaplan"],
                      [[fam, ", ".join(f"{form} {r2:.4f}" + ("" if form in f["selection"].get("eligible", FORMS)
                                                               else " (out)")
                                       for form, r2 in f["selection"].get("r2", {}).items()) or "–",
                        ", ".join(f["selection"]["validation_runs"]),
                        *(_pct(f["selection"]["mean_abs_error"].get(form), signed=False) for form in FORMS),
                        f["form"] + (" (no validation run: the first eligible form)" if f["selection"]["default"] else ""),
                        *(_num(f["forms"].get(form, {}).get("r2")) for form in FORMS),
                        *(_pct(f["forms"].get(form, {}).get("error")) for form in FORMS)] for fam, f in fitted.items()])
    lines += _section("Joint fit in the chosen form (Huber on log-residuals; 95% bootstrap CI)",
                      ["family", "form", "runs", "E", "α", "β", "R²", "CI E", "CI α", "CI β"],
                      [[fam, f["form"], f["n_runs"], f"{f['E']:.3f}", f"{f['alpha']:.3f}", f"{f['beta']:.3f}",
                        f"{f['r2']:.4f}", f["ci"].get("E"), f["ci"].get("alpha"), f["ci"].get("beta")]
                       for fam, f in fitted.items()])
    lines += [f"- {fam}: {f['note']}" for fam, f in fits.items() if "note" in f]
    lines += _section("Prediction of the highest-compute run (fitted without it)",
                      ["family", "form", "held out", "predicted", "measured", "error"],
                      [[fam, p["form"], ", ".join(p["held_out_runs"]), f"{p['predicted_bpb']:.4f}",
                        f"{p['measured_bpb']:.4f}", f"{p['error']:+.2%}"] for fam, p in ((k, f.get("prediction")) for k, f in fits.items()) if p])
    lines += _section("Compute-optimal frontier (C ≈ 6·N·D)",
                      ["family", "N_opt ∝ C^a", "D_opt ∝ C^b", "closed form a, b", "Chinchilla"],
                      [[fam, fr["a_n_opt"], fr["b_d_opt"], f"{fr['a_closed_form']}, {fr['b_closed_form']}", "0.5, 0.5"]
                       for fam, fr in ((k, f.get("frontier")) for k, f in fits.items()) if fr])
    lines += _section("Model cost: the size that minimises coded + model bytes (float16 weights)",
                      ["family", "training bytes", "file", "best N", "bpb", "model bytes", "bpb incl. model"],
                      [[fam, "converged" if m["train_bytes"] is None else f"{m['train_bytes']:,.0f}",
                        f"{m['file_bytes']:,.0f}", f"{m['best_n']:,.0f}", f"{m['bpb']:.3f}", f"{m['model_bytes']:,.0f}",
                        f"{m['adjusted_bpb']:.3f}"] for fam, f in fits.items() for m in f.get("model_cost", [])])
    base, other = results.get("baselines", {}), results.get("transfer_baselines", {})
    lines += ["", "## Classic coders on the same bytes", "", "| coder | held-out bpb | transfer bpb |", "|---|---|---|"]
    lines += [f"| {k} | {v:.4f} | {other.get(k, float('nan')):.4f} |" for k, v in base.items()]
    lines += [""] + [f"![{p}]({p})" for p in plots]
    return lines
