"""A tiny sweep end to end: every output file, real coding, resume."""

from __future__ import annotations

import json

import pytest

import ziplab

from ziplab.sweep.run import SweepSettings, run_sweep


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    text = b"".join(b"line %d: the quick brown fox jumps over the lazy dog.\n" % i for i in range(3000))
    (folder / "train.txt").write_bytes(text[:120_000])
    (folder / "dev.txt").write_bytes(text[120_000:])
    return str(folder)


def _settings(corpus: str, out, sizes=("l1", "t1")) -> SweepSettings:
    return SweepSettings(corpus=corpus, sizes=sizes, train_bytes=8192, eval_bytes=3000, out=str(out))


def test_tiny_sweep_writes_everything_and_resumes(corpus, tmp_path):
    events: list[tuple[str, dict]] = []
    results = run_sweep(_settings(corpus, tmp_path), lambda e, i: events.append((e, i)))
    for name in ("results.json", "results.csv", "fit.json", "curve.png", "report.md"):
        assert (tmp_path / name).stat().st_size > 0, name
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["eval_bytes"] == 3000 and len(saved["corpus_sha256"]) == 64
    assert saved["provenance"]["ziplab_version"] == ziplab.__version__ and "environment" not in saved
    assert {r["size"] for r in saved["sizes"]} == {"l1", "t1"}
    for r in results["sizes"]:
        assert r["verified_bytes"] == 3000
        assert r["compressed_bytes"] > 0 and r["actual_bpb"] == pytest.approx(8 * r["compressed_bytes"] / 3000, rel=1e-4)
        assert r["adjusted_bpb"] > r["actual_bpb"]
    assert "zlib-9" in saved["baselines"] and "lzh-9" in saved["baselines"]

    events.clear()
    run_sweep(_settings(corpus, tmp_path, ("l1", "t1", "l2")), lambda e, i: events.append((e, i)))
    assert [i["size"] for e, i in events if e == "skip"] == ["l1", "t1"]
    assert [i["size"] for e, i in events if e == "size"] == ["l2"]


def test_recorded_figures_agree_with_an_independent_recount(corpus, tmp_path):
    """The numbers a sweep writes, checked against figures computed here another way: the file
    coded again from the checkpoint (same bytes, so the record is real), the cross-entropy no
    more than the payload and within the coder's flush of it, bpb in a sane range, and the
    baselines recomputed with the standard library."""
    import bz2
    import io
    import zlib

    import ziplab
    from ziplab import container
    from ziplab.corpora import load_corpus

    results = run_sweep(_settings(corpus, tmp_path))
    data = load_corpus(corpus).heldout()[:3000]
    for r in results["sizes"]:
        blob = ziplab.compress(data, "nn", model=str(tmp_path / "checkpoints" / r["checkpoint"]), lanes=64)
        assert len(blob) == r["compressed_bytes"]
        head = container.read_header(io.BytesIO(blob)).header_size
        payload_bits = 8 * (len(blob) - head - 13)  # 13: block framing
        ce_bits = r["cross_entropy_bpb"] * len(data)
        flush = 8 * (1 + 2 * 4 + 2 * 8)  # substream table, 2 flushes
        if blob[head + 8] == container.CODED:
            assert ce_bits <= payload_bits <= ce_bits + flush
        else:  # stored raw: coding it would not have been smaller
            assert payload_bits == 8 * len(data) and ce_bits + flush >= payload_bits
        assert 0.5 < r["cross_entropy_bpb"] < 8.5 and r["actual_bpb"] < 8.5 + 8 * 600 / len(data)
    base = results["baselines"]
    assert base["zlib-9"] == pytest.approx(8 * len(zlib.compress(data, 9)) / len(data), abs=1e-4)
    assert base["bz2-9"] == pytest.approx(8 * len(bz2.compress(data, 9)) / len(data), abs=1e-4)


def test_codec_mix_adds_a_second_curve(corpus, tmp_path):
    s = SweepSettings(corpus=corpus, sizes=("l1",), train_bytes=8192, eval_bytes=3000, out=str(tmp_path),
                      codecs=("nn", "mix"))
    results = run_sweep(s)
    r = results["sizes"][0]
    assert 0 < r["mix"]["actual_bpb"] < 8.5 and r["mix"]["compressed_bytes"] > 0
    assert "mix-2" in results["baselines"]  # the context-mixing floor the curve is read against
    assert "inside `mix`" in (tmp_path / "report.md").read_text()


def test_checkpoints_are_reused_when_results_were_lost(corpus, tmp_path):
    run_sweep(_settings(corpus, tmp_path, ("l1",)))
    (tmp_path / "results.json").unlink()
    events: list[tuple[str, dict]] = []
    run_sweep(_settings(corpus, tmp_path, ("l1",)), lambda e, i: events.append((e, i)))
    assert [e for e, _ in events if e in ("reuse", "size")] == ["size", "reuse"]


def test_cli_quick_sweep(corpus, tmp_path):
    from click.testing import CliRunner

    from ziplab.cli.sweep import sweep

    r = CliRunner().invoke(sweep, ["--quick", "--corpus", corpus, "--sizes", "l1", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "curve.png").is_file()


def test_a_retuned_rung_is_retrained_not_reused(corpus, tmp_path, monkeypatch):
    import dataclasses

    from ziplab.models import ladder

    run_sweep(_settings(corpus, tmp_path, ("l1",)))
    (tmp_path / "results.json").unlink()
    retuned = dataclasses.replace(ladder.LADDER["l1"], lr=ladder.LADDER["l1"].lr / 2)
    monkeypatch.setitem(ladder.LADDER, "l1", retuned)
    events: list[tuple[str, dict]] = []
    run_sweep(_settings(corpus, tmp_path, ("l1",)), lambda e, i: events.append((e, i)))
    assert "reuse" not in [e for e, _ in events]
    ckpt = next((tmp_path / "checkpoints").glob("l1-*.safetensors"))
    from ziplab.models.checkpoint import read_meta

    assert read_meta(ckpt)["lr"] == retuned.lr and retuned.trained_by(read_meta(ckpt))


def test_a_size_recorded_with_another_recipe_is_measured_again(corpus, tmp_path):
    import json as _json

    run_sweep(_settings(corpus, tmp_path, ("l1",)))
    saved = _json.loads((tmp_path / "results.json").read_text())
    saved["sizes"][0]["recipe"]["lr"] = 123.0  # as if the rung had been retuned since
    (tmp_path / "results.json").write_text(_json.dumps(saved))
    events: list[tuple[str, dict]] = []
    res = run_sweep(_settings(corpus, tmp_path, ("l1",)), lambda e, i: events.append((e, i)))
    assert [e for e, _ in events if e in ("skip", "stale", "size")] == ["stale", "size"]
    assert res["sizes"][0]["recipe"]["lr"] != 123.0
