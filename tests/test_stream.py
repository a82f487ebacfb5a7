"""ziplab.Compressor / ziplab.Decompressor against the behaviour of lzma's: every test here runs
on both (the lzma tests of CPython's own suite, adapted: chunked input, max_length and
needs_input, input buffering, unused data, end of stream, bad input), then what is ziplab's
own (output independent of chunking, classic members, threads, memory)."""

from __future__ import annotations

import io
import lzma
import random
import threading
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ziplab
from ziplab import container
from ziplab.errors import FormatError, ZiplabError

from .conftest import SAMPLES
from .test_container import OneWay

INPUT = SAMPLES["text"][:9000] + SAMPLES["random"][:6000] + SAMPLES["all256x4"] + SAMPLES["text"][:9000]
BLOCK = 1000


class Lzma:
    name = "lzma"
    error = lzma.LZMAError

    @staticmethod
    def compressor():
        return lzma.LZMACompressor()

    @staticmethod
    def decompressor():
        return lzma.LZMADecompressor()


class Ziplab:
    name = "ziplab"
    error = ZiplabError

    @staticmethod
    def compressor():
        return ziplab.Compressor("lzh", 6, block_size=BLOCK)

    @staticmethod
    def decompressor():
        return ziplab.Decompressor()


@pytest.fixture(params=[Lzma, Ziplab], ids=lambda impl: impl.name)
def impl(request):
    return request.param


def _compressed(impl, data: bytes = INPUT) -> bytes:
    c = impl.compressor()
    return c.compress(data) + c.flush()


def _check_whole(d, blob: bytes, unused: bytes = b"") -> None:
    assert not d.eof
    assert d.decompress(blob) == INPUT
    assert d.eof and d.unused_data == unused


# ---- the lzma behaviours, on both ------------------------------------------------------------
def test_round_trip_in_chunks_of_ten(impl):
    c = impl.compressor()
    blob = b"".join(c.compress(INPUT[i:i + 10]) for i in range(0, len(INPUT), 10)) + c.flush()
    _check_whole(impl.decompressor(), blob)


def test_compressor_fed_byte_by_byte(impl):
    c = impl.compressor()
    blob = b"".join(c.compress(INPUT[i:i + 1]) for i in range(len(INPUT))) + c.flush()
    _check_whole(impl.decompressor(), blob)


def test_decompressor_fed_in_chunks(impl):
    blob, d, out = _compressed(impl), impl.decompressor(), []
    for i in range(0, len(blob), 10):
        assert not d.eof
        out.append(d.decompress(blob[i:i + 10]))
    assert b"".join(out) == INPUT and d.eof and d.unused_data == b""


def test_decompressor_fed_byte_by_byte(impl):
    blob, d = _compressed(impl), impl.decompressor()
    out = b"".join(d.decompress(blob[i:i + 1]) for i in range(len(blob)))
    assert out == INPUT and d.eof and d.unused_data == b"" and not d.needs_input


def test_max_length_holds_output_back_and_needs_input_says_so(impl):
    blob, d, out, limit = _compressed(impl), impl.decompressor(), [], 100
    half = len(blob) // 2
    out.append(d.decompress(blob[:half], max_length=limit))
    assert not d.needs_input and len(out[-1]) == limit
    out.append(d.decompress(b"", max_length=limit))  # more output without more input
    assert not d.needs_input and len(out[-1]) == limit
    out.append(d.decompress(blob[half:], max_length=limit))
    assert len(out[-1]) <= limit
    while not d.eof:
        out.append(d.decompress(b"", max_length=limit))
        assert len(out[-1]) <= limit
    assert b"".join(out) == INPUT and d.unused_data == b""


def test_input_buffer_filled_then_drained(impl):
    blob, d, out = _compressed(impl), impl.decompressor(), []
    assert d.decompress(blob[:100], max_length=0) == b""
    out.append(d.decompress(b"", 2))
    out.append(d.decompress(blob[100:105], 15))
    out.append(d.decompress(blob[105:]))
    assert b"".join(out) == INPUT


def test_input_buffer_emptied_then_refilled(impl):
    blob, d, out = _compressed(impl), impl.decompressor(), []
    assert d.decompress(blob[:200], max_length=0) == b""
    out.append(d.decompress(b""))
    out.append(d.decompress(blob[200:280], 2))
    out.append(d.decompress(blob[280:300], 2))
    out.append(d.decompress(blob[300:]))
    assert b"".join(out) == INPUT


def test_input_buffer_grown_while_output_is_held(impl):
    blob, d, out = _compressed(impl), impl.decompressor(), []
    out.append(d.decompress(blob[:200], 5))
    out.append(d.decompress(blob[200:300], 5))
    out.append(d.decompress(blob[300:]))
    assert b"".join(out) == INPUT


def test_data_after_the_stream_is_unused_data(impl):
    _check_whole(impl.decompressor(), _compressed(impl) + b"fooblibar", unused=b"fooblibar")


def test_after_the_end_decompress_raises_eof_error(impl):
    d = impl.decompressor()
    d.decompress(_compressed(impl))
    with pytest.raises(EOFError):
        d.decompress(b"nyan")


def test_bad_input_raises_the_error_class_and_again_on_a_second_call(impl):
    d = impl.decompressor()
    for _ in range(2):
        with pytest.raises(impl.error):
            d.decompress(b"\x5d\x00\x00\x80\x00" + bytes(range(200)) * 3)


def test_a_truncated_stream_never_reaches_eof(impl):
    blob, d = _compressed(impl), impl.decompressor()
    d.decompress(blob[:-1])
    assert not d.eof and d.needs_input


def test_compressing_after_flush_is_a_value_error(impl):
    c = impl.compressor()
    c.compress(b"abc")
    c.flush()
    with pytest.raises(ValueError):
        c.compress(b"quux")
    with pytest.raises(ValueError):
        c.flush()


def test_nothing_compressed_round_trips(impl):
    c = impl.compressor()
    d = impl.decompressor()
    assert d.decompress(c.flush()) == b"" and d.eof


def test_only_the_first_of_two_concatenated_streams_is_decoded(impl):
    first, second = _compressed(impl), _compressed(impl, b"second")
    d = impl.decompressor()
    assert d.decompress(first + second) == INPUT and d.unused_data == second


def test_bytes_like_inputs(impl):
    c = impl.compressor()
    blob = c.compress(bytearray(INPUT[:5000])) + c.compress(memoryview(INPUT)[5000:]) + c.flush()
    assert impl.decompressor().decompress(memoryview(blob)) == INPUT


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=3000) | st.sampled_from([b"", bytes(range(256)) * 9, b"ab" * 1500]),
       trailing=st.binary(max_size=40), cuts=st.lists(st.integers(1, 400), min_size=1, max_size=12),
       limit=st.sampled_from([-1, 1, 7, 300]))
def test_any_data_cut_anywhere_round_trips(data, trailing, cuts, limit):
    for impl in (Lzma, Ziplab):
        c, pieces, at, step = impl.compressor(), [], 0, 0
        while at < len(data):
            pieces.append(c.compress(data[at:at + cuts[step % len(cuts)]]))
            at, step = at + cuts[step % len(cuts)], step + 1
        blob = b"".join(pieces) + c.flush() + trailing
        d, out, at, step = impl.decompressor(), [], 0, 0
        while not d.eof:
            if d.needs_input:
                assert at < len(blob), impl.name
                chunk = blob[at:at + cuts[step % len(cuts)]]
                at, step = at + len(chunk), step + 1
            else:
                chunk = b""
            out.append(d.decompress(chunk, max_length=limit))
            assert limit < 0 or len(out[-1]) <= limit
        assert b"".join(out) == data, impl.name
        assert d.unused_data + blob[at:] == trailing, impl.name


# ---- ziplab's own ------------------------------------------------------------------------------
def test_output_does_not_depend_on_how_the_input_was_cut():
    whole = _compressed(Ziplab)
    c = Ziplab.compressor()
    odd = b"".join(c.compress(INPUT[i:i + 333]) for i in range(0, len(INPUT), 333)) + c.flush()
    piped = io.BytesIO()
    container.compress_file(OneWay(INPUT), piped, "lzh", 6, block_size=BLOCK)
    assert odd == whole == piped.getvalue()


def test_decompressor_reads_classic_members_and_every_codec_setting():
    for blob in (ziplab.compress(INPUT, "lzh", block_size=BLOCK), ziplab.compress(b"", "huffman"),
                 ziplab.compress(INPUT, "store", block_size=7)):
        d = ziplab.Decompressor()
        out = b"".join(d.decompress(blob[i:i + 5]) for i in range(0, len(blob), 5))
        assert d.eof and out == ziplab.decompress(blob)


def test_real_files_in_random_pieces_both_ways(bench_file):
    rng = random.Random(len(bench_file))
    c, pieces, at = ziplab.Compressor("lzh", 1, block_size=1 << 16), [], 0
    while at < len(bench_file):
        step = rng.choice([1, 17, 4096, 70_000])
        pieces.append(c.compress(bench_file[at:at + step]))
        at += step
    blob = b"".join(pieces) + c.flush()
    d, out, at = ziplab.Decompressor(), [], 0
    while not d.eof:
        chunk = blob[at:at + rng.choice([1, 13, 5000, 100_000])]  # all of it is taken, even with output held
        out.append(d.decompress(chunk, max_length=rng.choice([-1, 1000])))
        at += len(chunk)
    assert b"".join(out) == bench_file


def test_a_corrupt_block_is_the_containers_own_error():
    blob = bytearray(_compressed(Ziplab))
    blob[len(blob) // 2] ^= 1
    with pytest.raises(ZiplabError):
        ziplab.Decompressor().decompress(bytes(blob))


def test_an_absurd_payload_length_is_refused_without_waiting_for_it():
    blob = _compressed(Ziplab)
    header = container.read_header(io.BytesIO(blob))
    frame = container.BLOCK.pack(BLOCK, 1 << 30, container.STORED, 0)
    with pytest.raises(FormatError, match="stored block 0 has payload"):
        ziplab.Decompressor().decompress(blob[:header.header_size] + frame)


def test_garbage_is_refused_after_four_bytes():
    d = ziplab.Decompressor()
    with pytest.raises(FormatError, match="bad magic number"):
        d.decompress(b"ZLa_")


def test_bad_settings_are_refused_when_the_compressor_is_made():
    with pytest.raises(ZiplabError):
        ziplab.Compressor("nope")
    with pytest.raises(ZiplabError):
        ziplab.Compressor("lzh", 42)
    with pytest.raises(ZiplabError):
        ziplab.Compressor("lzh", block_size=-1)


def test_threads_sharing_one_object_are_serialised():
    c = ziplab.Compressor("store", block_size=64)
    chunks = [bytes([i]) * 64 for i in range(32)]
    outputs: list[bytes] = []
    lock = threading.Lock()

    def work(mine: list[bytes]) -> None:
        for chunk in mine:
            out = c.compress(chunk)
            with lock:
                outputs.append(out)

    threads = [threading.Thread(target=work, args=(chunks[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    blob = b"".join(outputs) + c.flush()
    back = ziplab.decompress(blob)
    assert sorted(back[i:i + 64] for i in range(0, len(back), 64)) == chunks


def _peak_decoding(blob: bytes, feed: int) -> int:
    d = ziplab.Decompressor()
    tracemalloc.start()
    try:
        for i in range(0, len(blob), feed):
            d.decompress(blob[i:i + feed], max_length=1000)
            while not d.needs_input and not d.eof:
                d.decompress(b"", max_length=1 << 16)
        assert d.eof
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_decompressor_holds_about_one_block_beside_its_input():
    size = 1 << 20
    blob = ziplab.compress(bytes(8 * size), "store", block_size=size)
    whole = _peak_decoding(blob, len(blob))  # the input is kept as given, not copied
    assert whole < 2.5 * size, whole  # the block read from it, and the output held back
    pieces = _peak_decoding(blob, 1 << 16)
    assert pieces < 3.5 * size, pieces  # and up to one block of input waiting to be whole
