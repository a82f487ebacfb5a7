"""Predictions recorded before their runs: parsing, the form choice the report will make once the
new run is its top-compute run, refusal to "predict" a measured run, append-only records, bad files
refused in one line, and the report section."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import ziplab
from ziplab.errors import ParameterError, ZiplabError
from ziplab.models.ladder import rung
from ziplab.sweep.joint import LEGACY_RULE, RULE, JointFit, select_form
from ziplab.sweep.grid_report import preregistered_section
from ziplab.sweep.preregister import parse_points, point_shape, predict_points, preregister

TRUTH = JointFit(E=1.0, A=30.0, alpha=0.3, B=400.0, beta=0.35, r2=1.0, n_runs=0)
SIZES = ("t0", "t1", "t2", "t3")
BUDGETS = (1_000_000, 2_830_000, 8_000_000)
#: far from a whole number of 32 x 128-byte batches: D must be the bytes the run will see
POINT = ("t4", 22_597_000)


def _runs() -> list[dict]:
    runs = []
    for size in SIZES:
        for budget in BUDGETS:
            shape = point_shape(size, budget)
            n, d = shape["non_embedding_params"], shape["train_bytes"]
            runs.append({"family": "transformer", "size": size, "budget": budget, "non_embedding_params": n,
                         "train_bytes": d, "actual_bpb": float(TRUTH.predict(n, d)), "flops": 6.0 * n * d,
                         "recipe": rung(size).recipe, "lr": 0.01})
    return runs


@pytest.fixture(scope="module")
def predicted() -> dict:
    (p,) = predict_points(_runs(), [POINT])
    return p


def test_points_parse_and_bad_ones_are_refused():
    assert parse_points("t5@64e6, l5@16000000,t5@64e6") == [("t5", 64_000_000), ("l5", 16_000_000)]
    for bad in ("t5", "t5@", "t5@lots", "t5@nan", "t5@1e30", "t5@100", "zz@1e6", ""):
        with pytest.raises(ZiplabError):  # ParameterError, or the ladder's UnknownSizeError
            parse_points(bad)


def test_the_shape_is_the_run_the_grid_would_train():
    shape = point_shape("t5", 22_600_000)
    assert shape["family"] == "transformer" and shape["non_embedding_params"] == 1_599_520
    assert shape["train_bytes"] == 22_601_728  # whole batches of 32 x 128 bytes


def test_a_law_the_runs_follow_predicts_the_next_size(predicted):
    runs = _runs()
    truth = float(TRUTH.predict(point_shape(*POINT)["non_embedding_params"], 22_597_632))
    assert predicted["train_bytes"] == 22_597_632  # 5,517 batches
    assert abs(predicted["predicted_bpb"] / truth - 1) < 0.002
    rule = select_form(*(np.array([r[k] for r in runs], float) for k in ("non_embedding_params", "train_bytes",
                                                                       "actual_bpb", "flops")))
    assert predicted["form"] == rule["form"] == "chinchilla"  # the runs follow the additive law
    assert predicted["selection"]["mean_abs_error"] == rule["mean_abs_error"]
    assert predicted["selection"]["eligible"] == rule["eligible"] and predicted["rule"] == RULE
    assert set(predicted["forms"]) == {"chinchilla", "kaplan"} and predicted["recipe"] == rung("t4").recipe
    assert len(predicted["fitted_on"]) == len(SIZES) * len(BUDGETS)


def test_a_measured_run_or_a_thin_family_is_not_predicted():
    with pytest.raises(ParameterError, match="already measured"):
        predict_points(_runs(), [("t1", 2_830_000)])
    with pytest.raises(ParameterError, match="already measured"):  # other digits, the same bytes trained
        predict_points(_runs(), [("t1", 2_829_000)])
    with pytest.raises(ParameterError, match="at least 6"):
        predict_points(_runs()[:5], [("t4", 1_000_000)])
    with pytest.raises(ParameterError, match="at least 6"):
        predict_points(_runs(), [("l4", 1_000_000)])


def test_predictions_append_and_the_report_sets_them_beside_their_runs(tmp_path, predicted, monkeypatch):
    import ziplab.sweep.preregister as pre

    monkeypatch.setattr(pre, "predict_points", lambda runs, points: [
        {**predicted, "size": s, "budget": b} for s, b in points])
    runs = _runs()
    (tmp_path / "results.json").write_text(json.dumps({
        "corpus_sha256": "abc", "runs": runs, "tuning": {s: {"chosen_lr": 0.01, "budget": BUDGETS[0]} for s in SIZES}}))
    first = preregister(tmp_path, [POINT])
    preregister(tmp_path, [POINT, ("t4", 1_000_000)])
    record = json.loads((tmp_path / "preregistered.json").read_text())
    assert [p["budget"] for p in record["predictions"]] == [POINT[1], POINT[1], 1_000_000]
    assert record["predictions"][0] == first[0] and first[0]["corpus_sha256"] == "abc"
    assert record["provenance"]["ziplab_version"] == ziplab.__version__
    measured = {"size": "t4", "budget": POINT[1], "actual_bpb": first[0]["predicted_bpb"] / 1.02}
    rows = [line for line in preregistered_section(record, runs + [measured], "abc") if line.startswith("| t4@")]
    assert rows[0].endswith("| +2.00% |") and rows[2].endswith("| not yet trained | – |")
    assert "| chinchilla (" in rows[0]
    elsewhere = [line for line in preregistered_section(record, runs + [measured], "xyz") if line.startswith("| t4@")]
    assert all(line.endswith("| another corpus | – |") for line in elsewhere)


def test_each_prediction_shows_the_rule_it_was_made_under(predicted):
    """An entry without a rule was made by the three-run rule alone; a gated one shows the R² it saw."""
    stamped = {**predicted, "recorded_at": "2026-11-27T18:09:27Z", "commit": "e86481f", "corpus_sha256": "abc"}
    legacy = {**{k: v for k, v in stamped.items() if k != "rule"},
              "selection": {k: predicted["selection"][k] for k in ("validation_runs", "mean_abs_error")}}
    gated = {**stamped, "selection": {**predicted["selection"], "r2": {"chinchilla": 0.9264, "kaplan": 0.9948},
                                        "eligible": ["kaplan"]}}
    rows = [line for line in preregistered_section({"predictions": [legacy, gated]}, [], "abc")
            if line.startswith("| t4@")]
    assert f"| {LEGACY_RULE} |" in rows[0] and "R²" not in rows[0]
    assert f"| {RULE} |" in rows[1] and "R² 0.9264 out / 0.9948)" in rows[1]


def test_a_prediction_is_held_to_the_rate_it_was_made_for(tmp_path, predicted, monkeypatch):
    import ziplab.sweep.preregister as pre

    monkeypatch.setattr(pre, "predict_points", lambda runs, points: [
        {**predicted, "size": s, "budget": b} for s, b in points])
    tuning = {s: {"chosen_lr": 0.01, "budget": BUDGETS[0], "horizon": 0.5} for s in (*SIZES, "t4")}
    (tmp_path / "results.json").write_text(json.dumps({"corpus_sha256": "abc", "runs": _runs(), "tuning": tuning}))
    made = preregister(tmp_path, [POINT])[0]
    assert made["lr"] == float(f"{0.01 * (POINT[1] / BUDGETS[0]) ** -0.5:.3g}")  # the horizon rule's rate
    at = {"size": "t4", "budget": POINT[1], "actual_bpb": made["predicted_bpb"] / 1.01}

    def row(prediction: dict, lr: float) -> str:
        lines = preregistered_section({"predictions": [prediction]}, [{**at, "lr": lr}], "abc", tuning)
        return next(line for line in lines if line.startswith("| t4@"))

    assert row(made, made["lr"]).endswith("| +1.00% |")
    assert row(made, 0.01).endswith("at lr 0.01 | – (predicted for lr " + f"{made['lr']:.3g}) |")
    legacy = {k: v for k, v in made.items() if k != "lr"}  # written before rates were recorded: the searched one
    assert row(legacy, 0.01).endswith("| +1.00% |")
    assert "predicted for lr 0.01" in row(legacy, made["lr"])
    untuned = {**made, "lr": None}  # a size not searched yet when predicted: its rate was not known
    assert row(untuned, 0.01).endswith("| +1.00% |")


@pytest.mark.parametrize("results, side", [
    ("{not json", None), ("[]", None), ('{"runs": []}', None),
    ('{"runs": [], "corpus_sha256": "abc"}', "{cut"), ('{"runs": [], "corpus_sha256": "abc"}', '{"predictions": null}'),
])
def test_bad_files_get_one_line_and_a_non_zero_exit(tmp_path, results, side):
    (tmp_path / "results.json").write_text(results)
    if side is not None:
        (tmp_path / "preregistered.json").write_text(side)
    r = subprocess.run([sys.executable, "-m", "ziplab", "sweep", "--grid", "--out", str(tmp_path),
                        "--predict", "t4@1e6"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "ziplab: error:" in r.stderr
    if side is not None:
        assert (tmp_path / "preregistered.json").read_text() == side  # left as it was
