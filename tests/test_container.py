"""The .zl container: round trips, streaming, and every way a file can be wrong."""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pytest

import ziplab
from ziplab import container
from ziplab.container import Header
from ziplab.errors import (ChecksumError, FormatError, LimitError, TruncatedError,
                           UnknownCodecError, ZiplabError)

from .conftest import SAMPLES

CLASSIC = ["store", "huffman", "lz77", "lzss", "lzh"]


class OneWay(io.RawIOBase):
    """A non-seekable stream, like a pipe."""

    def __init__(self, data: bytes):
        self._src = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        chunk = self._src.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize("codec", CLASSIC)
def test_round_trip_every_sample(codec, sample):
    assert ziplab.decompress(ziplab.compress(sample, codec)) == sample


@pytest.mark.parametrize("codec", CLASSIC)
def test_block_boundaries_are_crossed(codec):
    data = SAMPLES["text"] * 4 + SAMPLES["random"][:5000]
    blob = ziplab.compress(data, codec, block_size=4099)
    assert container.read_header(io.BytesIO(blob)).blocks == -(-len(data) // 4099)
    assert ziplab.decompress(blob) == data


def test_compression_is_deterministic():
    data = SAMPLES["text"]
    assert ziplab.compress(data, "lzh", 9) == ziplab.compress(data, "lzh", 9)


def test_streams_from_pipes_both_ways():
    data = SAMPLES["text"] * 10
    out = io.BytesIO()
    container.compress_file(OneWay(data), out, "lzh", block_size=1000)
    back = io.BytesIO()
    container.decompress_file(OneWay(out.getvalue()), back)
    assert back.getvalue() == data


def test_incompressible_blocks_are_stored():
    data = SAMPLES["random"]
    blob = ziplab.compress(data, "huffman")
    assert len(blob) < len(data) + 100


def test_open_reads_like_gzip_open(tmp_path):
    data = SAMPLES["text"] * 7
    path = tmp_path / "t.zl"
    path.write_bytes(ziplab.compress(data, "lzss", block_size=777))
    with ziplab.open(str(path)) as f:
        assert f.read(10) == data[:10]
        assert f.read() == data[10:]


def test_header_round_trip():
    h = Header("lzh", {"level": 9}, 1 << 20, 12345, 0xDEADBEEF)
    back = container.read_header(io.BytesIO(h.encode()))
    assert (back.codec, back.params, back.block_size, back.original_size, back.crc32) == (
        "lzh", {"level": 9}, 1 << 20, 12345, 0xDEADBEEF)


def test_long_params_are_stored_deflated_and_read_back():
    params = {"model": "shipped", "model_sha256": "ab" * 32, "engine": "lstm-int8-v1", "quant_sha256": "cd" * 32,
              "family": "lstm", "size": "l4", "config": {"n_layer": 2, "n_embd": 224, "n_hidden": 224},
              "lanes": 128, "substreams": 2}
    raw = Header("nn", params, 1024, 0, 0, version=2).encode()
    assert raw[5] == container.FLAG_PARAMS_DEFLATED
    assert container.read_header(io.BytesIO(raw)).params == params
    assert Header("lzh", {"level": 9}, 1024, 0, 0).encode()[5] == 0  # too short to gain


def _with_params(flags: int, params_raw: bytes) -> bytes:
    """A header with a valid CRC around arbitrary stored params bytes."""
    head = container.MAGIC + bytes([container.VERSION, flags, 5]) + b"store"
    head += struct.pack("<H", len(params_raw)) + params_raw + struct.pack("<IQI", 1024, 0, 0)
    return head + struct.pack("<I", zlib.crc32(head))


def test_deflated_params_that_balloon_or_are_garbage_are_refused():
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = packer.compress(b'{"a":"' + b"x" * (container.MAX_PARAMS + 10) + b'"}') + packer.flush()
    for raw in (bomb, b"\x00garbage"):
        with pytest.raises(FormatError, match="unreadable"):
            container.read_header(io.BytesIO(_with_params(container.FLAG_PARAMS_DEFLATED, raw)))
    with pytest.raises(FormatError, match="flags"):
        container.read_header(io.BytesIO(_with_params(0x80, b"{}")))


# --- bad input -------------------------------------------------------------------------


def _blob() -> bytes:
    return ziplab.compress(SAMPLES["text"] + SAMPLES["all256"], "lzh", block_size=5000)


def test_truncated_anywhere_is_a_clear_error():
    blob = _blob()
    for cut in range(0, len(blob)):
        with pytest.raises(ZiplabError):
            ziplab.decompress(blob[:cut])


def test_truncated_header_fields_say_truncated():
    blob = _blob()
    header_size = container.read_header(io.BytesIO(blob)).header_size
    for cut in range(header_size):
        with pytest.raises((TruncatedError, FormatError)):
            ziplab.decompress(blob[:cut])


def test_flipped_payload_bits_never_pass():
    blob = bytearray(_blob())
    start = container.read_header(io.BytesIO(bytes(blob))).header_size
    rng = np.random.default_rng(0)
    for pos in rng.integers(start, len(blob), 200):
        bad = bytearray(blob)
        bad[pos] ^= 1 << int(rng.integers(8))
        with pytest.raises(ZiplabError):
            ziplab.decompress(bytes(bad))


def test_flipped_header_bits_are_caught_by_the_header_crc():
    blob = _blob()
    size = container.read_header(io.BytesIO(blob)).header_size
    for pos in range(4, size):
        bad = bytearray(blob)
        bad[pos] ^= 0x10
        with pytest.raises(FormatError):
            ziplab.decompress(bytes(bad))


def test_wrong_magic():
    with pytest.raises(FormatError, match="magic"):
        ziplab.decompress(b"PK\x03\x04" + _blob()[4:])


def test_unknown_codec():
    blob = Header("nope", {}, 1024, 0, 0).encode()
    with pytest.raises(UnknownCodecError, match="nope"):
        ziplab.decompress(blob)


def test_unknown_version():
    blob = bytearray(Header("store", {}, 1024, 0, 0).encode())
    blob[4] = 99
    with pytest.raises(FormatError, match="version"):
        ziplab.decompress(bytes(blob))


@pytest.mark.parametrize("stream", [io.BytesIO, OneWay])
def test_decompression_bomb_headers_are_refused(stream):
    body = struct.pack("<IIBI", 1 << 20, 10, 0, 0) + b"x" * 10
    blob = Header("huffman", {}, 1 << 20, 1 << 40, 0).encode() + body
    with pytest.raises((LimitError, TruncatedError)):
        container.decompress_file(stream(blob), io.BytesIO())


def test_block_that_claims_too_much_is_refused_before_decoding():
    raw = 1 << 20
    blob = Header("huffman", {}, raw, raw, 0).encode() + struct.pack("<IIBI", raw, 4, 0, 0) + b"abcd"
    with pytest.raises(LimitError):
        container.decompress_file(OneWay(blob), io.BytesIO())


def test_checksum_mismatch_is_reported():
    data = b"hello world" * 100
    blob = bytearray(ziplab.compress(data, "store"))
    blob[-1] ^= 1
    with pytest.raises(ChecksumError):
        ziplab.decompress(bytes(blob))


def test_trailing_garbage_is_reported():
    with pytest.raises(FormatError, match="after the last block"):
        ziplab.decompress(ziplab.compress(b"abc", "lzh") + b"junk")


def test_garbage_is_a_clear_error():
    rng = np.random.default_rng(5)
    for n in (0, 1, 10, 100, 5000):
        with pytest.raises(ZiplabError):
            ziplab.decompress(rng.integers(0, 256, n, dtype=np.uint8).tobytes())


def test_garbage_after_a_valid_header_is_a_clear_error():
    rng = np.random.default_rng(6)
    for codec in CLASSIC:
        for _ in range(20):
            size = int(rng.integers(1, 3000))
            body = struct.pack("<IIBI", size, size // 2, 0, 0) + rng.integers(0, 256, size // 2, dtype=np.uint8).tobytes()
            blob = Header(codec, {"level": 6} if codec in ("lz77", "lzss", "lzh") else {}, size, size, 0).encode() + body
            with pytest.raises(ZiplabError):
                ziplab.decompress(blob)


def test_crc_is_of_the_original():
    data = SAMPLES["text"]
    header = container.read_header(io.BytesIO(ziplab.compress(data, "store")))
    assert header.crc32 == zlib.crc32(data)
    assert header.original_size == len(data)


def test_files_are_byte_identical_across_processes_and_hash_seeds():
    """Headers are JSON of dicts and sets of names: a dict or set order that leaked into the file
    would differ between processes with different PYTHONHASHSEED values. Whole files compared."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    t1 = root / "tests" / "data" / "golden" / "t1-golden.safetensors"
    script = (
        "import sys, ziplab\n"
        "data = bytes(range(256)) + b'the cat sat on the mat; ' * 40\n"
        "for codec, level, opts in [('lzh', 9, {}), ('ctx', 2, {'lanes': 4}), ('mix', 1, {'model': 'none', 'lanes': 4}),"
        f" ('nn', None, {{'model': {str(t1)!r}, 'lanes': 4}})]:\n"
        "    sys.stdout.buffer.write(ziplab.compress(data, codec, level, **opts))\n"
    )
    outputs = set()
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        res = subprocess.run([sys.executable, "-c", script], capture_output=True, env=env, cwd=root, timeout=600)
        assert res.returncode == 0, res.stderr.decode()[-2000:]
        outputs.add(res.stdout)
    assert len(outputs) == 1


# ---- members, concatenation, the reader, options: the paths `ziplab -l` and `ziplab.open` take ----
def _two_members() -> tuple[bytes, bytes, bytes, bytes]:
    a, b = SAMPLES["text"] * 3, SAMPLES["random"][:5000]
    return a, b, ziplab.compress(a, "lzh", block_size=1000), ziplab.compress(b, "huffman", block_size=3000)


@pytest.mark.parametrize("pipe", [False, True], ids=["seekable", "pipe"])
def test_members_lists_every_member_without_decoding(pipe):
    a, b, za, zb = _two_members()
    stream = OneWay(za + zb) if pipe else io.BytesIO(za + zb)
    found = list(container.members(io.BufferedReader(stream) if pipe else stream))
    assert [(h.codec, h.original_size, h.blocks, size) for h, size in found] == [
        ("lzh", len(a), -(-len(a) // 1000), len(za)), ("huffman", len(b), 2, len(zb))]


@pytest.mark.parametrize("pipe", [False, True], ids=["seekable", "pipe"])
def test_members_of_a_file_cut_inside_a_block_say_truncated(pipe):
    _, _, za, _ = _two_members()
    for cut in (len(za) - 1, len(za) - 200):
        stream = OneWay(za[:cut]) if pipe else io.BytesIO(za[:cut])
        with pytest.raises(TruncatedError):
            list(container.members(io.BufferedReader(stream) if pipe else stream))


def test_members_refuse_an_implausible_payload_length():
    _, _, za, _ = _two_members()
    header = container.read_header(io.BytesIO(za))
    raw_len, _, kind, crc = struct.unpack("<IIBI", za[header.header_size:header.header_size + 13])
    bad = za[:header.header_size] + struct.pack("<IIBI", raw_len, container.MAX_BLOCK + 1, kind, crc)
    with pytest.raises(FormatError, match="implausible"):
        list(container.members(io.BytesIO(bad + za[header.header_size + 13:])))


def test_concatenated_members_decode_in_order_and_garbage_after_them_is_refused():
    a, b, za, zb = _two_members()
    assert ziplab.decompress(za + zb) == a + b
    assert container.next_member(io.BytesIO(b"")) is None
    with pytest.raises(FormatError, match="after the last block"):
        ziplab.decompress(za + b"JUNK")
    with io.BufferedReader(container.ZLReader(io.BytesIO(za + zb))) as f:
        assert f.read() == a + b


def test_reader_reads_in_pieces_and_closes_its_source(tmp_path):
    a, _, za, _ = _two_members()
    source = io.BytesIO(za)
    reader = container.ZLReader(source, close_source=True)
    assert reader.header.codec == "lzh" and reader.readable()
    buf, out = bytearray(333), b""
    while n := reader.readinto(buf):
        assert 0 < n <= 333
        out += bytes(buf[:n])
    assert out == a and reader.readinto(buf) == 0
    reader.close()
    assert source.closed and reader.closed
    kept = io.BytesIO(za)
    container.ZLReader(kept).close()
    assert not kept.closed
    with pytest.raises(ZiplabError):
        ziplab.open(str(tmp_path / "x.zl"), "rw")


def test_progress_hears_every_input_byte_once():
    for codec, kwargs in [("lzh", {}), ("ctx", {"lanes": 4}), ("mix", {"model": "none", "lanes": 4})]:
        data = SAMPLES["text"][:9000] + SAMPLES["random"][:3000]
        heard: list[int] = []
        blob = ziplab.compress(data, codec, block_size=4000, progress=heard.append, **kwargs)
        assert sum(heard) == len(data), codec
        heard.clear()
        assert ziplab.decompress(blob, progress=heard.append) == data and sum(heard) == len(data), codec


def test_options_a_codec_does_not_take_are_one_line_errors():
    from ziplab.errors import ParameterError

    with pytest.raises(ParameterError, match="takes no option 'lanes'"):
        ziplab.compress(b"abc", "lzh", lanes=4)
    with pytest.raises(ParameterError, match="takes no option 'model' when decoding"):
        ziplab.decompress(ziplab.compress(b"abc" * 100, "lzh"), model="x")
    assert ziplab.decompress(ziplab.compress(b"abc" * 100, "lzh"), workers=2) == b"abc" * 100
    for bad in (0, 5000):
        with pytest.raises(ParameterError, match="lanes"):
            ziplab.compress(b"abc", "ctx", lanes=bad)
    for bad in (0, 65):
        with pytest.raises(ParameterError, match="workers"):
            ziplab.compress(b"abc", "ctx", workers=bad)
    with pytest.raises(ParameterError, match="block size"):
        ziplab.compress(b"abc", "lzh", block_size=container.MAX_BLOCK + 1)


def test_header_fields_round_trip_exactly():
    blob = ziplab.compress(SAMPLES["text"], "ctx", 3, lanes=8, workers=2, block_size=5000)
    h = container.read_header(io.BytesIO(blob))
    assert (h.codec, h.version, h.block_size, h.original_size) == ("ctx", 1, 5000, len(SAMPLES["text"]))
    assert h.params["lanes"] == 8 and h.params["workers"] == 2 and h.params["level"] == 3
    assert h.crc32 == zlib.crc32(SAMPLES["text"]) and h.blocks == -(-len(SAMPLES["text"]) // 5000)
    assert h.header_size == len(h.encode()) and blob.startswith(h.encode())
    empty = container.read_header(io.BytesIO(ziplab.compress(b"", "lzh")))
    assert empty.blocks == 0 and empty.original_size == 0


def _crafted(codec: bytes = b"lzh", params: bytes = b'{"level":6}', block_size: int = 4096, version: int = 1,
             flags: int = 0, crc_ok: bool = True) -> bytes:
    head = b"ZLab" + bytes([version, flags, len(codec)]) + codec + struct.pack("<H", len(params)) + params
    head += struct.pack("<IQI", block_size, 0, 0)
    return head + struct.pack("<I", zlib.crc32(head) if crc_ok else zlib.crc32(head) ^ 1)


def test_every_header_error_has_its_exact_message():
    """The messages a user reads, pinned: a truncation names the field it ends in."""
    good = _crafted()
    assert container.read_header(io.BytesIO(good)).header_size == len(good)
    name_at = 7
    fields = {2: "magic number", 5: "header", name_at + 1: "codec name", name_at + 4: "header",
              name_at + 3 + 2 + 3: "codec parameters", len(good) - 3: "header"}
    for cut, what in fields.items():
        with pytest.raises(TruncatedError) as info:
            container.read_header(io.BytesIO(good[:cut]))
        assert str(info.value) == f"file is truncated: it ends inside the {what}"
    cases = [
        (b"ZLaX" + good[4:], FormatError, "not a .zl file (bad magic number)"),
        (_crafted(version=9), FormatError,
         "unsupported .zl format version 9 (this ziplab reads 1, 2, 3, 4): it was written by a newer ziplab"),
        (_crafted(flags=4), FormatError, "unsupported header flags 0x4"),
        (_crafted(crc_ok=False), FormatError, "header checksum mismatch: the header is corrupt or was altered"),
        (_crafted(params=b"{nope"), FormatError, "header holds an unreadable codec name or parameters"),
        (_crafted(codec=b"\xff\xfe"), FormatError, "header holds an unreadable codec name or parameters"),
        (_crafted(codec=b"lz\x01"), FormatError, "header holds an unreadable codec name"),
        (_crafted(block_size=0), FormatError, "implausible block size 0"),
        (_crafted(block_size=container.MAX_BLOCK + 1), FormatError, f"implausible block size {container.MAX_BLOCK + 1}"),
        (_crafted(version=2), FormatError, "this is a format 2 'lzh' file; this ziplab decodes 'lzh' format 1 only"),
        (_crafted(flags=1, params=b"\x00\x01"), FormatError, "header holds an unreadable codec name or parameters"),
    ]
    for blob, kind, message in cases:
        with pytest.raises(kind) as info:
            container.read_header(io.BytesIO(blob))
        assert str(info.value) == message, message
    for size in (1, container.MAX_BLOCK):
        assert container.read_header(io.BytesIO(_crafted(block_size=size))).block_size == size
    with pytest.raises(UnknownCodecError):
        container.read_header(io.BytesIO(_crafted(codec=b"x" * 60)))


def test_header_encoding_is_canonical():
    """Params are sorted compact JSON (the bytes must not depend on dict order), deflated only when
    that is shorter, and the flag says which."""
    a = Header("lzh", {"zz": 1, "aa": [2, 3]}, 4096, 10, 7)
    b = Header("lzh", {"aa": [2, 3], "zz": 1}, 4096, 10, 7)
    assert a.encode() == b.encode() and b'{"aa":[2,3],"zz":1}' in a.encode()
    assert a.encode()[5] == 0  # short params: stored as they are
    long = Header("nn", {"model": "m" * 600}, 4096, 10, 7).encode()
    assert long[5] == 1 and len(long) < 300
    with pytest.raises(ZiplabError) as info:
        Header("nn", {"model": "".join(chr(0x4E00 + i) for i in range(30000))}, 4096, 10, 7).encode()
    assert str(info.value) == "codec parameters too large for the header"


def test_deflated_params_are_bounded_exactly():
    raw = json.dumps({"model": "a" * (container.MAX_PARAMS - 20)}).encode()
    packed = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = packed.compress(raw) + packed.flush()
    assert container.inflate_params(deflated) == raw
    too_big = zlib.compressobj(9, zlib.DEFLATED, -15)
    big = json.dumps({"model": "a" * (container.MAX_PARAMS + 10)}).encode()
    with pytest.raises(ValueError, match="^bad deflated params$"):
        container.inflate_params(too_big.compress(big) + too_big.flush())
    with pytest.raises(ValueError):
        container.inflate_params(deflated[:-3])
    with pytest.raises(ValueError):
        container.inflate_params(deflated + b"xx")
