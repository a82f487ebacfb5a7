"""Lane-lockstep range coding, checked with a toy numpy predictor (no torch needed)."""

from __future__ import annotations

import numpy as np
import pytest

from ziplab.codecs.base import CodingStats
from ziplab.codecs.kernels import predictive
from ziplab.codecs.kernels.predictive import (decode_lanes, encode_lanes, fingerprint,
                                      lane_count, pack_substreams, unpack_substreams)
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
