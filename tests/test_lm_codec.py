"""The `lm` codec: token ids range-coded with any language model, lossless on every input.

- round trips with a Llama with grouped queries (on the portable Llama engine since it exists:
  tests/test_lm_llama.py), a float model (a GPT-2 whose 64 positions make the coder rebuild its
  cache many times) and on the portable engine (a lab checkpoint);
- golden files: the portable one is decoded by test_portable (v2-lm-manifest.json); the ones
  here (lm-hf-golden.json) are an export (portable) and a float file, which decodes where its
  recorded environment is this machine's and must refuse in one line anywhere else;
- refusals in one line: another environment, another model or tokenizer, a tokenizer whose
  round trip is not exact; corrupt files never decode to other bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

import ziplab
from ziplab.errors import FormatError, ModelMismatchError, ZiplabError

from .conftest import SAMPLES, zl

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"
T1 = str(GOLDEN / "t1-golden.safetensors")
TINY = f"hf:{GOLDEN / 'lm-tiny'}"


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    pytest.importorskip("transformers")
    from .hf_models import gpt2_dir

    return "hf:" + str(gpt2_dir(tmp_path_factory.mktemp("gpt2") / "m"))


def _needs_hf():
    pytest.importorskip("transformers")


#: every kind of input, short enough for a float model stepping one token at a time
CASES = ["empty", "one", "two", "all256", "random", "text", "run_ab", "skewed"]


@pytest.mark.parametrize("name", CASES)
def test_llama_round_trips(name):
    _needs_hf()
    data = SAMPLES[name][:3000]
    stats = ziplab.CodingStats()
    blob = ziplab.compress(data, "lm", model=TINY, lanes=4, stats=stats)
    assert ziplab.decompress(blob) == data
    if data:
        assert stats.ideal_bits > 0


@pytest.mark.parametrize("lanes", [1, 3])
def test_a_short_context_rebuilds_the_cache_the_same_way_on_both_sides(gpt2, lanes):
    data = SAMPLES["text"][:1500] + bytes(range(256))  # ~1000 tokens per lane against 64 positions
    blob = ziplab.compress(data, "lm", model=gpt2, lanes=lanes, block_size=1000)
    header = ziplab.read_header(io.BytesIO(blob))
    assert (header.params["context"], header.params["keep"]) == (64, 32)
    assert ziplab.decompress(blob) == data


@pytest.mark.parametrize("name", ["empty", "all256", "text", "random"])
def test_portable_engine_round_trips_with_a_lab_checkpoint(name):
    data = SAMPLES[name][:4000]
    blob = ziplab.compress(data, "lm", model=T1, lanes=4)
    header = ziplab.read_header(io.BytesIO(blob))
    from ziplab.models.portable import transformer

    assert header.params["engine"] == transformer.ENGINE and "environment" not in header.params  # the newest
    assert ziplab.decompress(blob) == data


def _hf_golden() -> list[dict]:
    return json.loads((GOLDEN / "lm-hf-golden.json").read_text())


@pytest.mark.parametrize("entry", _hf_golden(), ids=lambda e: e["file"])
def test_hf_golden_file_decodes_or_refuses_in_one_line(entry):
    _needs_hf()
    from ziplab.lm.model import environment

    blob = (GOLDEN / entry["file"]).read_bytes()
    model = "hf:" + str(ROOT / entry["model"][3:])
    if "environment" in entry and entry["environment"] != environment(threads=1):
        with pytest.raises(ModelMismatchError, match="float inference on") as info:
            ziplab.decompress(blob, model=model)
        assert "\n" not in str(info.value)
        return
    data = ziplab.decompress(blob, model=model)
    assert len(data) == entry["size"] and hashlib.sha256(data).hexdigest() == entry["sha256"]


def test_another_environment_refuses_before_loading_the_model(monkeypatch, gpt2):
    import ziplab.lm.model as lm_model

    real = lm_model.environment
    monkeypatch.setattr(lm_model, "environment", lambda **kw: real(**kw).replace("threads 1", "threads 1; other cpu"))
    blob = ziplab.compress(b"some text to code", "lm", model=gpt2, lanes=2)
    monkeypatch.setattr(lm_model, "environment", real)
    with pytest.raises(ModelMismatchError, match=r"cannot be decoded here") as info:
        ziplab.decompress(blob)
    assert "\n" not in str(info.value)


def test_another_model_or_tokenizer_is_refused(tmp_path, gpt2):
    import shutil

    blob = ziplab.compress(b"hello hello hello", "lm", model=TINY, lanes=2)
    with pytest.raises(ModelMismatchError, match="wrong model"):
        ziplab.decompress(blob, model=gpt2)
    other = tmp_path / "tok"
    shutil.copytree(GOLDEN / "lm-tiny", other)
    cfg = json.loads((other / "tokenizer_config.json").read_text())
    cfg["model_max_length"] = 12345  # same ids, another tokenizer file: recorded, so refused
    (other / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelMismatchError, match="wrong tokenizer"):
        ziplab.decompress(blob, model=f"hf:{other}")


def test_a_tokenizer_that_is_not_exact_for_the_file_is_refused_before_coding(tmp_path):
    _needs_hf()
    import shutil

    d = tmp_path / "lower"
    shutil.copytree(GOLDEN / "lm-tiny", d)
    spec = json.loads((d / "tokenizer.json").read_text())
    spec["normalizer"] = {"type": "Lowercase"}
    (d / "tokenizer.json").write_text(json.dumps(spec))
    assert ziplab.decompress(ziplab.compress(b"all lower", "lm", model=f"hf:{d}")) == b"all lower"
    with pytest.raises(ZiplabError, match="does not give this file back exactly") as info:
        ziplab.compress(b"Mixed Case", "lm", model=f"hf:{d}")
    assert "\n" not in str(info.value)


def test_lm_needs_a_model_and_takes_no_workers():
    with pytest.raises(ZiplabError, match="lm needs --model"):
        ziplab.compress(b"x", "lm")
    with pytest.raises(ZiplabError, match="workers"):
        ziplab.compress(b"x", "lm", model=T1, workers=2)


def test_headers_that_mix_engines_are_format_errors():
    from ziplab.codecs import get

    codec = get("lm")
    blob = ziplab.compress(b"hello", "lm", model=T1, lanes=2)
    params = ziplab.read_header(io.BytesIO(blob)).params
    codec.check_params(params)
    for bad in ({**params, "environment": "x"}, {**params, "start": -1}, {**params, "lanes": 0},
                {k: v for k, v in params.items() if k != "quant_sha256"}):
        with pytest.raises(FormatError):
            codec.check_params(bad)


def test_mutated_lm_files_never_decode_to_other_bytes():
    from .test_hardening import fuzz

    counts = fuzz("lm", None, {"model": T1, "lanes": 4}, cases=60)
    assert counts["errors"] > counts["cases"] // 2


@pytest.mark.parametrize("which", ["llama", "gpt2"])
def test_cli_round_trip_and_info(tmp_path, which, request):
    _needs_hf()
    model = TINY if which == "llama" else request.getfixturevalue("gpt2")
    src = tmp_path / "a.txt"
    src.write_bytes(SAMPLES["text"][:2000] + bytes(range(256)))
    r = zl("compress", "-m", "lm", "--model", model, "--lanes", "4", "-q", str(src))
    assert r.returncode == 0, r.stderr.decode()
    r = zl("info", str(src) + ".zl")
    if which == "llama":  # the portable engine: no environment to match
        assert b"llama-int8x8-v1" in r.stdout and b"environment" not in r.stdout
    else:
        assert b"torch-float32-v1" in r.stdout and b"environment" in r.stdout
    src.rename(tmp_path / "orig.txt")
    r = zl("decompress", "-q", str(tmp_path / "a.txt.zl"))
    assert r.returncode == 0 and src.read_bytes() == (tmp_path / "orig.txt").read_bytes()


def test_portable_lm_gives_the_same_bytes_under_the_most_portable_kernels(tmp_path):
    """lm on the portable engine, encoded natively and under torch's scalar kernels, SSE4 oneDNN
    and MKL and generic-x86-64 numba (test_portable's MINIMAL): identical files."""
    import os
    import subprocess
    import sys

    from .test_portable import KERNEL_VARS, MINIMAL

    data = SAMPLES["text"][:1500] + bytes(range(256))
    script = ("import sys, ziplab; from pathlib import Path; "
              f"Path(sys.argv[1]).write_bytes(ziplab.compress(Path(sys.argv[2]).read_bytes(), 'lm', model={T1!r}, lanes=4))")
    (tmp_path / "in").write_bytes(data)
    outs = []
    for name, extra in (("native", {}), ("minimal", MINIMAL)):
        env = {k: v for k, v in os.environ.items() if k not in KERNEL_VARS}
        env.update(extra)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        r = subprocess.run([sys.executable, "-c", script, str(tmp_path / name), str(tmp_path / "in")],
                           capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
        assert r.returncode == 0, r.stderr[-2000:]
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1] and ziplab.decompress(outs[1]) == data
