"""Training end to end on a few KB: CLI, checkpoint contents, determinism, `ziplab models`."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from ziplab.cli import cli  # noqa: E402
from ziplab.errors import ZiplabError  # noqa: E402
from ziplab.models.checkpoint import load_model, read_meta  # noqa: E402
from ziplab.models.train import TrainConfig, lr_at, train_model  # noqa: E402

TEXT = (b"The quick brown fox jumps over the lazy dog. " * 40 + b"Pack my box with five dozen liquor jugs. " * 40) * 3


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "train.txt").write_bytes(TEXT)
    (folder / "dev.txt").write_bytes(TEXT[:2000])
    return folder


def test_cli_train_writes_loadable_checkpoint(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("ZIPLAB_MODELS_DIR", str(tmp_path / "models"))
    out = tmp_path / "l1.safetensors"
    res = CliRunner().invoke(cli, ["train", "--size", "l1", "--corpus", str(corpus), "--train-bytes", "20000",
                                   "--seed", "3", "--threads", "1", "--quiet", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "held-out bpb" in res.output
    meta = read_meta(out)
    for key in ("family", "size", "config", "corpus", "corpus_sha256", "bytes_seen", "seed", "train_seconds",
                "final_train_bpb", "final_heldout_bpb", "command"):
        assert key in meta
    assert meta["seed"] == 3 and meta["bytes_seen"] >= 20000 and meta["size"] == "l1"
    assert json.loads(out.with_suffix(".json").read_text()) == meta
    pred = load_model(str(out))
    assert pred.config["family"] == "lstm"


def test_default_location_and_load_by_size(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("ZIPLAB_MODELS_DIR", str(tmp_path / "models"))
    res = train_model(TrainConfig("t1", str(corpus), train_bytes=8192, seed=0, threads=1, final_eval_bytes=1024))
    assert res.path.parent == tmp_path / "models" and res.path.name.startswith("t1-")
    assert load_model("t1").weights_sha256 == load_model(str(res.path)).weights_sha256


def test_training_is_deterministic_given_seed_and_threads(corpus, tmp_path):
    shas = []
    for name in ("a", "b"):
        res = train_model(TrainConfig("l1", str(corpus), train_bytes=12000, seed=5, threads=1,
                                      out=str(tmp_path / f"{name}.safetensors"), final_eval_bytes=1024))
        shas.append(load_model(str(res.path)).weights_sha256)
    assert shas[0] == shas[1]


def test_training_restores_the_callers_thread_count(corpus, tmp_path):
    import torch

    before = torch.get_num_threads()
    threads = 1 if before != 1 else 2
    res = train_model(TrainConfig("l1", str(corpus), train_bytes=4096, seed=0, threads=threads,
                                  out=str(tmp_path / "t.safetensors"), final_eval_bytes=1024))
    assert read_meta(res.path)["threads"] == threads and torch.get_num_threads() == before


def test_bad_size_and_corpus_are_ziplab_errors(corpus, tmp_path):
    with pytest.raises(ZiplabError):
        train_model(TrainConfig("z9", str(corpus), train_bytes=1000))
    with pytest.raises(ZiplabError):
        train_model(TrainConfig("l1", str(tmp_path / "nope"), train_bytes=1000))


def test_schedule_warms_up_then_decays():
    assert lr_at(0.0, 0, 1.0, 10) < lr_at(0.0, 9, 1.0, 10)
    assert lr_at(0.0, 100, 1.0, 10) == pytest.approx(1.0)
    assert lr_at(1.0, 100, 1.0, 10) == pytest.approx(0.1)


def test_models_command_lists_ladder(tmp_path, monkeypatch):
    monkeypatch.setenv("ZIPLAB_MODELS_DIR", str(tmp_path))
    res = CliRunner().invoke(cli, ["models"])
    assert res.exit_code == 0, res.output
    for size in ("t1", "t6", "l1", "l6"):
        assert size in res.output
    assert "shipped default" in res.output
    res = CliRunner().invoke(cli, ["models", "--json"])
    assert len(json.loads(res.output)["ladder"]) >= 12
