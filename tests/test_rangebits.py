"""`kernels.rangebits`: constriction's queue range decoder for Bernoulli bits, in numba. Oracle:
constriction's own encoder — whatever it writes, for any bits and any 16-bit probabilities
(including the extremes 1 and 65535), decodes here to the same bits, and every word is read by
the end; garbage words decode to bits or INVALID, never a crash."""

from __future__ import annotations

import constriction
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ziplab.codecs.kernels import rangebits

FAMILY = constriction.stream.model.Bernoulli(perfect=False)


def _encode(bits: np.ndarray, p16: np.ndarray) -> np.ndarray:
    encoder = constriction.stream.queue.RangeEncoder()
    if len(bits):
        encoder.encode(bits.astype(np.int32), FAMILY, p16 / 65536.0)
    return encoder.get_compressed().astype(np.uint32)


def _decode(words: np.ndarray, p16: np.ndarray) -> list[int]:
    state = rangebits.start(words)
    return [rangebits.decode_bit(state, words, int(p)) for p in p16]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.one_of(st.integers(1, 65535), st.sampled_from([1, 2, 65534, 65535]))),
                max_size=3000))
def test_what_constriction_encodes_decodes_here_bit_for_bit(pairs):
    bits = np.array([b for b, _ in pairs], dtype=np.int64)
    p16 = np.array([p for _, p in pairs], dtype=np.int64)
    words = _encode(bits, p16)
    assert _decode(words, p16) == bits.tolist()


def test_a_long_skewed_stream_reads_every_word_and_matches_constriction_s_decoder():
    rng = np.random.default_rng(4)
    p16 = rng.integers(1, 65536, 200_000)
    bits = (rng.integers(0, 65536, p16.size) < p16).astype(np.int64)  # bits drawn from their probabilities
    words = _encode(bits, p16)
    state = rangebits.start(words)
    got = [rangebits.decode_bit(state, words, int(p)) for p in p16]
    assert got == bits.tolist() and rangebits.exhausted(state, words)
    theirs = constriction.stream.queue.RangeDecoder(words)
    assert theirs.decode(FAMILY, p16 / 65536.0).tolist() == got


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 2 ** 32 - 1), max_size=40), st.integers(1, 65535))
def test_garbage_words_decode_to_bits_or_invalid_never_a_crash(words, p):
    words = np.array(words, dtype=np.uint32)
    out = _decode(words, np.full(500, p))
    assert set(out) <= {0, 1, rangebits.INVALID}


def test_a_mix_payload_cut_short_or_garbled_is_one_corrupt_data_error():
    """The decoder in the mixing kernel keeps the guards constriction's path had: a payload that
    ends long before its claimed bytes stops within the slack, garbage is one line."""
    import pytest

    from ziplab.codecs import mix
    from ziplab.codecs.base import CodingOptions
    from ziplab.errors import CorruptDataError

    from .conftest import SAMPLES

    data = np.frombuffer(SAMPLES["text"][:20000], dtype=np.uint8)
    encoder = mix.CODEC.open_encoder(1, CodingOptions(model="none", lanes=4))
    params = {**encoder.params, "lanes": 2}
    payload = mix.encode_block(data, params, [])
    assert mix.decode_block(payload, len(data), params, []).tobytes() == data.tobytes()
    with pytest.raises(CorruptDataError, match="mix payload ends before the data it claims"):
        mix.decode_block(bytes(4), 10 ** 6, params, [])  # zero words decode as bits forever: the slack stops it
    for cut in (40, len(payload) // 2):
        with pytest.raises(CorruptDataError, match="ends before the data it claims|cannot be decoded: invalid data"):
            mix.decode_block(payload[:cut], len(data), params, [])
    garbled = np.random.default_rng(1).integers(0, 256, len(payload), dtype=np.uint8).tobytes()
    with pytest.raises(CorruptDataError) as info:
        mix.decode_block(garbled, 10 ** 6, params, [])
    assert "\n" not in str(info.value)
