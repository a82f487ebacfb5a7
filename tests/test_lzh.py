"""lzh codec: round trips at every level, sub-block boundaries, symbol mapping, corrupt input."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ziplab.codecs import get
from ziplab.codecs.lzh import compress_block, decompress_block
from ziplab.codecs.kernels.lzh_parse import DBASE, DEXTRA, LBASE, LEXTRA, MAX_MATCH, dist_code, length_code
from ziplab.errors import CorruptDataError, ParameterError

try:
    from . import corruption
    from .conftest import BENCH_DIR, SAMPLES, missing_shared
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    import corruption
    from conftest import BENCH_DIR, SAMPLES, missing_shared

CODEC = get("lzh")
LEVELS = list(range(1, 10))


def roundtrip(raw: bytes, level: int) -> bytes:
    return corruption.roundtrip("lzh", raw, level)


@pytest.mark.parametrize("level", LEVELS)
def test_roundtrip_samples(sample: bytes, level: int) -> None:
    roundtrip(sample, level)


@pytest.mark.parametrize("level", [1, 6, 9])
def test_roundtrip_bench(bench_file: bytes, level: int) -> None:
    roundtrip(bench_file, level)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from(LEVELS))
def test_roundtrip_hypothesis(raw: bytes, level: int) -> None:
    roundtrip(raw, level)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from([b"ab", b"abc", b"the ", b"\x00", b"xyzzy", b"q"]), max_size=400), st.sampled_from(LEVELS))
def test_roundtrip_repetitive_hypothesis(parts: list[bytes], level: int) -> None:
    roundtrip(b"".join(parts), level)


@pytest.mark.parametrize("level", [1, 6, 9])
def test_many_sub_blocks(level: int) -> None:
    """Mixed content gives tens of thousands of tokens, crossing sub-block boundaries."""
    rng = np.random.default_rng(5)
    words = [bytes(rng.integers(97, 123, int(rng.integers(2, 9)), dtype=np.uint8)) for _ in range(3000)]
    text = b" ".join(words[int(i)] for i in rng.integers(0, len(words), 60_000))
    noise = rng.integers(0, 256, 40_000, dtype=np.uint8).tobytes()
    raw = text[:150_000] + noise + text[150_000:]
    roundtrip(raw, level)


def test_long_distance_and_long_runs() -> None:
    rng = np.random.default_rng(9)
    chunk = rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    filler = rng.integers(0, 256, 1_500_000, dtype=np.uint8).tobytes()
    raw = chunk + filler + chunk + bytes(5000)  # a >1 MiB back-reference and a long zero run
    payload = roundtrip(raw, 9)
    assert len(payload) < len(raw) - 150_000


def test_symbol_mapping_roundtrip() -> None:
    for ln in range(3, MAX_MATCH + 1):
        c, ne, v = length_code(ln)
        assert c < 28 and LEXTRA[c] == ne and LBASE[c] + v == ln and 0 <= v < (1 << ne)
    for d in list(range(1, 5000)) + [(1 << 22) - 1, 1 << 22, 1 << 21, (1 << 21) + 1, 123_456]:
        c, ne, v = dist_code(d)
        assert c < 44 and DEXTRA[c] == ne and DBASE[c] + v == d and 0 <= v < (1 << ne)


def test_levels_and_params() -> None:
    assert CODEC.open_encoder().params == {"level": 6}
    with pytest.raises(ParameterError):
        CODEC.open_encoder(10)
    with pytest.raises(ParameterError):
        CODEC.open_encoder(0)


def test_level9_beats_zlib9_on_text() -> None:
    path = BENCH_DIR / "alice29.txt"
    if not path.is_file():
        missing_shared("bench")
    raw = path.read_bytes()
    assert len(roundtrip(raw, 9)) <= 0.95 * len(zlib.compress(raw, 9))


@pytest.mark.parametrize("name", ["text", "skewed", "random_small_alphabet", "zeros", "all256x4"])
def test_corrupt_inputs_never_crash(name: str) -> None:
    raw = SAMPLES[name]
    payload = compress_block(np.frombuffer(raw, np.uint8), 6)
    for bad in corruption.codec_variants("lzh", payload, zlib.crc32(name.encode())):
        for size in (len(raw), len(raw) + 17, max(len(raw) // 2, 1)):
            corruption.check_decode("lzh", bad, size)


def test_decode_rejects_empty_payload() -> None:
    with pytest.raises(CorruptDataError):
        decompress_block(b"", 10)
    assert decompress_block(b"", 0).size == 0


def test_boundscheck_subprocess() -> None:
    """Round trips and corrupt payloads with numba bounds checking on: must exit cleanly."""
    corruption.assert_boundscheck_clean("lzh")
