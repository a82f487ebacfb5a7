"""Predictions recorded before their runs: parsing, the report's form choice applied to runs not yet
trained, refusal to "predict" a measured run, append-only records and the report section."""

from __future__ import annotations

import json

import pytest

from ziplab.errors import ParameterError, ZiplabError
from ziplab.models.ladder import rung
from ziplab.sweep.joint import JointFit
from ziplab.sweep.preregister import parse_points, point_shape, predict_points, preregister, preregistered_section

TRUTH = JointFit(E=1.0, A=30.0, alpha=0.3, B=400.0, beta=0.35, r2=1.0, n_runs=0)
SIZES = ("t0", "t1", "t2", "t3")
BUDGETS = (1_000_000, 2_830_000, 8_000_000)


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


def test_points_parse_and_bad_ones_are_refused():
    assert parse_points("t5@64e6, l5@16000000") == [("t5", 64_000_000), ("l5", 16_000_000)]
    for bad in ("t5", "t5@", "t5@lots", "t5@nan", "t5@1e30", "t5@100", "zz@1e6", ""):
        with pytest.raises(ZiplabError):  # ParameterError, or the ladder's UnknownSizeError
            parse_points(bad)


def test_the_shape_is_the_run_the_grid_would_train():
    shape = point_shape("t5", 22_600_000)
    assert shape["family"] == "transformer"
    assert shape["non_embedding_params"] == rung("t5").build().non_embedding_params()
    assert shape["train_bytes"] == 22_601_728  # whole batches of 32 x 128 bytes


def test_a_law_the_runs_follow_predicts_the_next_size():
    (p,) = predict_points(_runs(), [("t4", 22_600_000)])
    shape = point_shape("t4", 22_600_000)
    truth = float(TRUTH.predict(shape["non_embedding_params"], shape["train_bytes"]))
    assert abs(p["predicted_bpb"] / truth - 1) < 0.01
    assert set(p["forms"]) == {"chinchilla", "kaplan"} and p["form"] in p["forms"]
    assert len(p["fitted_on"]) == len(SIZES) * len(BUDGETS)


def test_a_measured_run_or_a_thin_family_is_not_predicted():
    with pytest.raises(ParameterError, match="already measured"):
        predict_points(_runs(), [("t1", 2_830_000)])
    with pytest.raises(ParameterError, match="needs at least 6"):
        predict_points(_runs()[:5], [("t4", 1_000_000)])
    with pytest.raises(ParameterError, match="at least 6"):
        predict_points(_runs(), [("l4", 1_000_000)])


def test_predictions_append_and_the_report_sets_them_beside_their_runs(tmp_path):
    runs = _runs()
    (tmp_path / "results.json").write_text(json.dumps({
        "corpus_sha256": "abc", "runs": runs,
        "tuning": {s: {"chosen_lr": 0.01} for s in SIZES}}))
    first = preregister(tmp_path, [("t4", 8_000_000)])
    preregister(tmp_path, [("t4", 8_000_000), ("t4", 1_000_000)])
    record = json.loads((tmp_path / "preregistered.json").read_text())
    assert [p["budget"] for p in record["predictions"]] == [8_000_000, 8_000_000, 1_000_000]
    assert record["predictions"][0] == first[0] and first[0]["corpus_sha256"] == "abc"
    shape = point_shape("t4", 8_000_000)
    measured = {"size": "t4", "budget": 8_000_000, "actual_bpb": first[0]["predicted_bpb"] / 1.02, **shape}
    rows = [line for line in preregistered_section(record, runs + [measured]) if line.startswith("| t4@")]
    assert rows[0].endswith("| +2.00% |") and rows[2].endswith("| not yet trained | – |")
