"""The container's checks at their exact bounds, with the exact messages a user reads: a claim
one byte inside a limit passes the limit (and fails later, for another reason), one byte beyond
it is refused; reads stay bounded in memory; defaults and options reach where they should.
(Written to kill the mutants that survived benchmarks/mutation.py.)"""

from __future__ import annotations

import base64
import io
import json
import struct
import tracemalloc
import zlib

import numpy as np
import pytest

import ziplab
from ziplab import codecs, container, frames
from ziplab.container import Header
from ziplab.errors import (ChecksumError, FormatError, LimitError, ParameterError, TruncatedError,
                           UnknownCodecError, ZiplabError)

from .conftest import SAMPLES
from .test_container import OneWay

BLOCK = container.BLOCK


def _error(blob: bytes, stream=io.BytesIO) -> ZiplabError:
    with pytest.raises(ZiplabError) as info:
        container.decompress_file(stream(blob), io.BytesIO())
    return info.value


# ---- what a header may claim ----------------------------------------------------------------
def _store_claiming(claim: int, payload: int, block_size: int = 1 << 16) -> bytes:
    """A store file whose header claims `claim` bytes, with one block of `payload` bytes behind it."""
    body = BLOCK.pack(claim, payload, container.STORED, 0) + bytes(payload)
    return Header("store", {}, block_size, claim, 0).encode() + body


def test_a_claim_is_bounded_by_payload_times_ratio_plus_64_per_block():
    payload = 1000
    inside = _error(_store_claiming(payload + 64, payload))  # the most a store block may claim
    assert not isinstance(inside, LimitError), inside
    assert str(inside) == f"stored block 0 has payload {payload} for {payload + 64} bytes"
    beyond = _error(_store_claiming(payload + 65, payload))
    available = BLOCK.size + payload
    assert isinstance(beyond, LimitError)
    assert str(beyond) == (f"header claims {payload + 65} bytes from {available} bytes of payload: more than "
                           "codec 'store' can produce (corrupt file or decompression bomb)")


def test_a_header_needing_more_block_framing_than_the_file_holds_is_truncated():
    blob = Header("store", {}, 10, 30, 0).encode() + bytes(20)  # 3 blocks need 3 x 13 framing bytes
    err = _error(blob)
    assert isinstance(err, TruncatedError)
    assert str(err) == "file is truncated: 3 blocks need at least 39 bytes, 20 remain"


def _huffman_block(raw_len: int, pay_len: int, kind: int = container.CODED, trailing: int = 4000) -> bytes:
    """One huffman block; trailing bytes make the whole-file claim pass, so the block's own
    check is the one that decides."""
    body = BLOCK.pack(raw_len, pay_len, kind, 0) + bytes(pay_len) + bytes(trailing)
    return Header("huffman", {}, 1 << 20, raw_len, 0).encode() + body


def test_a_block_is_bounded_by_payload_times_ratio_plus_64():
    ratio = codecs.get("huffman").max_ratio
    pay = 100
    bound = int(pay * ratio + 64)
    assert bound == pay * ratio + 64
    assert not isinstance(_error(_huffman_block(bound, pay)), LimitError)
    beyond = _error(_huffman_block(bound + 1, pay))
    assert isinstance(beyond, LimitError)
    assert str(beyond) == f"block 0 claims {bound + 1} bytes from a {pay}-byte payload"


def test_block_framing_errors_say_exactly_what_is_wrong():
    cases = [
        (_huffman_block(500, 500), "block 0 has an invalid kind or payload length"),  # coded but no smaller
        (_huffman_block(500, 100, kind=7), "block 0 has an invalid kind or payload length"),
        (_huffman_block(500, 100, kind=container.STORED), "stored block 0 has payload 100 for 500 bytes"),
    ]
    for blob, message in cases:
        err = _error(blob)
        assert isinstance(err, FormatError) and str(err) == message, message
    wrong_len = Header("store", {}, 100, 150, 0).encode() + BLOCK.pack(90, 90, container.STORED, 0) + bytes(90)
    assert str(_error(wrong_len, OneWay)) == "block 0 claims 90 bytes where 100 belong"


def test_a_file_cut_inside_a_block_names_the_part():
    blob = ziplab.compress(SAMPLES["text"][:3000], "store", block_size=1000)
    first = container.read_header(io.BytesIO(blob)).header_size
    cut_header = blob[: first + 1000 + BLOCK.size + 5]  # inside block 1's framing
    cut_payload = blob[: first + BLOCK.size + 10]
    assert str(_error(cut_header, OneWay)) == "file is truncated: it ends inside the block 1 header"
    assert str(_error(cut_payload, OneWay)) == "file is truncated: it ends inside the block 0 payload"


def test_checksum_errors_say_which_checksum():
    data = SAMPLES["text"][:3000]
    blob = bytearray(ziplab.compress(data, "store", block_size=1000))
    blob[-1] ^= 1
    err = _error(bytes(blob))
    assert isinstance(err, ChecksumError) and str(err) == "block 2 fails its CRC32: the data is corrupt"
    src = io.BytesIO(good := ziplab.compress(data, "store", block_size=1000))
    header = container.read_header(src)
    header.crc32 ^= 1
    err = _error(header.encode() + good[header.header_size:])
    assert isinstance(err, ChecksumError) and str(err) == "the decoded file fails its CRC32: the data is corrupt"


def test_a_decoder_that_returns_the_wrong_length_is_a_format_error(monkeypatch):
    huffman = type(codecs.get("huffman"))
    real = huffman.decode_block

    def short(self, payload, size, params):
        return real(self, payload, size, params)[:-1]

    monkeypatch.setattr(huffman, "decode_block", short)
    blob = ziplab.compress(SAMPLES["text"][:2000], "huffman", block_size=1000)
    err = _error(blob)
    assert isinstance(err, FormatError) and str(err) == "block 0 decoded to 999 bytes instead of 1000"


# ---- listing members over a pipe ---------------------------------------------------------------
def test_members_skip_blocks_longer_than_one_read_over_a_pipe():
    rng = np.random.default_rng(2)
    a, b = (rng.integers(0, 256, container.CHUNK + 300_000, dtype=np.uint8).tobytes() for _ in range(2))
    za, zb = ziplab.compress(a, "store", block_size=2 << 20), ziplab.compress(b, "lzh")
    listed = [(h.codec, size) for h, size in container.members(OneWay(za + zb))]
    assert listed == [("store", len(za)), ("lzh", len(zb))]


def test_members_messages_and_payload_bound(monkeypatch):
    blob = ziplab.compress(b"x" * 100, "store", block_size=100)
    first = container.read_header(io.BytesIO(blob)).header_size
    with pytest.raises(TruncatedError) as info:
        list(container.members(OneWay(blob[: first + 3])))
    assert str(info.value) == "file is truncated: it ends inside the block 0 header"
    with pytest.raises(TruncatedError) as info:
        list(container.members(OneWay(blob[:-1])))
    assert str(info.value) == "file is truncated: it ends inside block 0"
    monkeypatch.setattr(frames, "MAX_BLOCK", 100)  # members() walks the framing in `frames`
    assert [size for _, size in container.members(io.BytesIO(blob))] == [len(blob)]  # exactly the bound
    big = Header("store", {}, 100, 100, 0).encode() + BLOCK.pack(100, 101, container.STORED, 0)
    with pytest.raises(FormatError) as info:
        list(container.members(io.BytesIO(big)))
    assert str(info.value) == "block 0 claims an implausible payload of 101 bytes"


# ---- header fields at their limits --------------------------------------------------------------
def test_params_of_exactly_the_limit_are_written_and_read():
    pad = '{"model":""}'
    exact = {"model": "a" * (container.MAX_PARAMS - len(pad))}
    assert len(json.dumps(exact, separators=(",", ":"))) == container.MAX_PARAMS
    Header("nn", exact, 4096, 0, 0).encode()
    with pytest.raises(ParameterError):
        Header("nn", {"model": exact["model"] + "a"}, 4096, 0, 0).encode()
    raw = json.dumps(exact, separators=(",", ":")).encode()
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    assert container.inflate_params(packer.compress(raw) + packer.flush()) == raw


def test_params_past_32_kib_use_the_whole_unsigned_length_field():
    rng = np.random.default_rng(4)
    noise = base64.b64encode(rng.integers(0, 256, 45_000, dtype=np.uint8).tobytes()).decode()[:58_000]
    encoded = Header("store", {"pad": noise}, 4096, 0, 0).encode()
    (length,) = struct.unpack("<H", encoded[7 + 5 : 7 + 5 + 2])
    assert length > 1 << 15  # the case a signed field would get wrong
    with pytest.raises(FormatError) as info:  # read whole, then refused for what it holds
        container.read_header(io.BytesIO(encoded))
    assert str(info.value) == "unknown header parameter 'pad'"


def test_a_deflated_params_bomb_is_inflated_only_to_the_limit():
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = packer.compress(bytes(60 << 20)) + packer.flush()
    assert len(bomb) < 1 << 16
    tracemalloc.start()
    try:
        with pytest.raises(ValueError):
            container.inflate_params(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak


def test_header_messages_name_the_codec_and_the_version():
    with pytest.raises(UnknownCodecError) as info:
        container.read_header(io.BytesIO(Header("y" * 60, {}, 4096, 0, 0).encode()))
    assert f"'{'y' * 40}'" in str(info.value)  # the name is cut to 40 characters in the message
    legacy = Header("nn", {}, 4096, 0, 0, version=1).encode()
    with pytest.raises(FormatError) as info:
        container.read_header(io.BytesIO(legacy))
    assert str(info.value).endswith("(format 1 nn files hold ziplab 0.1's float numerics, which only ziplab 0.1 "
                                    "on the CPU kind that wrote them can reproduce)")
    mixed = ziplab.compress(b"abc" * 100, "mix", model="none", lanes=2)
    assert container.read_header(io.BytesIO(mixed)).version == codecs.get("mix").format_version == 4
    older = Header("mix", {"level": 1, "lanes": 2, "model": "none"}, 4096, 0, 0, version=1).encode()
    with pytest.raises(FormatError, match="this is a format 1 'mix' file; this ziplab decodes 'mix' format 2, 3, 4 only"):
        container.read_header(io.BytesIO(older))


# ---- streaming the input ----------------------------------------------------------------------
def test_inputs_longer_than_one_read_are_counted_and_checked_whole():
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, 2 * container.CHUNK + 12345, dtype=np.uint8).tobytes()
    out = io.BytesIO()
    header = container.compress_file(io.BytesIO(data), out, "store")
    assert (header.original_size, header.crc32) == (len(data), zlib.crc32(data))
    assert ziplab.decompress(out.getvalue()) == data


class Sink(io.RawIOBase):
    """Writes go nowhere (so the output does not count in a memory peak)."""

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        return len(b)


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_compressing_reads_a_seekable_input_a_chunk_at_a_time():
    data = bytes(12 * container.CHUNK)
    src = io.BytesIO(data)
    peak = _peak(lambda: container.compress_file(src, Sink(), "store", block_size=container.CHUNK))
    assert peak < 5 * container.CHUNK, peak  # the CRC pass must not read the whole input at once


def test_a_piped_input_is_coded_as_it_arrives_in_one_block_of_memory():
    data = bytes(10 * container.CHUNK)
    out = io.BytesIO()
    peak = _peak(lambda: container.compress_file(OneWay(data), Sink(), "store", block_size=container.CHUNK))
    assert peak < 2.5 * container.CHUNK, peak  # one reused input block, and the codec's payload
    header = container.compress_file(OneWay(data), out, "store", block_size=container.CHUNK)
    assert header.streamed and header.original_size == len(data) and ziplab.decompress(out.getvalue()) == data


# ---- entry points ---------------------------------------------------------------------------------
def test_defaults_and_block_size_bounds():
    assert container.read_header(io.BytesIO(ziplab.compress(b"abc"))).codec == "lzh"
    out = io.BytesIO()
    assert container.compress_file(io.BytesIO(b"abc"), out).codec == "lzh"
    for size in (1, container.MAX_BLOCK):
        blob = ziplab.compress(b"abc", "store", block_size=size)
        assert ziplab.decompress(blob) == b"abc"
    with pytest.raises(ParameterError):
        ziplab.compress(b"abc", "store", block_size=-1)


def test_decompress_file_returns_the_first_members_header():
    a, b = ziplab.compress(b"first" * 50, "lzh"), ziplab.compress(b"second" * 50, "store")
    header = container.decompress_file(io.BytesIO(a + b), io.BytesIO())
    assert (header.codec, header.original_size) == ("lzh", 250)


def test_trailing_garbage_message_is_exact():
    with pytest.raises(FormatError) as info:
        ziplab.decompress(ziplab.compress(b"abc", "lzh") + b"junk")
    assert str(info.value) == "unexpected data after the last block"


def test_open_takes_r_and_rb_closes_its_file_and_refuses_other_modes(tmp_path):
    path = tmp_path / "x.zl"
    path.write_bytes(ziplab.compress(b"hello" * 100, "lzh"))
    for mode in ("r", "rb"):
        with ziplab.open(str(path), mode) as f:
            assert f.read() == b"hello" * 100
            source = f.raw._src
        assert source.closed
    for mode in ("rw", "wbt", "", "b", "r+"):
        with pytest.raises(ParameterError) as info:
            ziplab.open(str(path), mode)
        assert str(info.value) == f"invalid mode {mode!r} for ziplab.open (r, w, x or a, then b or t)"


def test_reader_fills_memoryviews_across_block_ends():
    data = SAMPLES["text"][:5000]
    reader = container.ZLReader(io.BytesIO(ziplab.compress(data, "lzh", block_size=1000)))
    view, out = memoryview(bytearray(333)), b""
    while n := reader.readinto(view):
        out += bytes(view[:n])
    assert out == data


def test_params_are_deflated_only_when_strictly_shorter():
    params = {"m": "acbbacbcc"}  # 16 bytes of JSON that deflate to 16 bytes
    raw = json.dumps(params, separators=(",", ":")).encode()
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    assert len(packer.compress(raw) + packer.flush()) == len(raw)
    encoded = Header("nn", params, 4096, 0, 0).encode()
    assert encoded[5] == 0 and raw in encoded  # a tie keeps the params readable as they are
