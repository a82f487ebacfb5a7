"""The (N, D) grid: runs, the family summary and report built from them (held-out prediction, model
cost, largest runs, rate checks), and a tiny grid run end to end. The law itself: test_joint_law.py."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import ziplab
from ziplab.sweep.grid import GridSettings, flops, run_grid
from ziplab.sweep.grid_report import family_summary
import pytest
from ziplab.errors import ParameterError
from ziplab.sweep.joint import JointFit

TRUTH = JointFit(E=0.9, A=20.0, alpha=0.30, B=60.0, beta=0.25, r2=1.0, n_runs=0)
#: a law whose model-size gain grows with D (what the transformer grid shows)
KAPLAN = JointFit(E=1.2, A=30.0, alpha=0.30, B=400.0, beta=0.35, r2=1.0, n_runs=0, form="kaplan")
SIZES = np.array([2.5e3, 1e4, 4.4e4, 1.9e5, 8e5])  # the LSTM ladder's spacing (~x4)
BUDGETS = np.array([2e6, 5.66e6, 1.6e7])  # the grid's default spacing (x8 end to end)


def _grid(seed: int, noise: float, truth: JointFit = TRUTH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, d = (a.ravel() for a in np.meshgrid(SIZES, BUDGETS))
    y = truth.predict(n, d) * (1 + noise * np.random.default_rng(seed).standard_normal(n.size))
    return n, d, y


def _runs(n: np.ndarray, d: np.ndarray, y: np.ndarray) -> list[dict]:
    return [{"size": f"s{i}", "budget": int(b), "non_embedding_params": float(a), "params": float(a) * 1.2 + 5000,
             "train_bytes": float(b), "actual_bpb": float(v), "flops": 6 * a * b, "flops_6nd": 6 * a * b}
            for i, (a, b, v) in enumerate(zip(n, d, y))]


def test_flops_count_the_attention_term_for_transformers_only():
    lstm = flops({"family": "lstm", "non_embedding_params": 1000}, 10)
    tr = flops({"family": "transformer", "non_embedding_params": 1000,
                "config": {"n_layer": 2, "context": 64, "n_embd": 32}}, 10)
    assert lstm["flops"] == lstm["flops_6nd"] == 60_000
    assert tr["flops"] == 60_000 + 6 * 2 * 64 * 32 * 10


def test_family_summary_reports_a_prediction_and_model_cost():
    n, d, y = _grid(3, 0.005)
    out = family_summary(_runs(n, d, y))
    assert abs(out["prediction"]["error"]) < 0.02
    costs = [m for m in out["model_cost"] if m["train_bytes"] is None]
    assert [m["best_n"] for m in costs] == sorted(m["best_n"] for m in costs)  # bigger files, bigger models


def test_form_selection_never_sees_the_held_out_run():
    n, d, y = _grid(7, 0.003, KAPLAN)
    base = family_summary(_runs(n, d, y))
    top = int(np.argmax(n * d))
    y2 = y.copy()
    y2[top] *= 1.3  # whatever the held-out run measures, the form is chosen the same way
    moved = family_summary(_runs(n, d, y2))
    assert base["selection"] == moved["selection"] and base["form"] == moved["form"] == "kaplan"
    assert base["prediction"]["predicted_bpb"] == moved["prediction"]["predicted_bpb"]
    assert set(base["forms"]) == {"chinchilla", "kaplan"}
    assert base["prediction"]["error"] == base["forms"]["kaplan"]["error"]


def test_the_longer_slice_section_marks_a_row_whose_run_is_no_longer_the_largest():
    from ziplab.sweep.grid_report import largest_section

    runs = [{"family": "transformer", "size": "t4", "budget": b, "flops": b, "checkpoint": f"t4-b{b}"} for b in (8, 22)]
    row = {"family": "transformer", "size": "t4", "lr": 0.012, "cross_entropy_bpb": 2.0, "actual_bpb": 2.01,
           "vs_peer": 0.081}
    longer = {"peer": "ppmd-o6", "peers": {"ppmd-o6": 1.929}, "slice": "the first 1,048,576 bytes", "bytes": 1 << 20,
              "command": "python benchmarks/grid_largest.py", "corpus_sha256": "abc", "environment": {"cpu": "x"}, "runs": [
                  {**row, "budget": 8, "checkpoint": "t4-b8"}, {**row, "budget": 22, "checkpoint": "t4-b22"},
                  {**row, "budget": 22, "checkpoint": "t4-b22-retrained-at-another-rate"}]}
    rows = [line for line in largest_section(longer, runs, "abc") if line.startswith("| transformer")]
    assert [r.rsplit("|", 2)[1].strip() for r in rows] == ["no: re-run it", "yes", "no: re-run it"]
    assert "another corpus" in " ".join(largest_section(longer, runs, "other"))
    mixed = {**longer, "peers": {"ppmd-o6": 1.929, "mix-2": 1.955}, "runs": [{**longer["runs"][1], "mix": {"actual_bpb": 1.76}}]}
    lines = largest_section(mixed, runs, "abc")
    assert "| 1.7600 | yes |" in next(line for line in lines if line.startswith("| transformer"))
    assert "alone (`--model none`) code the slice at 1.9550" in lines[-1]


def test_the_largest_run_takes_the_rate_a_check_found_best_on_validation_and_says_so():
    from ziplab.sweep.grid_report import largest_section, rate_checked

    run = {"family": "transformer", "size": "t5", "budget": 64, "flops": 1.0, "lr": 0.0096, "checkpoint": "t5-hi",
           "actual_bpb": 1.91, "cross_entropy_bpb": 1.90, "train_seconds": 10.0}
    tried = [{"lr": 0.0096, "checkpoint": "t5-hi", "validation_bpb": 1.90, "actual_bpb": 1.91,
              "cross_entropy_bpb": 1.90, "train_seconds": 10.0},
             {"lr": 0.0024, "checkpoint": "t5-lo", "validation_bpb": 1.85, "actual_bpb": 1.93,  # worse on eval:
              "cross_entropy_bpb": 1.92, "train_seconds": 11.0}]                                 # validation decides
    assert rate_checked(run, []) == {**run, "grid_checkpoint": "t5-hi", "rate_source": "grid"}
    # the grid's own run wins (or the other rate diverged): nothing changes, nothing is footnoted
    for other in (1.95, float("nan")):
        lost = [tried[0], {**tried[1], "validation_bpb": other}]
        assert rate_checked(run, [{"size": "t5", "budget": 64, "runs": lost}])["rate_source"] == "grid"
    chosen = rate_checked(run, [{"size": "t5", "budget": 64, "runs": tried}])
    assert (chosen["checkpoint"], chosen["lr"], chosen["actual_bpb"], chosen["grid_checkpoint"]) == ("t5-lo", 0.0024, 1.93, "t5-hi")
    assert "rate check" in chosen["rate_source"]
    # a check of another point, or one that does not hold the grid's run (an older one), changes nothing
    assert rate_checked(run, [{"size": "t5", "budget": 22, "runs": tried}])["checkpoint"] == "t5-hi"
    older = [{**tried[0], "checkpoint": "t5-old"}, tried[1]]
    assert rate_checked(run, [{"size": "t5", "budget": 64, "runs": older}])["checkpoint"] == "t5-hi"

    row = {**chosen, "vs_peer": -0.01}
    longer = {"peer": "ppmd-o6", "peers": {"ppmd-o6": 1.929}, "slice": "the first 1,048,576 bytes", "bytes": 1 << 20,
              "command": "python benchmarks/grid_largest.py", "corpus_sha256": "abc", "environment": {"cpu": "x"},
              "runs": [row]}
    checks = [{"size": "t5", "budget": 64, "runs": tried}]
    lines = largest_section(longer, [run], "abc", checks)
    line = next(line for line in lines if line.startswith("| transformer"))
    assert "| 0.0024 ¹ |" in line and line.rstrip(" |").endswith("yes")
    assert "¹ The rate a rate check found best on the validation slice" in lines[-1]
    # the check re-run, and now another rate wins on validation: the row is no longer what would be coded
    lower = {**tried[1], "lr": 0.0012, "checkpoint": "t5-lower", "validation_bpb": 1.80}
    lines = largest_section(longer, [run], "abc", [{"size": "t5", "budget": 64, "runs": [*tried, lower]}])
    assert next(line for line in lines if line.startswith("| transformer")).rstrip(" |").endswith("no: re-run it")


def test_the_rate_check_section_shows_each_rate_against_the_tuned_one():
    from ziplab.sweep.grid_report import rate_check_section

    check = {"size": "t5", "budget": 22, "tuned_lr": 0.0096, "tuned_at_budget": 1, "command": "python benchmarks/x.py",
             "runs": [{"lr": 0.0096, "validation_bpb": 2.05, "actual_bpb": 2.03},
                      {"lr": 0.0048, "validation_bpb": 2.01, "actual_bpb": 1.99}]}
    lines = rate_check_section({"checks": [check]})
    rows = [line for line in lines if line.startswith("| t5@22")]
    assert [r.split("|")[3].strip() for r in rows] == ["0.0048", "0.0096"]
    assert [r.rsplit("|", 2)[1].strip() for r in rows] == ["-0.0400", "expected"]
    assert "    python benchmarks/x.py" in lines


def test_runs_at_a_rate_the_tuning_did_not_choose_are_not_current():
    from ziplab.models.ladder import rung
    from ziplab.sweep.rates import split_by_recipe

    runs = [{"size": "t0", "recipe": rung("t0").recipe, "lr": lr, "budget": 8000} for lr in (0.04, 0.02)]
    current, stale = split_by_recipe(runs, {"t0": {"chosen_lr": 0.04, "budget": 1000}})
    assert [r["lr"] for r in current] == [0.04] and [r["lr"] for r in stale] == [0.02]
    assert split_by_recipe(runs)[0] == runs  # no tuning recorded: the recipe alone decides


def test_the_horizon_rule_lowers_the_rate_only_above_the_search_budget():
    from ziplab.models.ladder import rung
    from ziplab.sweep.grid import GridSettings
    from ziplab.sweep.rates import horizon_rate
    from ziplab.sweep.rates import split_by_recipe

    assert horizon_rate(0.0096, 1_000_000, 22_600_000, 0.0) == 0.0096
    assert horizon_rate(0.0096, 1_000_000, 1_000_000, 0.5) == 0.0096
    assert horizon_rate(0.0096, 1_000_000, 4_000_000, 0.5) == 0.0048
    assert horizon_rate(0.0096, 1_000_000, 22_600_000, 0.3) == float(f"{0.0096 * 22.6 ** -0.3:.3g}")
    tuning = {"t0": {"chosen_lr": 0.04, "budget": 1000, "horizon": 0.5}}
    runs = [{"size": "t0", "recipe": rung("t0").recipe, "budget": b, "lr": lr}
            for b, lr in ((1000, 0.04), (4000, 0.02), (4000, 0.04))]
    current, stale = split_by_recipe(runs, tuning)
    assert current == runs[:2] and stale == runs[2:]
    with pytest.raises(ParameterError):
        GridSettings(lr_horizon=1.5).validate()


@pytest.mark.parametrize("count", [1, 5, 7])
def test_family_summary_with_too_few_runs_says_so(count):
    n, d, y = _grid(8, 0.003)
    out = family_summary(_runs(n[:count], d[:count], y[:count]))
    if count < 6:
        assert out == {"n_runs": count, "note": "needs >= 6 runs over >= 2 sizes and >= 2 budgets"}
    else:  # 7 runs: the held-out and validation runs leave 5, too few to choose: the default form, flagged
        assert out["selection"]["default"] and out["form"] == "chinchilla"


def test_tiny_grid_end_to_end(tmp_path, monkeypatch):
    s = GridSettings(corpus="stdlib", sizes=("l0", "t0"), budgets=(8192, 16384), lr_factors=(1.0, 2.0),
                     eval_bytes=2048, tune_bytes=2048, out=str(tmp_path / "g"))
    run_grid(s)
    results = json.loads((tmp_path / "g" / "results.json").read_text())
    assert {(r["size"], r["budget"]) for r in results["runs"]} == {(z, b) for z in ("l0", "t0") for b in (8192, 16384)}
    for r in results["runs"]:
        assert 0 < r["cross_entropy_bpb"] <= r["actual_bpb"] < 8 * 1.2 and r["verified_bytes"] == 2048
        assert r["lr"] == results["tuning"][r["size"]]["chosen_lr"]
    for name in ("fit.json", "report.md", "grid.png"):
        assert (tmp_path / "g" / name).is_file()
    for name in ("results.json", "fit.json"):  # the record of the process that wrote each, torch loaded by then
        prov = json.loads((tmp_path / "g" / name).read_text())["provenance"]
        assert prov["ziplab_version"] == ziplab.__version__ and "torch" in prov["threads"]
    events: list[tuple[str, str]] = []
    said: list[str] = []  # why each stale run is measured again

    def hook(event: str, info: dict) -> None:
        events.append((event, info.get("size", "")))
        if event == "stale":
            said.append(info["was"])

    assert run_grid(s, hook) is not None
    assert not [e for e in events if e[0] in ("train", "stale")]  # resumes: nothing left to train
    from ziplab.models import ladder

    retuned = dataclasses.replace(ladder.LADDER["l0"], warmup=ladder.LADDER["l0"].warmup + 1)
    monkeypatch.setitem(ladder.LADDER, "l0", retuned)
    events.clear()
    run_grid(s, hook)
    assert {size for event, size in events if event in ("train", "stale")} == {"l0"}  # only the changed rung
    assert ("stale", "l0") in events and set(said) == {"with another recipe"}
    runs = json.loads((tmp_path / "g" / "results.json").read_text())["runs"]
    assert all(r["recipe"] == ladder.rung(r["size"]).recipe for r in runs)
    # a run trained at a rate the current tuning did not choose is measured again too
    results = json.loads((tmp_path / "g" / "results.json").read_text())
    next(r for r in results["runs"] if (r["size"], r["budget"]) == ("t0", 16384))["lr"] *= 3
    (tmp_path / "g" / "results.json").write_text(json.dumps(results))
    events.clear()
    said.clear()
    run_grid(s, hook)
    assert [e for e in events if e[0] == "stale"] == [("stale", "t0")]
    chosen = results["tuning"]["t0"]["chosen_lr"]
    assert said == [f"at lr {chosen * 3:g}, where the rule now gives {chosen:g}"]
    again = json.loads((tmp_path / "g" / "results.json").read_text())
    assert all(r["lr"] == again["tuning"][r["size"]]["chosen_lr"] for r in again["runs"])
    # the horizon rule: the larger budget trains again at the searched rate x 2^-0.5; the search's own stays
    events.clear()
    run_grid(dataclasses.replace(s, lr_horizon=0.5), hook)
    assert sorted(e for e in events if e[0] == "stale") == [("stale", "l0"), ("stale", "t0")]
    lowered = json.loads((tmp_path / "g" / "results.json").read_text())
    for r in lowered["runs"]:
        chosen = lowered["tuning"][r["size"]]["chosen_lr"]
        assert lowered["tuning"][r["size"]]["horizon"] == 0.5
        assert r["lr"] == (chosen if r["budget"] == 8192 else float(f"{chosen * 2 ** -0.5:.3g}"))
    from ziplab.sweep.rates import split_by_recipe

    assert split_by_recipe(lowered["runs"], lowered["tuning"])[1] == []  # the report agrees with the grid
    events.clear()
    run_grid(s, hook)  # resumed without --lr-horizon: the recorded rule stands, nothing is trained
    assert not [e for e in events if e[0] in ("train", "stale", "horizon")]


def test_a_side_file_that_cannot_be_shown_becomes_a_note_not_a_failed_report(tmp_path):
    from ziplab.sweep.grid_report import rate_check_section, side_lines

    assert side_lines(tmp_path / "absent.json", rate_check_section) == []
    for text in ("{cut", "[]", '{"checks": [{"size": "t5"}]}',
                 '{"checks": [{"size": "t5", "budget": 1, "tuned_lr": 0.1, "tuned_at_budget": 1, "command": "c", '
                 '"runs": [{"lr": 0.2, "validation_bpb": 2, "actual_bpb": 2}]}]}'):
        (tmp_path / "rate_check.json").write_text(text)
        lines = side_lines(tmp_path / "rate_check.json", rate_check_section)
        assert len(lines) == 2 and "rate_check.json could not be read or shown" in lines[1]


def test_the_best_rate_is_found_between_the_rates_tried_and_gives_the_horizon_exponent():
    import math

    from ziplab.sweep.rates import implied_horizon, rate_optimum

    true = 0.006
    scores = {r: 2.0 + 0.1 * math.log(r / true) ** 2 for r in (0.0024, 0.0048, 0.0096, 0.0192)}
    best, inside = rate_optimum(scores)
    assert inside and abs(best / true - 1) < 1e-9  # exact for a parabola in log rate
    assert rate_optimum({0.01: 2.0, 0.02: 2.1}) == (0.01, False)  # an edge says so
    assert abs(rate_optimum({0.01: 2.1, 0.02: 2.0, 0.04: 2.0})[0] / math.sqrt(0.02 * 0.04) - 1) < 1e-9
    uneven = {r: 2.0 + 0.1 * math.log(r / true) ** 2 for r in (0.001, 0.0045, 0.02)}
    assert abs(rate_optimum(uneven)[0] / true - 1) < 1e-9
    assert rate_optimum({0.002: float("nan"), 0.004: 2.1, 0.008: 2.0, 0.016: 2.2})[1]  # a diverged run is left out
    assert abs(implied_horizon(0.008, 1e6, 0.004, 16e6) - 0.25) < 1e-12


def test_train_only_then_measure_reuses_every_checkpoint(tmp_path):
    """The GPU-box split: --train-only trains and codes nothing; a later grid run measures the same
    checkpoints without training, and records the device each was trained on."""
    from ziplab.sweep.grid import train_grid

    s = GridSettings(corpus="stdlib", sizes=("t0",), budgets=(8192, 16384), lr_factors=(1.0,),
                     eval_bytes=2048, tune_bytes=2048, out=str(tmp_path / "g"))
    ready = train_grid(s)
    assert len(ready) == 2 and all(p.is_file() for p in ready)  # the chosen search run and the larger budget
    assert json.loads((tmp_path / "g" / "results.json").read_text())["runs"] == []
    events: list[str] = []
    run_grid(s, lambda event, info: events.append(event))
    assert "train" not in events and events.count("measured") == 2
    runs = json.loads((tmp_path / "g" / "results.json").read_text())["runs"]
    assert {r["device"] for r in runs} == {"cpu"}
    assert train_grid(s) == []  # every point recorded under the current rule: nothing to train


def test_the_grid_trains_on_the_device_it_is_given(tmp_path, monkeypatch):
    import ziplab.models.train as train

    seen: list[str] = []
    real = train.train_model

    def spy(cfg, *args, **kwargs):
        seen.append(cfg.device)
        return real(dataclasses.replace(cfg, device="cpu"), *args, **kwargs)  # no GPU here: train on the CPU

    monkeypatch.setattr(train, "train_model", spy)
    from ziplab.sweep.grid import train_grid

    s = GridSettings(corpus="stdlib", sizes=("t0",), budgets=(8192,), lr_factors=(1.0,), eval_bytes=2048,
                     tune_bytes=2048, out=str(tmp_path / "g"), device="cuda")
    train_grid(s)
    assert seen and set(seen) == {"cuda"}


def test_grid_refuses_an_unknown_device():
    with pytest.raises(ParameterError, match="device"):
        GridSettings(device="tpu").validate()


def test_train_only_without_grid_is_a_usage_error():
    from click.testing import CliRunner

    from ziplab.cli import cli

    r = CliRunner().invoke(cli, ["sweep", "--train-only"])
    assert r.exit_code == 2 and "--train-only goes with --grid" in r.output


def test_largest_for_one_family_keeps_the_other_familys_row_only_if_it_coded_the_same_bytes(tmp_path):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "grid_largest", Path(__file__).resolve().parents[1] / "benchmarks" / "grid_largest.py")
    largest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(largest)
    path = tmp_path / "largest.json"
    peers = {"ppmd-o6": 1.9, "mix-2": 1.97}
    assert largest._kept_rows(path, "lstm", "abc", 1024, 64, True, peers) == []  # nothing earlier
    path.write_text(json.dumps({"corpus_sha256": "abc", "bytes": 1024, "lanes": 64, "peers": peers,
                                "environment": {"cpu": "old"},
                                "runs": [{"family": "lstm", "size": "l4"}, {"family": "transformer", "size": "t5"}]}))
    kept = largest._kept_rows(path, "lstm", "abc", 1024, 64, True, peers)
    assert kept == [{"family": "transformer", "size": "t5", "environment": {"cpu": "old"}}]
    for other in [("abd", 1024, 64, True, peers), ("abc", 2048, 64, True, peers), ("abc", 1024, 32, True, peers),
                  ("abc", 1024, 64, False, {"ppmd-o6": 1.9})]:  # another corpus, slice, lanes, or without mix
        with pytest.raises(SystemExit, match="other bytes"):
            largest._kept_rows(path, "lstm", *other)


def test_the_fresh_text_section_counts_repeated_passes_and_compares_with_the_law():
    from ziplab.sweep.grid_report import fresh_section

    current = [{"size": "l5", "budget": 45_000_000, "train_bytes": 45_000_000, "actual_bpb": 1.845},
               {"size": "l4", "budget": 2_000_000, "train_bytes": 2_000_000, "actual_bpb": 2.3}]
    row = {"checkpoint": "m.safetensors", "train_bytes": 70e6, "train_corpus": "big", "passes": 0.22, "lr": 0.0022,
           "cross_entropy_bpb": 1.73, "actual_bpb": 1.75, "predicted_bpb": 1.84, "law_form": "chinchilla",
           "error": -0.0489, "grid_run": {"run": "l5@45000000", "actual_bpb": 1.845, "passes": 1.7}}
    record = {"corpus_sha256": "abc", "grid_train_bytes": 26_000_000, "runs": [row], "command": "c"}
    text = "\n".join(fresh_section(record, current, "abc"))
    assert "1 of its 2 runs read them more than once" in text and "1.73 passes, l5@45000000" in text
    assert "| 1.7500 | 1.8400 (chinchilla) | -4.89% |" in text
    assert "re-run" in "\n".join(fresh_section(record, current, "other"))  # another corpus is not compared
