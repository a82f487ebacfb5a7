"""lz77 and lzss codecs and the shared hash-chain match finder: round trips at every level,
overlapping and window-crossing matches, hand-built and random corrupt payloads."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from ziplab import container
from ziplab.codecs import get
from ziplab.codecs.kernels.matchfind import MIN_MATCH, insert, insert_range, longest_match, new_tables
from ziplab.errors import CorruptDataError, ParameterError

try:
    from .conftest import SAMPLES
    from .corruption import assert_boundscheck_clean, check_decode, codec_variants, roundtrip
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    from conftest import SAMPLES
    from corruption import assert_boundscheck_clean, check_decode, codec_variants, roundtrip

NAMES = ["lz77", "lzss"]
WINDOW = 65535


def decode(name: str, payload: bytes, size: int) -> np.ndarray:
    return get(name).decode_block(payload, size, {})


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("level", [1, 6, 9])
@pytest.mark.parametrize("name", NAMES)
def test_roundtrip_samples(name: str, sample: bytes, level: int) -> None:
    roundtrip(name, sample, level)


@pytest.mark.parametrize("name", NAMES)
def test_roundtrip_bench(name: str, bench_file: bytes) -> None:
    roundtrip(name, bench_file)


@pytest.mark.parametrize("name", NAMES)
def test_every_level_and_params(name: str) -> None:
    codec = get(name)
    assert codec.open_encoder().params == {"level": 6}
    raw = SAMPLES["text"] + SAMPLES["skewed"][:5000]
    sizes = [len(roundtrip(name, raw, level)) for level in range(1, 10)]
    assert sizes[-1] <= sizes[0]
    for bad in (0, 10):
        with pytest.raises(ParameterError):
            codec.open_encoder(bad)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(NAMES), st.binary(max_size=3000), st.sampled_from([1, 6, 9]))
def test_roundtrip_hypothesis(name: str, raw: bytes, level: int) -> None:
    roundtrip(name, raw, level)


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(NAMES),
    st.lists(st.sampled_from([b"ab", b"abc", b"the ", b"\x00", b"xyzzy", b"q", b"a" * 40]), max_size=500),
    st.sampled_from([1, 6, 9]),
)
def test_roundtrip_repetitive_hypothesis(name: str, parts: list[bytes], level: int) -> None:
    roundtrip(name, b"".join(parts), level)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(NAMES), st.integers(1, 4), st.integers(0, 5000), st.integers(0, 2**32 - 1))
def test_roundtrip_small_alphabet_hypothesis(name: str, alphabet: int, n: int, seed: int) -> None:
    raw = np.random.default_rng(seed).integers(0, alphabet, n, dtype=np.uint8).tobytes()
    roundtrip(name, raw, 6)


@pytest.mark.parametrize("level", [1, 6, 9])
@pytest.mark.parametrize("name", NAMES)
def test_overlapping_matches(name: str, level: int) -> None:
    """Offsets below the match length (runs, short periods) around the 8-byte copy threshold."""
    for period in (1, 2, 3, 7, 8, 9, 15, 16, 17):
        unit = bytes(range(65, 65 + period))
        raw = b"<" + unit * (1000 // period + 1) + b">"
        payload = roundtrip(name, raw, level)
        assert len(payload) < len(raw) // 4
    roundtrip(name, b"a" * 1000, level)


@pytest.mark.parametrize("name", NAMES)
def test_window_boundary(name: str) -> None:
    """Repeats just inside and just beyond the 64 KiB - 1 window; blocks far above it."""
    rng = np.random.default_rng(7)
    chunk = rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
    for gap in (WINDOW - 3000 - 1, WINDOW - 3000, WINDOW - 3000 + 1, WINDOW - 2000, 100_000):
        filler = rng.integers(0, 256, gap, dtype=np.uint8).tobytes()
        raw = chunk + filler + chunk
        near = roundtrip(name, raw, 9)
        lone = len(get(name).encode_block(np.frombuffer(chunk + filler, np.uint8), {"level": 9}))
        if len(chunk) + gap <= WINDOW:  # the second chunk is one long-distance reference
            assert len(near) - lone < 200
        else:  # nothing reaches back that far: the second chunk codes like fresh noise
            assert len(near) - lone > len(chunk)
    text = SAMPLES["text"]
    roundtrip(name, text + rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes() + text * 3, 6)


@pytest.mark.parametrize("name", NAMES)
def test_max_ratio_is_honest(name: str) -> None:
    for raw in (bytes(1 << 20), b"ab" * (1 << 19)):
        payload = roundtrip(name, raw, 9)
        assert len(raw) / len(payload) > 0.9 * get(name).max_ratio


@pytest.mark.parametrize("name", NAMES)
def test_container_roundtrip(name: str) -> None:
    raw = SAMPLES["text"] + SAMPLES["random"][:3000] + SAMPLES["zeros"][:9000]
    assert container.decompress(container.compress(raw, name)) == raw


# --------------------------------------------------------------------------- match finder


@njit(cache=True)
def _find_all(data: np.ndarray, depth: int, nice: int, max_len: int, max_dist: int, window_log: int) -> np.ndarray:
    """(length, distance) at every position with every earlier position inserted."""
    head, prev = new_tables(12, window_log)
    mask = (1 << window_log) - 1
    res = np.zeros((data.size, 2), np.int64)
    for i in range(data.size):
        cand = insert(data, i, head, prev, mask, 12)
        ln, d = longest_match(data, i, cand, prev, mask, max_dist, depth, nice, max_len)
        res[i, 0] = ln
        res[i, 1] = d
    return res


@njit(cache=True)
def _find_after_range(data: np.ndarray, pos: int) -> tuple:
    head, prev = new_tables(12, 8)
    insert_range(data, 0, pos, head, prev, 255, 12)
    cand = insert(data, pos, head, prev, 255, 12)
    return longest_match(data, pos, cand, prev, 255, 255, 64, 1000, 1000)


def brute_longest(raw: bytes, i: int, max_len: int, max_dist: int) -> int:
    best = 0
    for c in range(max(0, i - max_dist), i):
        k = 0
        while k < max_len and i + k < len(raw) and raw[c + k] == raw[i + k]:
            k += 1
        best = max(best, k)
    return best if best >= MIN_MATCH else 0


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 4), st.integers(1, 400))
def test_matchfind_agrees_with_brute_force(seed: int, alphabet: int, n: int) -> None:
    raw = np.random.default_rng(seed).integers(0, alphabet, n, dtype=np.uint8)
    res = _find_all(raw, 10_000, 10_000, 20, 50, 6)
    b = raw.tobytes()
    for i in range(n):
        ln, d = res[i]
        assert ln == brute_longest(b, i, 20, 50)
        if ln:
            assert 1 <= d <= 50 and b[i - d : i - d + ln] == b[i : i + ln]


def test_matchfind_limits() -> None:
    raw = np.frombuffer(b"abcdefgh" * 50, np.uint8)
    res = _find_all(raw, 8, 10_000, 1000, 255, 8)
    assert tuple(res[8]) == (len(raw) - 8, 8)  # overlapping, capped by the data end
    assert tuple(res[-3]) == (3, 8) and tuple(res[-2]) == (0, 0)  # no hash past the end
    near_short = np.frombuffer(b"abcdefghij#abcdef%abcdefghij", np.uint8)  # nearer: 6, farther: 10
    assert tuple(_find_all(near_short, 8, 10_000, 1000, 255, 8)[-10]) == (10, 18)
    assert tuple(_find_all(near_short, 8, 4, 1000, 255, 8)[-10]) == (6, 7)  # nice stops the walk
    assert tuple(_find_all(near_short, 1, 10_000, 1000, 255, 8)[-10]) == (6, 7)  # so does depth
    assert tuple(_find_all(near_short, 8, 10_000, 8, 255, 8)[-10]) == (8, 18)  # max length caps it
    res = _find_all(raw, 8, 10_000, 5, 4, 8)
    assert res[8:, 0].max() == 0  # nothing within 4 bytes back
    assert tuple(_find_after_range(raw, 16)) == (len(raw) - 16, 8)


# --------------------------------------------------------------------------- corrupt input


@pytest.mark.parametrize("sample_name", ["text", "skewed", "random_small_alphabet", "zeros", "all256x4", "run_ab"])
@pytest.mark.parametrize("name", NAMES)
def test_corrupt_inputs_never_crash(name: str, sample_name: str) -> None:
    raw = SAMPLES[sample_name]
    payload = get(name).encode_block(np.frombuffer(raw, np.uint8), {"level": 6})
    for bad in codec_variants(name, payload, zlib.crc32(f"{name}{sample_name}".encode())):
        for size in (len(raw), len(raw) + 17, max(len(raw) // 2, 1), 0):
            check_decode(name, bad, size)


@pytest.mark.parametrize("name", NAMES)
def test_truncated_payload_is_an_error(name: str) -> None:
    raw = SAMPLES["text"]
    payload = get(name).encode_block(np.frombuffer(raw, np.uint8), {"level": 6})
    for k in range(0, len(payload), max(1, len(payload) // 50)):
        with pytest.raises(CorruptDataError):
            decode(name, payload[:k], len(raw))
    with pytest.raises(CorruptDataError, match="after the block"):
        decode(name, payload + b"\x00" * 4, len(raw))
    with pytest.raises(CorruptDataError):
        decode(name, b"", 10)
    with pytest.raises(CorruptDataError):
        decode(name, payload, -1)
    assert decode(name, b"", 0).size == 0


def triple(offset: int, length: int, nxt: int) -> bytes:
    return struct.pack("<HBB", offset, length, nxt)


def lzss_group(*tokens: tuple) -> bytes:
    """tokens: (byte,) literals or (offset, length) matches."""
    flags = sum(1 << k for k, t in enumerate(tokens) if len(t) == 2)
    body = b"".join(bytes(t) if len(t) == 1 else struct.pack("<HB", t[0], t[1] - 3) for t in tokens)
    return bytes([flags]) + body


@pytest.mark.parametrize(
    "payload, size, message",
    [
        (triple(0, 0, 97) + triple(1, 5, 98), 7, None),  # valid: "aaaaaab"
        (triple(0, 0, 97) + triple(0, 3, 98), 5, "offset 0"),
        (triple(0, 0, 97) + triple(2, 3, 98), 5, "before the start"),
        (triple(0, 0, 97) + triple(65535, 3, 98), 5, "before the start"),
        (triple(0, 0, 97) + triple(1, 3, 98), 4, "past the block size"),
        (triple(0, 0, 97) + triple(1, 0, 98), 2, "non-zero offset"),
        (triple(0, 0, 97) + triple(0, 0, 98), 1, "after the block"),
        (triple(0, 0, 97) + triple(0, 0, 98)[:3], 2, "ends before"),
    ],
)
def test_lz77_hand_built(payload: bytes, size: int, message: str | None) -> None:
    if message is None:
        assert decode("lz77", payload, size).tobytes() == b"aaaaaab"
    else:
        with pytest.raises(CorruptDataError, match=message):
            decode("lz77", payload, size)


@pytest.mark.parametrize(
    "payload, size, message",
    [
        (lzss_group((97,), (1, 5), (98,)), 7, None),  # valid: "aaaaaab"
        (lzss_group((97,), (0, 3)), 4, "offset 0"),
        (lzss_group((97,), (2, 3)), 4, "before the start"),
        (lzss_group((97,), (1, 258)), 200, "past the block size"),
        (bytes([0b110]) + b"a" + struct.pack("<HB", 1, 0), 4, "past the end"),
        (lzss_group((97,), (98,)), 1, "past the end|after the block"),
        (lzss_group((97,), (1, 3))[:-1], 4, "ends before"),
        (lzss_group(*[(97,)] * 8), 9, "ends before"),
    ],
)
def test_lzss_hand_built(payload: bytes, size: int, message: str | None) -> None:
    if message is None:
        assert decode("lzss", payload, size).tobytes() == b"aaaaaab"
    else:
        with pytest.raises(CorruptDataError, match=message):
            decode("lzss", payload, size)


@pytest.mark.parametrize("name", NAMES)
def test_boundscheck_subprocess(name: str) -> None:
    """Round trips and corrupt payloads with numba bounds checking on: must exit cleanly."""
    assert_boundscheck_clean(name)
