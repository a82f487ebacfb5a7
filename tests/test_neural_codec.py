"""`nn` and `ctx` codecs end to end: round trips, determinism across processes, and refusing
to decode with anything but the encoder's model."""

from __future__ import annotations

import io
import struct
import subprocess
import sys

import pytest

import ziplab
from ziplab import container
from ziplab.errors import ModelMismatchError, ZiplabError
from ziplab.models.portable import engines

from .conftest import SAMPLES

TEXT = b"".join(b"%d bottles of beer on the wall, take one down, pass it around.\n" % i for i in range(2000))
NN_CASES = ["empty", "one", "two", "all256", "random", "text", "run_ab"]


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nn_corpus")
    (folder / "train.txt").write_bytes(TEXT[:100_000])
    (folder / "dev.txt").write_bytes(TEXT[100_000:])
    return folder


@pytest.fixture(scope="module", params=["l1", "t1"])
def model(request, corpus_dir, tmp_path_factory):
    """A briefly trained tiny model: good enough that blocks are really coded, not stored."""
    from ziplab.models.train import TrainConfig, train_model

    path = tmp_path_factory.mktemp("ckpt") / f"{request.param}.safetensors"
    train_model(TrainConfig(request.param, str(corpus_dir), train_bytes=200_000, seed=1, out=str(path),
                            final_eval_bytes=4096))
    return str(path)


@pytest.fixture(scope="module")
def other_model(corpus_dir, tmp_path_factory):
    from ziplab.models.train import TrainConfig, train_model

    path = tmp_path_factory.mktemp("ckpt2") / "other.safetensors"
    train_model(TrainConfig("l1", str(corpus_dir), train_bytes=8192, seed=2, out=str(path), final_eval_bytes=4096))
    return str(path)


def _blocks_coded(blob: bytes) -> bool:
    src = io.BytesIO(blob)
    header = container.read_header(src)
    kinds = []
    for _ in range(header.blocks):
        raw, pay, kind, _crc = struct.unpack("<IIBI", src.read(13))
        src.read(pay)
        kinds.append(kind)
    return all(k == 0 for k in kinds)


@pytest.mark.parametrize("case", NN_CASES)
def test_nn_round_trip(model, case):
    data = SAMPLES[case]
    blob = ziplab.compress(data, "nn", model=model, lanes=16)
    assert ziplab.decompress(blob) == data


def test_nn_really_codes_text(model):
    data = TEXT[100_000:120_000]
    blob = ziplab.compress(data, "nn", model=model, lanes=8)
    assert _blocks_coded(blob) and len(blob) < len(data) * 0.7
    assert ziplab.decompress(blob) == data


@pytest.mark.parametrize("n,lanes", [(3, 64), (1000, 3), (4097, 16), (30_001, 7)])
def test_nn_lane_layouts(model, n, lanes):
    data = TEXT[:n]
    assert ziplab.decompress(ziplab.compress(data, "nn", model=model, lanes=lanes)) == data


def test_nn_block_boundaries(model):
    data = TEXT[:25_000]
    blob = ziplab.compress(data, "nn", model=model, lanes=4, block_size=6000)
    assert ziplab.decompress(blob) == data


def test_nn_is_deterministic_across_processes(model, tmp_path):
    data = TEXT[:20_000]
    blob = ziplab.compress(data, "nn", model=model, lanes=16)
    assert ziplab.compress(data, "nn", model=model, lanes=16) == blob
    src = tmp_path / "in.txt"
    src.write_bytes(data)
    out = subprocess.run([sys.executable, "-m", "ziplab", "compress", "-q", "-m", "nn", "--model", model,
                          "--lanes", "16", "--stdout", str(src)], capture_output=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout == blob
    (tmp_path / "x.zl").write_bytes(blob)
    back = subprocess.run([sys.executable, "-m", "ziplab", "decompress", "--stdout", str(tmp_path / "x.zl")],
                          capture_output=True, timeout=300)
    assert back.returncode == 0 and back.stdout == data


def test_nn_bytes_do_not_depend_on_the_worker_count(model):
    """Two substreams whatever the worker count: one process or two write the same file, and
    any number of processes decodes it."""
    data = TEXT[:70_000]
    blob = ziplab.compress(data, "nn", model=model, lanes=16, workers=2)
    assert ziplab.compress(data, "nn", model=model, lanes=16, workers=1) == blob
    assert container.read_header(io.BytesIO(blob)).params["substreams"] == 2
    assert ziplab.decompress(blob, workers=1) == data
    assert ziplab.decompress(blob, workers=2) == data


def test_nn_header_records_the_model_not_the_machine(model):
    header = container.read_header(io.BytesIO(ziplab.compress(b"hello", "nn", model=model)))
    p = header.params
    assert header.version == 2
    assert set(p) == {"model", "model_sha256", "engine", "quant_sha256", "family", "size", "config", "lanes",
                      "substreams"}
    assert len(p["model_sha256"]) == 64 and len(p["quant_sha256"]) == 64
    assert p["engine"] == engines(p["family"])[1]  # the newest


def test_nn_format_1_file_gets_a_one_line_error_naming_its_version(model):
    blob = ziplab.compress(TEXT[:3000], "nn", model=model, lanes=4)
    header = container.read_header(io.BytesIO(blob))
    header.version = 1
    with pytest.raises(ZiplabError, match="format 1") as info:
        ziplab.decompress(header.encode() + blob[header.header_size:])
    assert "\n" not in str(info.value)


def test_nn_wrong_weights_fail_before_decoding(model, other_model):
    blob = ziplab.compress(TEXT[:5000], "nn", model=model, lanes=4)
    with pytest.raises(ModelMismatchError, match="wrong model"):
        ziplab.decompress(blob, model=other_model)


def _with_params(blob: bytes, change) -> bytes:
    src = io.BytesIO(blob)
    header = container.read_header(src)
    change(header.params)
    return header.encode() + blob[header.header_size:]


def test_nn_altered_quantised_model_hash_fails_before_decoding(model):
    blob = ziplab.compress(TEXT[:5000], "nn", model=model, lanes=4)
    bad = _with_params(blob, lambda p: p.update(quant_sha256="0" * 64))
    with pytest.raises(ModelMismatchError, match="quantised"):
        ziplab.decompress(bad)


def test_nn_other_engine_fails_before_decoding(model):
    blob = ziplab.compress(TEXT[:5000], "nn", model=model, lanes=4)
    bad = _with_params(blob, lambda p: p.update(engine="lstm-int4-v9"))
    with pytest.raises(ModelMismatchError, match="engine"):
        ziplab.decompress(bad)


def test_nn_missing_model_is_a_clear_error(model, tmp_path):
    blob = ziplab.compress(TEXT[:5000], "nn", model=model, lanes=4)
    bad = _with_params(blob, lambda p: p.update(model=str(tmp_path / "gone.safetensors")))
    with pytest.raises(ModelMismatchError, match="--model"):
        ziplab.decompress(bad)


def test_nn_corrupted_payload_is_detected(model):
    blob = bytearray(ziplab.compress(TEXT[:20_000], "nn", model=model, lanes=4))
    blob[-7] ^= 0x20
    with pytest.raises(ZiplabError):
        ziplab.decompress(bytes(blob))


def test_nn_cli_leaves_no_output_on_wrong_model(model, other_model, tmp_path):
    src = tmp_path / "t.txt"
    src.write_bytes(TEXT[:3000])
    assert subprocess.run([sys.executable, "-m", "ziplab", "compress", "-q", "-m", "nn", "--model", model,
                           str(src)], timeout=300).returncode == 0
    src.unlink()
    r = subprocess.run([sys.executable, "-m", "ziplab", "decompress", "--model", other_model, str(src) + ".zl"],
                       capture_output=True, timeout=300)
    assert r.returncode == 1 and b"wrong model" in r.stderr and b"Traceback" not in r.stderr
    assert not src.exists()


# --- ctx ------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", [0, 2, 4])
def test_ctx_round_trip(sample, level):
    assert ziplab.decompress(ziplab.compress(sample, "ctx", level, lanes=8)) == sample


def test_ctx_beats_order0_on_text():
    data = SAMPLES["text"] + TEXT[:50_000]
    assert len(ziplab.compress(data, "ctx", 3)) < len(ziplab.compress(data, "huffman")) * 0.6


def test_ctx_is_deterministic():
    data = TEXT[:30_000]
    assert ziplab.compress(data, "ctx", 2) == ziplab.compress(data, "ctx", 2)


def test_ctx_header_crc_guards_params():
    blob = ziplab.compress(TEXT[:3000], "ctx", 2)
    raw = bytearray(blob)
    params_at = len(container.MAGIC) + 3 + len("ctx") + 2  # after magic, version, flags, name, length
    raw[params_at + 2] ^= 1
    with pytest.raises(ZiplabError):
        ziplab.decompress(bytes(raw))
