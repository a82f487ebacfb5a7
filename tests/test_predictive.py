"""Lane-lockstep range coding, checked with a toy numpy predictor (no torch needed)."""

from __future__ import annotations

import numpy as np
import pytest

from ziplab.codecs.base import CodingStats
from ziplab.codecs import lanes as lanes_mod, predictive
from ziplab.codecs.lanes import decode_lanes, encode_lanes, fingerprint, lane_count
from ziplab.codecs.predictive import pack_substreams, unpack_substreams
from ziplab.errors import CorruptDataError

from .conftest import SAMPLES


class Bigram:
    """Order-1 predictor from fixed pseudo-random counts: deterministic, sharply non-uniform."""

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        table = rng.gamma(0.3, size=(257, 256)).astype(np.float32) + np.float32(1e-3)
        self.table = np.ascontiguousarray(table / table.sum(1, keepdims=True), dtype=np.float32)
        self.calls: list[int] = []

    def start(self, lanes: int):
        return lanes

    def step(self, state, prev):
        assert prev.shape == (state,), "batch shape must never change"
        self.calls.append(len(prev))
        return np.ascontiguousarray(self.table[prev]), state


@pytest.mark.parametrize("lanes", [1, 3, 16, 64])
def test_round_trip(sample, lanes):
    data = np.frombuffer(sample, dtype=np.uint8)
    payload = encode_lanes(Bigram(), data, lanes)
    assert decode_lanes(Bigram(), payload, len(data), lanes).tobytes() == sample


@pytest.mark.parametrize("n", [1, 2, 255, 256, 257, 1000, 4097, 12345])
def test_lengths_not_divisible_by_lanes(n):
    data = np.frombuffer(SAMPLES["random"][:n], dtype=np.uint8)
    payload = encode_lanes(Bigram(), data, 7)
    assert decode_lanes(Bigram(), payload, n, 7).tobytes() == data.tobytes()


def test_batch_shape_is_fixed_for_the_whole_stream():
    model = Bigram()
    n = 10_000
    encode_lanes(model, np.frombuffer(SAMPLES["random"][:n], dtype=np.uint8), 16)
    assert set(model.calls) == {lane_count(n, 16)}
    assert len(model.calls) == -(-n // lane_count(n, 16))


def test_fewer_bytes_than_lanes():
    data = np.frombuffer(b"abc", dtype=np.uint8)
    assert decode_lanes(Bigram(), encode_lanes(Bigram(), data, 64), 3, 64).tobytes() == b"abc"


def test_actual_bits_track_ideal_bits():
    data = np.frombuffer(SAMPLES["text"] * 4, dtype=np.uint8)
    stats = CodingStats()
    payload = encode_lanes(Bigram(), data, 8, stats)
    assert stats.steps == -(-len(data) // lane_count(len(data), 8))
    assert abs(8 * len(payload) - stats.ideal_bits) <= stats.ideal_bits * 0.005 + 64


def test_wrong_model_decodes_garbage_that_the_fingerprint_would_have_caught():
    data = np.frombuffer(SAMPLES["text"], dtype=np.uint8)
    payload = encode_lanes(Bigram(0), data, 4)
    try:
        assert decode_lanes(Bigram(1), payload, len(data), 4).tobytes() != data.tobytes()
    except CorruptDataError:
        pass
    assert fingerprint(Bigram(0), 4) == fingerprint(Bigram(0), 4)
    assert fingerprint(Bigram(0), 4) != fingerprint(Bigram(1), 4)


def test_odd_payload_lengths_are_corrupt():
    with pytest.raises(CorruptDataError):
        decode_lanes(Bigram(), b"abc", 10, 2)


def test_substream_framing_validates():
    parts = [b"abcd", b"", b"efghijkl"]
    blob = pack_substreams(parts)
    assert unpack_substreams(blob, 3) == parts
    for bad in (blob[:-1], blob + b"x", b"", b"\x02" + blob[1:]):
        with pytest.raises(CorruptDataError):
            unpack_substreams(bad, 3)


def test_substream_sizes_cover_the_block():
    for n in (0, 1, 5, 1000, 1001):
        for w in (1, 2, 3):
            sizes = predictive.substream_sizes(n, w)
            assert sum(sizes) == n and len(sizes) == w and max(sizes) - min(sizes) <= 1


# ---- exact behaviour the mutation campaign found unpinned --------------------------------------
def test_substream_framing_errors_say_exactly_what_is_wrong():
    good = pack_substreams([b"abcd", b"efgh"])
    assert good[0] == 2 and good[1:5] == (4).to_bytes(4, "little") and unpack_substreams(good, 2) == [b"abcd", b"efgh"]
    cases = [(good, 3, "neural payload has the wrong number of substreams"),
             (b"", 2, "neural payload has the wrong number of substreams"),
             (good[:6], 2, "neural payload is truncated"),
             (good + b"x", 2, "neural substream lengths do not add up to the payload")]
    for payload, streams, message in cases:
        with pytest.raises(CorruptDataError) as info:
            unpack_substreams(payload, streams)
        assert str(info.value) == message


def test_a_payload_of_partial_words_is_refused_exactly():
    with pytest.raises(CorruptDataError) as info:
        decode_lanes(Bigram(), b"abc", 10, 1)
    assert str(info.value) == "neural payload is not a whole number of 32-bit words"
    with pytest.raises(CorruptDataError) as info:
        decode_lanes(Bigram(), b"\xff" * 8, 5000, 4)
    assert str(info.value).startswith("neural payload cannot be decoded: ")
    empty = decode_lanes(Bigram(), b"", 0, 4)
    assert empty.dtype == np.uint8 and empty.size == 0 and encode_lanes(Bigram(), empty, 4) == b""


def test_progress_is_reported_every_64_steps_and_at_the_end():
    data = np.frombuffer(SAMPLES["text"][:2000], dtype=np.uint8)
    for coder in ("encode", "decode"):
        heard: list[int] = []
        payload = encode_lanes(Bigram(), data, 4, progress=heard.append if coder == "encode" else None)
        if coder == "decode":
            decode_lanes(Bigram(), payload, len(data), 4, heard.append)
        steps = -(-len(data) // 4)
        assert len(heard) == -(-steps // lanes_mod.PROGRESS_EVERY) and sum(heard) == len(data)
        assert heard[0] == 4 * lanes_mod.PROGRESS_EVERY


def test_stats_count_bits_and_steps_across_blocks():
    data = np.frombuffer(SAMPLES["text"][:3000], dtype=np.uint8)
    stats = CodingStats()
    payload = encode_lanes(Bigram(), data, 4, stats)
    first = stats.ideal_bits
    assert stats.steps == 750 and len(payload) * 8 >= first > 0.5 * len(payload) * 8
    encode_lanes(Bigram(), data, 4, stats)
    assert stats.steps == 1500 and stats.ideal_bits == pytest.approx(2 * first, rel=1e-12)


def test_fingerprint_uses_every_lane_even_past_the_probe_length():
    """With more lanes than probe bytes the probe is tiled, not cut short or left empty."""
    wide = len(lanes_mod.PROBE) + 40
    assert fingerprint(Bigram(), wide) != fingerprint(Bigram(), wide - 1)
    assert fingerprint(Bigram(), len(lanes_mod.PROBE)) != fingerprint(Bigram(), len(lanes_mod.PROBE) - 1)
    assert fingerprint(Bigram(0), 8) != fingerprint(Bigram(1), 8) and len(fingerprint(Bigram(), 3)) == 32


def test_codec_option_bounds_are_exact():
    import ziplab
    from ziplab.errors import ParameterError

    data = SAMPLES["text"][:600]
    for lanes in (1, lanes_mod.MAX_LANES):
        assert ziplab.decompress(ziplab.compress(data, "ctx", 1, lanes=lanes)) == data
    for workers in (1, predictive.MAX_STREAMS):
        assert ziplab.decompress(ziplab.compress(data, "ctx", 1, lanes=lanes_mod.MAX_LANES, workers=workers),
                                 workers=1) == data
    for codec in ("ctx", "mix"):  # one bound for every lane-coded codec
        for lanes in (0, lanes_mod.MAX_LANES + 1):
            with pytest.raises(ParameterError) as info:
                ziplab.compress(data, codec, 1, lanes=lanes)
            assert str(info.value) == "lanes must be between 1 and 4096"
    assert ziplab.decompress(ziplab.compress(data, "mix", 1, lanes=lanes_mod.MAX_LANES)) == data
    with pytest.raises(ParameterError) as info:
        ziplab.compress(data, "ctx", 1, workers=predictive.MAX_STREAMS + 1)
    assert str(info.value) == "workers must be between 1 and 64"
    with pytest.raises(ParameterError) as info:
        ziplab.compress(data, "ctx", 1, model="x")
    assert str(info.value) == "codec 'ctx' takes no option 'model'"
    with pytest.raises(ParameterError) as info:
        ziplab.compress(data, "ctx", 9)
    assert "levels 0..6" in str(info.value)
    import io

    from ziplab import container

    blob = ziplab.compress(data, "ctx", 5)
    assert ziplab.decompress(blob) == data and container.read_header(io.BytesIO(blob)).params["level"] == 5
    with pytest.raises(ParameterError) as info:
        container.decompress_file(io.BytesIO(blob), io.BytesIO(), options=ziplab.CodingOptions(lanes=3))
    assert str(info.value) == "codec 'ctx' takes no option 'lanes' when decoding"
