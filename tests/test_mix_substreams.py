"""`mix` format 4: a block in substreams, each a format-3 stream of its own (own tables, lanes
and range coder), coded at once by forked copies of the process (threads where it does not
fork, or one after another). Oracles: each substream's payload is exactly `encode_block` of its
bytes; the bytes do not depend on the process count, on forks or threads; the count follows the
block's length; hostile counts and payloads are one-line errors; a child's failure arrives here."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest

import ziplab
from ziplab import container
from ziplab.codecs import mix, mix_levels, mix_stream, substream_forks
from ziplab.codecs.base import CodingOptions, CodingStats
from ziplab.container import Header
from ziplab.errors import CorruptDataError, FormatError, ZiplabError
from ziplab.limits import Limits

from .conftest import SAMPLES

T1 = str(Path(__file__).resolve().parent / "data" / "golden" / "t1-golden.safetensors")
MIN = 3000  # substreams of a few thousand bytes keep these tests fast
DATA = (SAMPLES["text"][:4000] + SAMPLES["all256"] + SAMPLES["random"][:500]) * 2  # 9,024 bytes


@pytest.fixture(autouse=True)
def small_substreams(monkeypatch):
    monkeypatch.setattr(mix_levels, "SUBSTREAM_MIN_BYTES", MIN)


def _header(blob: bytes) -> Header:
    return container.read_header(io.BytesIO(blob))


def _with(blob: bytes, params: dict, version: int | None = None) -> bytes:
    h = _header(blob)
    crafted = Header(h.codec, params, h.block_size, h.original_size, h.crc32, version=h.version if version is None else version)
    return crafted.encode() + blob[h.header_size:]


def test_a_block_is_cut_by_its_length_never_by_the_machine():
    params = {"substreams": 2}
    assert [mix.block_substreams(n, params) for n in (0, 1, MIN - 1, MIN, 2 * MIN - 1, 2 * MIN, 10 ** 9)] == [1, 1, 1, 1, 1, 2, 2]
    assert mix.block_substreams(10 ** 9, {}) == 1  # formats 2 and 3: one stream per block
    assert mix.stream_params({"lanes": 9, "substreams": 2})["lanes"] == 4


@pytest.mark.parametrize("model", ["none", T1], ids=["cm", "cm+nn"])
def test_each_substream_is_a_format_3_stream_of_its_own(model):
    """The format's definition: u8 count, u32 lengths, then each substream's `encode_block`
    payload over its contiguous share of the block, with its share of the lanes."""
    encoder = mix.CODEC.open_encoder(1, CodingOptions(model=model, lanes=8, workers=1))
    params = encoder.params
    assert params["substreams"] == 2 and params["lanes"] == 8
    data = np.frombuffer(DATA, dtype=np.uint8)
    payload = encoder.encode(data)
    count, = struct.unpack_from("<B", payload)
    lengths = struct.unpack_from("<2I", payload, 1)
    assert count == 2 and 9 + sum(lengths) == len(payload)
    half = len(DATA) // 2
    models = [] if model == "none" else [mix._nn().build_predictor({**params, "model": model})]
    sub = {**params, "lanes": 4}
    expect = [mix.encode_block(data[:half], sub, models), mix.encode_block(data[half:], sub, models)]
    assert [payload[9:9 + lengths[0]], payload[9 + lengths[0]:]] == expect


@pytest.mark.parametrize("fork", [True, False], ids=["forks", "threads"])
def test_bytes_do_not_depend_on_processes_forks_or_threads(monkeypatch, fork):
    monkeypatch.setattr(substream_forks, "FORK", fork and substream_forks.FORK)
    runs = {"forked": 0, "threads": 0}
    for name, runner in (("forked", mix_stream.run_forked), ("threads", mix_stream.run_threads)):
        monkeypatch.setattr(mix_stream, f"run_{name}", lambda *a, _r=runner, _n=name: runs.__setitem__(_n, runs[_n] + 1) or _r(*a))
    one = ziplab.compress(DATA, "mix", 1, model=T1, lanes=8, workers=1)
    assert runs == {"forked": 0, "threads": 0}
    stats = CodingStats()
    two = mix.CODEC.open_encoder(1, CodingOptions(model=T1, lanes=8, workers=2), stats=stats).encode(
        np.frombuffer(DATA, dtype=np.uint8))
    assert ziplab.compress(DATA, "mix", 1, model=T1, lanes=8, workers=2) == one
    assert one.endswith(two) and stats.steps > 0 and stats.ideal_bits > 0
    assert ziplab.decompress(one, workers=1) == ziplab.decompress(one, workers=2) == DATA
    if CodingOptions().resolved_limits().cpus >= 2:  # two encodes and a decode on two processes
        assert runs == ({"forked": 3, "threads": 0} if substream_forks.FORK else {"forked": 0, "threads": 3})


def test_a_multi_block_file_codes_each_block_in_its_own_substreams():
    blob = ziplab.compress(DATA * 2, "mix", 1, model="none", lanes=4, block_size=7000, workers=2)
    assert _header(blob).block_size == 7000
    assert ziplab.decompress(blob) == DATA * 2


def test_one_lane_is_one_substream():
    blob = ziplab.compress(DATA, "mix", 1, model="none", lanes=1)
    assert _header(blob).params["substreams"] == 1
    assert ziplab.decompress(blob) == DATA


def test_a_corrupt_second_substream_is_one_error_from_any_process():
    blob = ziplab.compress(DATA, "mix", 1, model=T1, lanes=8)
    bad = bytearray(blob)
    bad[-40] ^= 0x40  # in the second substream's words
    for workers in (1, 2):
        with pytest.raises((CorruptDataError, ZiplabError)) as info:
            ziplab.decompress(bytes(bad), workers=workers)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("cut", ["count", "lengths"])
def test_a_payload_whose_substreams_do_not_add_up_is_refused(cut):
    encoder = mix.CODEC.open_encoder(1, CodingOptions(model="none", lanes=4))
    payload = encoder.encode(np.frombuffer(DATA, dtype=np.uint8))
    bad = bytes([3]) + payload[1:] if cut == "count" else payload[:-4]
    with pytest.raises(CorruptDataError, match="mix payload has the wrong number|mix substream lengths"):
        mix.CODEC.open_decoder(encoder.params).decode(bad, len(DATA))


@pytest.mark.parametrize("change", [{"substreams": 0}, {"substreams": 65}, {"substreams": "2"},
                                    {"substreams": True}, {"substreams": 5, "lanes": 4}],
                         ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_hostile_substream_counts_are_one_line_format_errors(change):
    blob = ziplab.compress(DATA, "mix", 1, model="none", lanes=4)
    with pytest.raises(FormatError) as info:
        ziplab.decompress(_with(blob, {**_header(blob).params, **change}))
    assert "\n" not in str(info.value)


def test_the_substream_count_belongs_to_format_4_alone():
    blob = ziplab.compress(DATA, "mix", 1, model="none", lanes=4)
    params = _header(blob).params
    with pytest.raises(FormatError, match="format 3 mix header cannot carry the substream count"):
        ziplab.decompress(_with(blob, params, version=3))
    without = {k: v for k, v in params.items() if k != "substreams"}
    with pytest.raises(FormatError, match="format 4 mix header lacks the substream count"):
        ziplab.decompress(_with(blob, without))


def test_the_budget_counts_tables_per_process_and_a_tight_limit_decodes_in_one():
    blob = ziplab.compress(DATA, "mix", 1, model="none", lanes=4)
    need = container.decoding_need(_header(blob))
    assert need.streams == 2 and need.predictor > need.shared  # each process holds its own tables
    tight = Limits(memory=need.total(1) + need.predictor // 2, cpus=2)
    assert need.processes(tight, 2) == 1 and need.processes(Limits(memory=1 << 40, cpus=2), 2) == 2
    assert ziplab.decompress(blob, memory_limit=need.total(1)) == DATA
    with pytest.raises(ZiplabError, match="over the limit"):
        ziplab.decompress(blob, memory_limit=need.total(1) - 1)
