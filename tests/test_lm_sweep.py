"""`ziplab sweep --models`: an external family coded on the sweep's slice, fitted and drawn
beside the lab's (here three tiny random Llamas sharing one tokenizer; no lab training)."""

from __future__ import annotations

import json

import pytest


def test_external_models_become_a_fitted_family_and_a_rerun_skips_them(tmp_path):
    pytest.importorskip("transformers")
    from ziplab.sweep.run import SweepSettings, run_sweep

    from .hf_models import llama_dir, train_tokenizer

    tok = train_tokenizer()
    specs = tuple(f"hf:{llama_dir(tmp_path / f'm{h}', hidden=h, tok=tok)}" for h in (8, 16, 32))
    settings = SweepSettings(corpus="stdlib", families=(), eval_bytes=2048, out=str(tmp_path / "out"), lanes=4,
                             models=specs, models_family="tiny-llama")
    events = []
    results = run_sweep(settings, lambda event, info: events.append((event, info.get("size"))))
    rows = [r for r in results["sizes"] if r.get("external")]
    assert [r["size"] for r in sorted(rows, key=lambda r: r["non_embedding_params"])] == list(specs)
    assert all(r["family"] == "tiny-llama" and r["actual_bpb"] > r["cross_entropy_bpb"] > 0 for r in rows)
    assert len({r["non_embedding_params"] for r in rows}) == 3
    fit = json.loads((tmp_path / "out" / "fit.json").read_text())
    assert fit["tiny-llama"]["n_points"] == 3
    assert (tmp_path / "out" / "curve.png").stat().st_size > 10_000
    assert "tiny-llama" in (tmp_path / "out" / "report.md").read_text()
    events.clear()
    run_sweep(settings, lambda event, info: events.append((event, info.get("size"))))
    assert [e for e in events if e[0] in ("skip", "external")] == [("skip", s) for s in specs]


def test_models_do_not_go_with_the_grid():
    from click.testing import CliRunner

    from ziplab.cli.sweep import sweep

    r = CliRunner().invoke(sweep, ["--grid", "--models", "hf:x"])
    assert r.exit_code == 2 and "--models goes with the size sweep" in r.output
