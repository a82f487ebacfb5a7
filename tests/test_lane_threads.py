"""Lanes split over threads (`models.lane_threads`): the same probabilities, so the same bytes,
at any thread count, for both families; and `mix -T` really takes it."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import ziplab
from ziplab.models.lane_threads import LaneThreads, lane_bounds, thread_count

T1 = str(Path(__file__).resolve().parent / "data" / "golden" / "t1-golden.safetensors")
TEXT = (Path(__file__).resolve().parents[1] / "README.md").read_bytes()[:12000]


def test_lane_bounds_cover_every_lane_once_in_order():
    for lanes in (1, 2, 7, 64, 129):
        for threads in range(1, min(lanes, 5) + 1):
            bounds = lane_bounds(lanes, threads)
            assert bounds[0][0] == 0 and bounds[-1][1] == lanes and len(bounds) == threads
            assert all(a < b for a, b in bounds) and all(b == c for (_, b), (c, _) in itertools.pairwise(bounds))
            sizes = [b - a for a, b in bounds]
            assert max(sizes) - min(sizes) <= 1
    assert thread_count(8, 64) == 1 and thread_count(2, 255) == 1 and thread_count(1, 4096) == 1
    assert thread_count(2, 256) == 2 and thread_count(8, 512) == 4


@pytest.mark.parametrize("spec", [None, T1], ids=["shipped-lstm", "t1-transformer"])
@pytest.mark.parametrize("threads", [2, 3])
def test_a_lanes_probabilities_do_not_depend_on_how_the_lanes_are_split(spec, threads):
    from ziplab.models import load_model

    whole, split = load_model(spec, threads=1), LaneThreads(load_model(spec, threads=1), threads)
    lanes = 50  # not a multiple of the thread count
    s1, s2 = whole.start(lanes), split.start(lanes)
    assert len(s2.parts) == threads
    prev = np.full(lanes, 256, dtype=np.int64)
    rng = np.random.default_rng(5)
    try:
        for _ in range(10):
            p1, s1 = whole.step(s1, prev)
            p2, s2 = split.step(s2, prev)
            assert p1.tobytes() == p2.tobytes()
            prev = rng.integers(0, 256, lanes)
    finally:
        split.close()


@pytest.mark.parametrize("model", [T1, "none"])
def test_mix_bytes_do_not_depend_on_the_thread_count(model):
    # 256 header lanes: enough for threads (`thread_count`); 12,000 bytes use 46 of them, split
    blobs = [ziplab.compress(TEXT, "mix", 1, model=model, lanes=256, workers=w) for w in (1, 2, 3)]
    assert blobs[0] == blobs[1] == blobs[2]
    for w in (1, 2):
        assert ziplab.decompress(blobs[0], workers=w) == TEXT
