"""Any language model as a predictor: exact tokens, checked Hugging Face directories, sliding-
window scoring, and the export chain (lab transformer -> HF directory -> same CE, same `nn` bytes).

Models are built here (tests/hf_models.py) or committed in tests/data/golden (tiny); nothing is
downloaded. Tests that need `transformers` skip without the 'hf' extra (CI installs it).
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

import ziplab
from ziplab.lm.score import ScoreSettings, windows
from ziplab.lm.tokens import ByteTokens

from .conftest import SAMPLES, zl

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"
T1 = GOLDEN / "t1-golden.safetensors"
T1_HF = GOLDEN / "t1-hf"
TINY = GOLDEN / "lm-tiny"


def needs_hf():
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def bpe():
    needs_hf()
    from ziplab.lm.hf import load_hf

    return load_hf(f"hf:{TINY}").tokens


# ---- tokens --------------------------------------------------------------------------------
def test_byte_tokens_are_the_bytes(sample):
    tokens = ByteTokens()
    ids = tokens.encode(sample)
    assert ids.tolist() == list(sample) and tokens.decode(ids) == sample


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_byte_level_bpe_round_trips_every_sample_exactly(bpe, name):
    data = SAMPLES[name][:6000]
    ids = bpe.encode(data)
    assert bpe.decode(ids) == data
    if name == "text":
        assert len(ids) < 0.9 * len(data)  # merges are used, not only single bytes (300 ids, trained on code)


def test_bpe_handles_text_that_is_not_utf8_and_special_token_text(bpe):
    data = "café ".encode() + b"\xff\xfe\xc3" + b"<|endoftext|> tail \x80" + "東京".encode()[:-1]
    assert bpe.decode(bpe.encode(data)) == data


def test_a_tokenizer_that_changes_the_text_is_refused_with_the_reason():
    needs_hf()
    from tokenizers import normalizers

    from ziplab.lm.tokens import BpeTokens, TokenizerError

    from .hf_models import train_tokenizer

    tok = train_tokenizer()
    tok.normalizer = normalizers.Lowercase()
    tokens = BpeTokens(tok, 0, "0" * 64)
    assert tokens.decode(tokens.encode(b"lower case only")) == b"lower case only"
    with pytest.raises(TokenizerError, match="first difference at byte 0") as info:
        tokens.encode(b"Upper")
    assert "\n" not in str(info.value)


def test_a_tokenizer_that_is_not_byte_level_is_refused():
    needs_hf()
    from tokenizers import Tokenizer, models, pre_tokenizers

    from ziplab.lm.tokens import BpeTokens, TokenizerError

    tok = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(TokenizerError, match="byte-level"):
        BpeTokens(tok, 0, "0" * 64)


# ---- scoring -------------------------------------------------------------------------------
@pytest.mark.parametrize("n, window, stride", [(2, 5, 2), (10, 4, 1), (100, 19, 5), (1000, 1900, 512), (50, 8, 7)])
def test_windows_score_every_target_once_with_enough_context(n, window, stride):
    seen = []
    for b, e, first in windows(n, window, stride):
        assert 0 <= b < first <= e <= n and e - b <= window
        seen += list(range(first, e))
        if first > 1:
            assert first - b >= window - stride or e == n  # context of at least window - stride
    assert seen == list(range(1, n))


def test_score_of_a_lab_model_matches_its_own_cross_entropy():
    """One window over the whole text: the same sum as the module's own forward pass."""
    import torch
    import torch.nn.functional as F

    from ziplab.lm import load_lm
    from ziplab.lm.score import score

    lm = load_lm(str(T1))
    data = SAMPLES["text"][:63]
    result = score(lm, data, ScoreSettings(window=64, stride=32))
    x = torch.tensor([[256] + list(data[:-1])])
    logits = lm.module(x)[0][0]
    want = F.cross_entropy(logits.double(), torch.tensor(list(data)), reduction="sum").item() / math.log(2)
    assert result.tokens == 63 and abs(result.bits - want) < 1e-6 and result.window == 64


def test_a_window_beyond_the_model_keeps_the_strides_share():
    from ziplab.lm import load_lm
    from ziplab.lm.score import effective

    lm = load_lm(str(T1))  # context 64
    assert effective(lm, ScoreSettings()) == (64, 17)
    assert effective(lm, ScoreSettings(window=32, stride=8)) == (32, 8)


# ---- the export chain ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    needs_hf()
    from ziplab.lm.export import export_checkpoint

    return export_checkpoint(str(T1), tmp_path_factory.mktemp("export") / "t1")


def test_export_gives_the_same_cross_entropy(exported):
    from ziplab.lm import load_lm
    from ziplab.lm.score import score

    data = (ROOT / "README.md").read_bytes()[:6000]
    lab, hf = load_lm(str(T1)), load_lm(f"hf:{exported}")
    a, b = score(lab, data, ScoreSettings(batch=8)), score(hf, data, ScoreSettings(batch=8))
    assert abs(a.bpb - b.bpb) < 1e-4
    assert hf.non_embedding_params() == lab.non_embedding_params() == 6408


def test_export_gives_identical_nn_bytes_through_the_portable_engine(exported):
    data = SAMPLES["text"][:5000] + bytes(range(256))
    a = ziplab.compress(data, "nn", model=str(T1), lanes=8)
    b = ziplab.compress(data, "nn", model=f"hf:{exported}", lanes=8)
    ha, hb = ziplab.read_header(io.BytesIO(a)), ziplab.read_header(io.BytesIO(b))
    assert a[ha.header_size:] == b[hb.header_size:]  # the payload: every coded byte
    assert {k: v for k, v in ha.params.items() if k != "model"} == {k: v for k, v in hb.params.items() if k != "model"}
    assert ziplab.decompress(a, model=f"hf:{exported}") == data  # a checkpoint's file decodes with its export


def test_the_committed_export_is_what_export_writes_now(exported):
    from safetensors.numpy import load_file

    old, new = load_file(str(T1_HF / "model.safetensors")), load_file(str(exported / "model.safetensors"))
    assert sorted(old) == sorted(new) and all(np.array_equal(old[k], new[k]) for k in old)


def test_lstms_do_not_export(tmp_path):
    needs_hf()
    from ziplab.lm.export import ExportError, export_checkpoint

    with pytest.raises(ExportError, match="no Hugging Face counterpart"):
        export_checkpoint(None, tmp_path / "x")  # the shipped LSTM


# ---- hostile and broken directories --------------------------------------------------------
def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _edit_config(d: Path, **changes) -> None:
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(changes)
    (d / "config.json").write_text(json.dumps(cfg))


def _break(kind: str, d: Path) -> None:
    from safetensors.numpy import load_file, save_file

    weights = d / "model.safetensors"
    if kind == "no config":
        (d / "config.json").unlink()
    elif kind == "config not json":
        (d / "config.json").write_text("{not json")
    elif kind == "config too big":
        (d / "config.json").write_text(json.dumps({"model_type": "llama", "pad": "x" * (2 << 20)}))
    elif kind == "huge hidden size":
        _edit_config(d, hidden_size=1 << 30, intermediate_size=1 << 31)
    elif kind == "remote code":
        _edit_config(d, auto_map={"AutoModelForCausalLM": "evil.Model"})
    elif kind == "unknown model type":
        _edit_config(d, model_type="not-a-model")
    elif kind == "pickle only":
        weights.unlink()
        (d / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    elif kind == "truncated weights":
        weights.write_bytes(weights.read_bytes()[:100])
    elif kind in ("missing tensor", "extra tensor", "nan weights", "int weights"):
        t = load_file(str(weights))
        key = sorted(t)[0]
        if kind == "missing tensor":
            t.pop("model.norm.weight")
        elif kind == "extra tensor":
            t["model.evil"] = np.zeros(3, dtype=np.float32)
        elif kind == "nan weights":
            t[key] = t[key].copy()
            t[key].flat[0] = np.nan
        else:
            t[key] = t[key].astype(np.int32)
        save_file(t, str(weights))
    elif kind == "no tokenizer":
        (d / "tokenizer.json").unlink()
    elif kind == "tokenizer not json":
        (d / "tokenizer.json").write_text("[]")


BROKEN = ["no config", "config not json", "config too big", "huge hidden size", "remote code", "unknown model type",
          "pickle only", "truncated weights", "missing tensor", "extra tensor", "nan weights", "int weights",
          "no tokenizer", "tokenizer not json"]


@pytest.mark.parametrize("kind", BROKEN)
def test_a_broken_or_hostile_directory_is_one_line(kind, tmp_path):
    needs_hf()
    from ziplab.lm.hf import HFLoadError, load_hf

    d = _copy(TINY, tmp_path / "m")
    _break(kind, d)
    with pytest.raises(HFLoadError) as info:
        load_hf(f"hf:{d}")
    assert "\n" not in str(info.value) and str(d) in str(info.value)


def test_the_cli_says_one_line_for_a_bad_directory(tmp_path):
    needs_hf()
    d = _copy(TINY, tmp_path / "m")
    _break("huge hidden size", d)
    (tmp_path / "t.txt").write_bytes(b"hello")
    r = zl("score", "--model", f"hf:{d}", str(tmp_path / "t.txt"), "-o", "")
    err = r.stderr.decode().strip()
    assert r.returncode == 1 and err.startswith("ziplab: error:") and len(err.splitlines()) == 1, err


def test_without_the_extra_the_error_names_it(monkeypatch):
    import sys

    from ziplab.lm.hf import HFLoadError, require_hf

    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(HFLoadError, match=r"ziplab\[hf\]"):
        require_hf()


def test_importing_ziplab_lm_imports_neither_torch_nor_transformers():
    import subprocess
    import sys

    code = "import sys, ziplab.lm, ziplab.codecs.lm; print('torch' in sys.modules, 'transformers' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.split() == ["False", "False"], r.stderr


# ---- ziplab score --------------------------------------------------------------------------
def test_score_prints_bpb_and_writes_json_and_csv(tmp_path):
    needs_hf()
    text = tmp_path / "t.txt"
    text.write_bytes(SAMPLES["text"][:3000])
    out, csv = tmp_path / "s.json", tmp_path / "s.csv"
    r = zl("score", "--model", f"hf:{TINY}", "--model", str(T1), "--window", "64", "--stride", "16", str(text),
           "-o", str(out), "--csv", str(csv), "-q")
    assert r.returncode == 0, r.stderr.decode()
    records = json.loads(out.read_text())
    assert [rec["model"] for rec in records] == [f"hf:{TINY}", "t1@t1-golden"]
    assert all(rec["bytes"] == 3000 and 0 < rec["bpb"] < 12 for rec in records)
    assert records[0]["tokens"] < 3000 and records[1]["tokens"] == 3000
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 2 and f"{records[0]['bpb']:.4f} bpb" in lines[0]
    assert csv.read_text().splitlines()[0].startswith("model,family,text,bytes,tokens,bpb")
