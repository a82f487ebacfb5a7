"""`mix`: context mixing with and without a neural model.

The block coder is called directly (no raw-store fallback), so empty, 1-byte, all-256, random
and skewed inputs really go through the models and the range coder. Oracles: exact round trips;
the encoder's ideal bits against the real payload; the context models must beat an order-0
coder on text and learn a repeat (the match model); the neural input must help on text the model
knows; header fields are validated before any model is built."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

import ziplab
from ziplab import container
from ziplab.codecs import mix
from ziplab.codecs.kernels import mixing
from ziplab.codecs.base import CodingOptions, CodingStats
from ziplab.container import Header
from ziplab.errors import FormatError, ModelMismatchError

from .conftest import SAMPLES

T1 = str(Path(__file__).resolve().parent / "data" / "golden" / "t1-golden.safetensors")
TEXT = SAMPLES["text"]


def _block(data: bytes, model: str | None = "none", level: int = 1, lanes: int = 4) -> tuple[bytes, CodingStats, dict]:
    stats = CodingStats()
    encoder = mix.CODEC.open_encoder(level, CodingOptions(model=model, lanes=lanes), stats=stats)
    payload = encoder.encode(np.frombuffer(data, dtype=np.uint8))
    back = mix.CODEC.open_decoder(encoder.params).decode(payload, len(data))
    assert back.tobytes() == data
    return payload, stats, encoder.params


@pytest.mark.parametrize("name", ["empty", "one", "two", "all256", "random", "zeros", "skewed", "text"])
@pytest.mark.parametrize("model", ["none", T1], ids=["cm", "cm+nn"])
def test_block_coder_round_trips_every_kind_of_input(name, model):
    data = SAMPLES[name][:6000]
    payload, stats, _ = _block(data, model)
    if data:
        # the payload is the ideal code length plus the coder's flush (a few 32-bit words)
        assert stats.ideal_bits / 8 <= len(payload) <= stats.ideal_bits / 8 * 1.01 + 16


def test_context_models_learn_text_and_repeats():
    text = TEXT[:6000]
    payload, _, _ = _block(text)
    order0 = -sum(c * np.log2(c / len(text)) for c in np.bincount(np.frombuffer(text, np.uint8)) if c) / 8
    assert len(payload) < 0.5 * order0
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
    once, _, _ = _block(noise, lanes=1)
    twice, _, _ = _block(noise + noise, lanes=1)
    assert len(twice) - len(once) < 0.05 * len(once)  # the second copy is nearly free: the match model


PROSE = (b"When the evening came, the old man walked down to the harbour as he had done every day for "
         b"forty years. The boats were coming in slowly, one after another, and the gulls followed them "
         b"with loud and hungry cries. He sat on the stone wall by the water and watched the fishermen "
         b"unload their nets. Nobody spoke to him, and he did not mind; he had never been a man of many "
         b"words, and the sea had always said enough for both of them. Later, when the lamps were lit in "
         b"the little houses along the shore, he rose, brushed the salt from his coat, and went home to "
         b"his supper of bread and cheese, thinking of the morning and of the weather it would bring.")


def test_neural_input_helps_on_text():
    """The shipped model knows English: mixing it in must beat the context models alone on prose
    they have never seen (and which barely repeats itself)."""
    alone, _, _ = _block(PROSE, "none", lanes=1)
    mixed, _, _ = _block(PROSE, "shipped", lanes=1)
    assert len(mixed) < 0.8 * len(alone)


def test_lanes_share_tables_but_keep_their_own_history():
    """Negative control for the lane schedule: with lanes coded in a different order the bytes
    differ (so the schedule is really part of the format), and both still round-trip."""
    data = TEXT[:5000]
    a, _, _ = _block(data, lanes=8)  # a small block is one substream, of lanes / 2 lanes
    b, _, _ = _block(data, lanes=10)
    assert a != b


def test_determinism_and_levels():
    data = TEXT[:3000] + SAMPLES["all256"]
    blobs = {lv: ziplab.compress(data, "mix", lv, model="none", lanes=4) for lv in (1, 2, 3)}
    for lv, blob in blobs.items():
        assert ziplab.compress(data, "mix", lv, model="none", lanes=4) == blob
        assert ziplab.decompress(blob) == data


def test_multi_block_files_round_trip():
    data = TEXT[:2500] + SAMPLES["random"][:800] + TEXT[2500:4000]
    blob = ziplab.compress(data, "mix", 1, model=T1, lanes=4, block_size=1024)
    assert container.read_header(io.BytesIO(blob)).block_size == 1024
    assert ziplab.decompress(blob, model=T1) == data


def test_tables_are_sized_by_the_block():
    assert mix.table_bits(3, 100) == 16
    assert mix.table_bits(3, 1 << 30) == mix.LEVELS[3].table_bits
    assert mix.table_bits(1, 1 << 30) == mix.LEVELS[1].table_bits


def test_tables_are_exact_and_monotone():
    assert mixing.SQUASH[0] >= 1 and mixing.SQUASH[-1] <= 65535
    assert np.all(np.diff(mixing.SQUASH) >= 0) and np.all(np.diff(mixing.STRETCH) >= 0)
    assert mixing.SQUASH[mixing.STRETCH_MAX] == 32768 and mixing.STRETCH[2048] == 0


def test_the_stored_tables_are_the_ones_decimal_arithmetic_builds(tmp_path, monkeypatch):
    from ziplab.codecs.kernels import mixing_tables

    squash, stretch = mixing_tables._build_tables()
    assert mixing_tables.STORED.is_file()  # shipped: start-up loads instead of building
    assert np.array_equal(mixing.SQUASH, squash) and np.array_equal(mixing.STRETCH, stretch)
    for bad in (b"", b"not a zip", None):  # a damaged or missing file is rebuilt, never trusted
        path = tmp_path / "t.npz"
        if bad is None:
            np.savez(path, squash=squash[:-1], stretch=stretch)
        else:
            path.write_bytes(bad)
        monkeypatch.setattr(mixing_tables, "STORED", path)
        got = mixing_tables._load_tables()
        assert np.array_equal(got[0], squash) and np.array_equal(got[1], stretch)


def _with_params(blob: bytes, params: dict) -> bytes:
    header = container.read_header(io.BytesIO(blob))
    crafted = Header(header.codec, params, header.block_size, header.original_size, header.crc32, version=header.version)
    return crafted.encode() + blob[header.header_size:]


@pytest.mark.parametrize("change", [
    {"level": 4}, {"level": True}, {"lanes": 0}, {"lanes": 5000}, {"model": ""}, {"workers": 2},
    {"model_sha256": "0" * 64}, {"engine": "x"}, {"config": {}},
], ids=lambda c: ",".join(c))
def test_hostile_cm_params_are_one_line_format_errors(change):
    blob = ziplab.compress(TEXT[:2000], "mix", 1, model="none", lanes=4)
    params = {**container.read_header(io.BytesIO(blob)).params, **change}
    with pytest.raises(FormatError) as info:
        ziplab.decompress(_with_params(blob, params))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("drop", ["model_sha256", "engine", "quant_sha256", "config"])
def test_neural_header_must_carry_every_digest(drop):
    blob = ziplab.compress(TEXT[:2000], "mix", 1, model=T1, lanes=4)
    params = dict(container.read_header(io.BytesIO(blob)).params)
    del params[drop]
    with pytest.raises(FormatError):
        ziplab.decompress(_with_params(blob, params), model=T1)


def test_wrong_model_is_refused_in_one_line():
    blob = ziplab.compress(TEXT[:2000], "mix", 1, model=T1, lanes=4)
    with pytest.raises(ModelMismatchError) as info:
        ziplab.decompress(blob, model="shipped")  # the shipped LSTM, not the file's transformer
    assert "\n" not in str(info.value)


def test_bench_files_round_trip(bench_file):
    """Canterbury texts, a JPEG, a PDF, protobuf and HTML: pure context mixing, exact round trip,
    never bigger than the framing allows."""
    data = bench_file[:150_000]
    blob = ziplab.compress(data, "mix", 1, model="none")
    assert ziplab.decompress(blob) == data and len(blob) <= len(data) + 64


def test_tables_neither_change_nor_depend_on_the_hosts_decimal_context():
    """A host application's decimal settings must not reach the coder's tables, nor may
    importing the coder change them (no global state changed on import)."""
    import subprocess
    import sys

    code = ("import decimal, hashlib; c = decimal.getcontext(); c.prec, c.rounding = 5, decimal.ROUND_DOWN; "
            "from ziplab.codecs.kernels import mixing; "
            "print(hashlib.sha256(mixing.SQUASH.tobytes() + mixing.STRETCH.tobytes()).hexdigest(), "
            "decimal.getcontext().prec, decimal.getcontext().rounding)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["b013a4e074af3b400a7989f3f7575b34ac3d22a2216dde106fc7f8f8db8cbdb7", "5", "ROUND_DOWN"]


# ---- format 3: mixer engine 3, levels that name models, two models -------------------------
def test_new_files_are_format_4_and_name_their_mixer_engine_and_substreams():
    blob = ziplab.compress(TEXT[:2000], "mix", 1, model="none", lanes=4)
    header = container.read_header(io.BytesIO(blob))
    assert header.version == 4 and header.params["mixer"] == 3
    assert header.params["substreams"] == mix.LEVELS[1].substreams == 2


def test_levels_mix_the_models_their_row_names_and_model_replaces_them():
    for level, row in mix.LEVELS.items():
        blob = ziplab.compress(TEXT[:1500], "mix", level, lanes=4)
        params = container.read_header(io.BytesIO(blob)).params
        assert [params[k] for k in ("model", "model_2") if k in params] == list(row.models)
        assert ziplab.decompress(blob) == TEXT[:1500]
    params = container.read_header(io.BytesIO(ziplab.compress(TEXT[:1500], "mix", 3, model=T1, lanes=4))).params
    assert params["model"] == T1 and "model_2" not in params


def test_two_models_round_trip_and_code_differently_from_either_alone(monkeypatch):
    """A level may mix two models (format 3): the pair round-trips and is not either model alone.
    (Whether it pays is measured, not assumed: benchmarks/mix.py's ablation.)"""
    data = TEXT[:3000]
    monkeypatch.setitem(mix.LEVELS, 3, mix.LEVELS[3]._replace(models=(mix.STRONG_MODEL, mix.FAST_MODEL)))
    pair, _, params = _block(data, model=None, level=3)
    assert params["model"] == mix.STRONG_MODEL and params["model_2"] == mix.FAST_MODEL
    assert pair not in (_block(data, model=mix.STRONG_MODEL, level=3)[0], _block(data, model=mix.FAST_MODEL, level=3)[0])


def test_a_second_models_fields_come_all_or_none(monkeypatch):
    monkeypatch.setitem(mix.LEVELS, 3, mix.LEVELS[3]._replace(models=(mix.STRONG_MODEL, mix.FAST_MODEL)))
    blob = ziplab.compress(TEXT[:1500], "mix", 3, lanes=4)
    params = dict(container.read_header(io.BytesIO(blob)).params)
    assert "model_2" in params
    partial = {k: v for k, v in params.items() if k != "engine_2"}
    with pytest.raises(FormatError, match="second model"):
        ziplab.decompress(_with_params(blob, partial))
    no_mixer = {k: v for k, v in params.items() if k != "mixer"}
    with pytest.raises(FormatError, match="substreams without a mixer engine"):
        ziplab.decompress(_with_params(blob, no_mixer))
    no_mixer.pop("substreams")
    with pytest.raises(FormatError, match="second model"):
        ziplab.decompress(_with_params(blob, no_mixer))


@pytest.mark.parametrize("mixer", [2, 4, "3", None])
def test_hostile_mixer_engine_is_a_one_line_format_error(mixer):
    blob = ziplab.compress(TEXT[:1500], "mix", 1, model="none", lanes=4)
    params = {**container.read_header(io.BytesIO(blob)).params, "mixer": mixer}
    with pytest.raises(FormatError) as info:
        ziplab.decompress(_with_params(blob, params))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("ablate", [mixing.NO_NEW_CONTEXTS, mixing.NO_NEURAL_SSE, mixing.NO_THIRD_MIXER,
                                    *(mixing.NO_CONTEXT << i for i in range(len(mixing.NEW_CONTEXT_NAMES)))])
def test_each_engine_3_part_changes_the_code_and_ablations_round_trip(monkeypatch, ablate):
    data = TEXT[:5000]
    full, _, _ = _block(data, model=T1)
    monkeypatch.setitem(mix.LEVELS, 1, mix.LEVELS[1]._replace(ablate=ablate))
    cut, _, _ = _block(data, model=T1)
    assert cut != full


@pytest.mark.parametrize("engine,neural,ablate", [(2, 0, 0), (2, 1, 0), (3, 0, 0), (3, 1, 0), (3, 2, 0),
                                                  (3, 2, mixing.NO_NEURAL_SSE | mixing.NO_THIRD_MIXER)])
def test_state_bytes_counts_what_new_state_allocates(engine, neural, ablate):
    state = mixing.new_state(16, 100, 16, neural, True, engine=engine, ablate=ablate)
    allocated = sum(a.nbytes for a in state if isinstance(a, np.ndarray))
    assert allocated <= mixing.state_bytes(16, 100, 16, engine, neural, ablate) < allocated + (1 << 16)


def test_shipped_models_match_their_index_and_fit_the_size_budget():
    """Each shipped file is the one whose sha256, training command and measured figures the
    index records; all of them together stay within 20 MB."""
    import hashlib
    import json

    from ziplab.models.checkpoint import SHIPPED_DIR, shipped_names

    index = json.loads((SHIPPED_DIR / "index.json").read_text())
    assert sorted(index["models"]) == shipped_names()
    for name, m in index["models"].items():
        assert hashlib.sha256((SHIPPED_DIR / m["file"]).read_bytes()).hexdigest() == m["sha256"], name
        assert m["command"].startswith("ziplab train")
    assert index["total_bytes"] <= 20_000_000
    assert {m for row in mix.LEVELS.values() for m in row.models} <= set(index["models"])
