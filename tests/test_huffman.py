"""huffman codec: round trips, optimality of the length-limited code, table size, corrupt input."""

from __future__ import annotations

import heapq
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ziplab.codecs import get
from ziplab.codecs.kernels.canonical import code_lengths
from ziplab.codecs.huffman import MAX_LEN
from ziplab.errors import CorruptDataError

try:
    from . import corruption
    from .conftest import GUTENBERG_DIR, SAMPLES, missing_shared
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    import corruption
    from conftest import GUTENBERG_DIR, SAMPLES, missing_shared

CODEC = get("huffman")


def roundtrip(raw: bytes) -> bytes:
    return corruption.roundtrip("huffman", raw)


def heap_huffman(freqs: np.ndarray) -> tuple[int, int]:
    """Reference: plain unlimited Huffman via a heap; returns (sum(f * len), max len)."""
    f = [int(x) for x in freqs if x > 0]
    if len(f) <= 1:
        return sum(f), 1
    heap = [(x, i, 0, 0) for i, x in enumerate(f)]  # (weight, tiebreak, subtree cost, depth)
    heapq.heapify(heap)
    nxt = len(f)
    while len(heap) > 1:
        w1, _, c1, d1 = heapq.heappop(heap)
        w2, _, c2, d2 = heapq.heappop(heap)
        heapq.heappush(heap, (w1 + w2, nxt, c1 + c2 + w1 + w2, max(d1, d2) + 1))
        nxt += 1
    return heap[0][2], heap[0][3]


def heap_huffman_cost(freqs: np.ndarray) -> int:
    return heap_huffman(freqs)[0]


def test_roundtrip_samples(sample: bytes) -> None:
    roundtrip(sample)


def test_roundtrip_bench(bench_file: bytes) -> None:
    roundtrip(bench_file)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=3000))
def test_roundtrip_hypothesis(raw: bytes) -> None:
    roundtrip(raw)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=2000), st.integers(0, 255))
def test_roundtrip_small_alphabets(vals: list[int], base: int) -> None:
    roundtrip(bytes((base + v) % 256 for v in vals))


def test_single_symbol_is_one_bit_per_byte() -> None:
    payload = roundtrip(b"q" * 8000)
    assert len(payload) <= 1000 + 16


@pytest.mark.parametrize("seed", range(20))
def test_code_lengths_optimal_vs_heap(seed: int) -> None:
    rng = np.random.default_rng(seed)
    nsym = int(rng.integers(2, 300))
    freqs = rng.integers(0, 1000, nsym) * (rng.random(nsym) < 0.8)
    if np.count_nonzero(freqs) < 2:
        freqs[:2] = 1
    cost, depth = heap_huffman(freqs)
    lengths = code_lengths(freqs, max(depth, 9))
    assert int((freqs * lengths).sum()) == cost
    assert np.all((lengths > 0) == (freqs > 0))
    if depth > 9:  # a tighter limit can only cost more, and must be respected
        limited = code_lengths(freqs, 9)
        assert limited.max() <= 9 and int((freqs * limited).sum()) >= cost


@pytest.mark.parametrize("max_len", [7, 12, 15])
def test_code_lengths_limited_on_fibonacci(max_len: int) -> None:
    fib = [1, 1]
    while len(fib) < 40:
        fib.append(fib[-1] + fib[-2])
    freqs = np.array(fib, np.int64)
    lengths = code_lengths(freqs, max_len)
    assert lengths.max() == max_len
    assert (2.0 ** -lengths[lengths > 0].astype(float)).sum() <= 1.0
    # limited code costs at least the unlimited optimum
    assert int((freqs * lengths).sum()) >= heap_huffman_cost(freqs)


def test_code_lengths_edge_cases() -> None:
    assert code_lengths(np.zeros(10, np.int64), 12).sum() == 0
    one = code_lengths(np.array([0, 0, 7, 0]), 12)
    assert one.tolist() == [0, 0, 1, 0]
    two = code_lengths(np.array([0, 3, 0, 9]), 12)
    assert two.tolist() == [0, 1, 0, 1]
    with pytest.raises(ValueError):
        code_lengths(np.ones(300, np.int64), 8)


def test_size_near_entropy_on_gutenberg() -> None:
    path = GUTENBERG_DIR / "dev.txt"
    if not path.is_file():
        missing_shared("gutenberg/dev.txt")
    data = np.frombuffer(path.read_bytes()[: 1 << 20], np.uint8)
    payload = roundtrip(data.tobytes())
    f = np.bincount(data, minlength=256)
    p = f[f > 0] / f.sum()
    entropy_bytes = -(f[f > 0] * np.log2(p)).sum() / 8
    table_bytes = 200  # generous bound for a dense 256-symbol length table
    assert len(payload) <= 1.01 * entropy_bytes + table_bytes


@pytest.mark.parametrize("name", ["text", "skewed", "random_small_alphabet", "all256x4"])
def test_corrupt_inputs_never_crash(name: str) -> None:
    raw = SAMPLES[name]
    payload = CODEC.encode_block(np.frombuffer(raw, np.uint8), {})
    for bad in corruption.codec_variants("huffman", payload, zlib.crc32(name.encode())):
        corruption.check_decode("huffman", bad, len(raw))


def test_decode_rejects_empty_payload() -> None:
    with pytest.raises(CorruptDataError):
        CODEC.decode_block(b"", 10, {})
    assert CODEC.decode_block(b"", 0, {}).size == 0


def test_code_lengths_respect_max_len_on_a_skewed_alphabet() -> None:
    """Fibonacci-like counts make an unlimited Huffman code far deeper than MAX_LEN."""
    counts = [1, 1]
    while len(counts) < 40:
        counts.append(counts[-1] + counts[-2])
    data = b"".join(bytes([i]) * c for i, c in enumerate(counts[:30]))
    payload = CODEC.encode_block(np.frombuffer(data, dtype=np.uint8), {})
    assert CODEC.decode_block(payload, len(data), {}).tobytes() == data
    from ziplab.codecs.kernels.canonical import code_lengths

    lengths = code_lengths(np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256), MAX_LEN)
    assert lengths.max() == MAX_LEN


def test_boundscheck_subprocess() -> None:
    """Decode good and corrupt payloads with numba bounds checking on: must exit cleanly."""
    corruption.assert_boundscheck_clean("huffman")
