"""nn and ctx block coders called directly, so inputs the container would store raw (empty, one
byte, all 256 values, random) are really range-coded and decoded; every ctx level; multi-block
and multi-worker ctx through the container."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ziplab
from ziplab import codecs
from ziplab.codecs.base import CodingOptions

from .conftest import SAMPLES

T1 = str(Path(__file__).resolve().parent / "data" / "golden" / "t1-golden.safetensors")
rng = np.random.default_rng(5)
CASES = {
    "empty": b"",
    "one": b"x",
    "all256": bytes(range(256)),
    "random": rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(),
    "zeros": bytes(5000),
    "skewed": SAMPLES["skewed"][:5000],
    "long": SAMPLES["text"][:20_000],
}


def _round_trip(codec: str, level, data: bytes, **options) -> bytes:
    impl = codecs.get(codec)
    encoder = impl.open_encoder(level, CodingOptions(**options))
    payload = encoder.encode(np.frombuffer(data, dtype=np.uint8))
    back = impl.open_decoder(encoder.params, CodingOptions(workers=1)).decode(payload, len(data))
    assert np.asarray(back, dtype=np.uint8).tobytes() == data
    return payload


@pytest.mark.parametrize("case", sorted(CASES))
def test_nn_block_coder_round_trips_what_the_container_would_store(case):
    payload = _round_trip("nn", None, CASES[case], model=T1, lanes=8)
    if case == "random":  # the model cannot help here: incompressible data really was coded
        assert len(payload) > len(CASES[case])


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("level", range(0, 7))
def test_ctx_block_coder_every_level(case, level):
    _round_trip("ctx", level, CASES[case], lanes=4)


def test_ctx_multi_block_multi_worker_through_the_container():
    data = SAMPLES["text"] * 4 + SAMPLES["random"][:20_000]
    for workers in (1, 2, 3):
        blob = ziplab.compress(data, "ctx", 3, lanes=8, workers=workers, block_size=40_000)
        assert ziplab.decompress(blob, workers=2) == data
