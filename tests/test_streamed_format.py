"""The streamed member (docs/FORMAT-streaming.md): its bytes pinned by golden files and the
document's own example, every way one can be wrong with its exact message, listing, and the CLI
compressing a pipe as it arrives."""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from pathlib import Path

import pytest

import ziplab
from ziplab import container
from ziplab.container import Header
from ziplab.errors import ChecksumError, FormatError, TruncatedError, ZiplabError

from .conftest import CLI_DATA, SAMPLES, zl
from .test_container import OneWay

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"
BLOCK = container.BLOCK
DATA = SAMPLES["text"][:5000] + SAMPLES["all256"]


def _streamed(data: bytes, codec: str = "lzh", level: int | None = None, block_size: int | None = 1000) -> bytes:
    c = ziplab.Compressor(codec, level, block_size=block_size)
    return c.compress(data) + c.flush()


def _inputs() -> dict[str, bytes]:
    text = ziplab.decompress((GOLDEN / "v1-text-store.zl").read_bytes())
    mixed = ziplab.decompress((GOLDEN / "v1-mixed-store.zl").read_bytes())
    return {"text": text, "mixed": mixed, "empty": b"", "text[:2000]": text[:2000]}


@pytest.mark.parametrize("entry", json.loads((GOLDEN / "streamed-manifest.json").read_text()), ids=lambda e: e["file"])
def test_the_compressor_still_writes_each_golden_file_byte_for_byte(entry):
    """(test_portable decodes them with every other golden file.)"""
    blob = (GOLDEN / entry["file"]).read_bytes()
    inputs = _inputs()
    if entry["input"] not in inputs:  # a classic member, then a streamed one
        first = ziplab.compress(inputs["mixed"], "lzss", 6)
        assert blob == first + _streamed(inputs["text"], entry["codec"], entry["level"], entry["block_size"])
        return
    options = {"model": entry["model"]} if "model" in entry else {}
    header = container.read_header(io.BytesIO(blob))
    assert header.streamed and (header.original_size, header.crc32) == (0, 0)
    c = ziplab.Compressor(entry["codec"], entry["level"], block_size=entry["block_size"], **options)
    written = c.compress(inputs[entry["input"]]) + c.flush()
    engine = header.params.get("engine")
    if engine is not None and container.read_header(io.BytesIO(written)).params["engine"] != engine:
        # coded by an older engine, which encoders no longer choose: it must still decode (test_portable)
        assert ziplab.decompress(blob) == ziplab.decompress(written) == inputs[entry["input"]]
        return
    assert written == blob


def test_the_documents_example_is_what_is_written():
    doc = (ROOT / "docs" / "FORMAT-streaming.md").read_text()
    example = doc.split("## Example")[1].split("```")[1]
    hexes = "".join(re.match(r"((?:[0-9a-f]{2} )+)", line + " ").group(1) for line in example.strip().splitlines())
    c = ziplab.Compressor("store", block_size=4)
    assert bytes.fromhex(hexes) == c.compress(b"abcdef") + c.flush()


@pytest.mark.parametrize("codec", ["store", "huffman", "lz77", "lzss", "lzh", "ctx"])
@pytest.mark.parametrize("name", ["empty", "one", "all256", "random", "text", "zeros"])
def test_round_trip(codec, name):
    data = SAMPLES[name]
    assert ziplab.decompress(_streamed(data, codec, block_size=4099)) == data


def test_header_round_trip_and_canonical_zero_fields():
    h = Header("lzh", {"level": 9}, 4096, 123, 456, streamed=True)
    raw = h.encode()
    assert raw[5] == container.FLAG_STREAMED and raw[-16:-4] == bytes(12)
    back = container.read_header(io.BytesIO(raw))
    assert back.streamed and (back.original_size, back.crc32, back.blocks) == (0, 0, 0)
    long = Header("nn", {"model": "m" * 600}, 4096, 0, 0, version=2, streamed=True).encode()
    assert long[5] == container.FLAG_STREAMED | container.FLAG_PARAMS_DEFLATED


def _raw_header(size: int, crc: int, flags: int = container.FLAG_STREAMED) -> bytes:
    head = b"ZLab" + bytes([1, flags, 3]) + b"lzh" + struct.pack("<H", 11) + b'{"level":6}'
    head += struct.pack("<IQI", 1000, size, crc)
    return head + struct.pack("<I", zlib.crc32(head))


def test_a_streamed_header_claiming_a_length_or_crc_is_refused():
    for size, crc in ((1, 0), (0, 1)):
        with pytest.raises(FormatError) as info:
            container.read_header(io.BytesIO(_raw_header(size, crc)))
        assert str(info.value) == "a streamed member's header must hold 0 for the length and CRC"


def _parts(blob: bytes) -> tuple[bytes, list[bytes], bytes]:
    """(header, [each data block with its framing], end block)."""
    header = container.read_header(io.BytesIO(blob))
    pos, blocks = header.header_size, []
    while BLOCK.unpack_from(blob, pos)[2] != container.END:
        size = container.block_length(blob[pos:pos + BLOCK.size])
        blocks.append(blob[pos:pos + size])
        pos += size
    return blob[:header.header_size], blocks, blob[pos:]


def _end(length: int, crc: int, raw_len: int = 0, pay_len: int = 12, good_crc: bool = True) -> bytes:
    trailer = struct.pack("<QI", length, crc)
    return BLOCK.pack(raw_len, pay_len, container.END, zlib.crc32(trailer) ^ (0 if good_crc else 1)) + trailer


def _message(blob: bytes) -> ZiplabError:
    with pytest.raises(ZiplabError) as info:
        ziplab.decompress(blob)
    return info.value


def test_every_streamed_error_has_its_exact_message():
    blob = _streamed(DATA)
    head, blocks, end = _parts(blob)
    n, crc = len(DATA), zlib.crc32(DATA)
    assert len(blocks) == 6 and end == _end(n, crc)
    cases = [
        (head + b"".join(blocks[:2]) + blocks[-1] + blocks[2], FormatError,
         "block 3 follows a short block (only the last block may be short)"),
        (head + blocks[0] + _end(1000, zlib.crc32(DATA[:1000]), raw_len=5), FormatError,
         "end block 1 has raw length 5 and payload length 12 (expected 0 and 12)"),
        (head + _end(0, 0, pay_len=13) + b"x", FormatError,
         "end block 0 has raw length 0 and payload length 13 (expected 0 and 12)"),
        (head + b"".join(blocks) + _end(n, crc, good_crc=False), ChecksumError,
         "the end block fails its CRC32: the data is corrupt"),
        (head + b"".join(blocks) + _end(n + 1, crc), FormatError,
         f"the end block records {n + 1} bytes where {n} were decoded"),
        (head + b"".join(blocks) + _end(n, crc ^ 1), ChecksumError,
         "the decoded file fails its CRC32: the data is corrupt"),
        (head + b"".join(blocks[:5]) + _end(5000, zlib.crc32(DATA[:5000])) + b"junk", FormatError,
         "unexpected data after the last block"),
        (head + b"".join(blocks) + end[:20], TruncatedError, "file is truncated: it ends inside the end block"),
        (head + b"".join(blocks), TruncatedError, "file is truncated: it ends inside the block 6 header"),
    ]
    big = BLOCK.pack(1001, 1001, container.STORED, 0) + bytes(1001)
    cases.append((head + big, FormatError, "block 0 claims 1001 bytes where 1 to 1000 belong"))
    cases.append((head + BLOCK.pack(0, 0, container.STORED, 0), FormatError,
                  "block 0 claims 0 bytes where 1 to 1000 belong"))
    for bad, kind, message in cases:
        err = _message(bad)
        assert type(err) is kind and str(err) == message, (message, err)
    # a short block that is the last one is fine, and so is a member of full blocks only
    assert ziplab.decompress(head + b"".join(blocks[:5]) + _end(5000, zlib.crc32(DATA[:5000]))) == DATA[:5000]


def test_cut_anywhere_or_flipped_anywhere_never_gives_wrong_bytes():
    """A flip is refused or harmless (lzh's last payload byte has padding bits, as in a classic
    member); it never decodes to other bytes."""
    data = SAMPLES["text"][:3000]
    blob = _streamed(data, block_size=700)
    for cut in range(len(blob)):
        with pytest.raises(ZiplabError):
            ziplab.decompress(blob[:cut])
    for at in range(len(blob)):
        bad = bytearray(blob)
        bad[at] ^= 0x10
        try:
            out = ziplab.decompress(bytes(bad))
        except ZiplabError:
            continue
        assert out == data, f"a flipped bit at {at} decoded to other bytes"


def test_members_lists_streamed_members_with_their_length_and_crc():
    classic, streamed = ziplab.compress(DATA, "lzss"), _streamed(SAMPLES["text"], "store", block_size=4096)
    found = list(container.members(io.BytesIO(classic + streamed + streamed)))
    assert [n for _, n in found] == [len(classic), len(streamed), len(streamed)]
    header = found[1][0]
    assert header.streamed and header.original_size == len(SAMPLES["text"])
    assert header.crc32 == zlib.crc32(SAMPLES["text"]) and header.blocks == -(-len(SAMPLES["text"]) // 4096)
    assert ziplab.decompress(classic + streamed) == DATA + SAMPLES["text"]
    with pytest.raises(TruncatedError, match="ends inside the end block"):
        list(container.members(io.BytesIO(streamed[:-3])))


def test_compress_file_streams_a_pipe_and_keeps_classic_bytes_for_a_file():
    piped, seekable = io.BytesIO(), io.BytesIO()
    h = container.compress_file(OneWay(DATA), piped, "lzh", block_size=1000)
    assert h.streamed and (h.original_size, h.crc32) == (len(DATA), zlib.crc32(DATA))
    assert piped.getvalue() == _streamed(DATA)
    assert not container.compress_file(io.BytesIO(DATA), seekable, "lzh", block_size=1000).streamed
    assert seekable.getvalue() == ziplab.compress(DATA, "lzh", block_size=1000)


# ---- the CLI ---------------------------------------------------------------------------------
def test_cli_compresses_a_pipe_into_a_streamed_member_and_reads_it_back(tmp_path):
    r = zl("-c", "-", stdin=CLI_DATA)  # subprocess input is a pipe
    assert r.returncode == 0, r.stderr
    assert container.read_header(io.BytesIO(r.stdout)).streamed
    assert zl("-d", stdin=r.stdout).stdout == CLI_DATA
    path = tmp_path / "piped.zl"
    path.write_bytes(r.stdout)
    listed = json.loads(zl("info", "--json", str(path)).stdout)
    assert [(m["original_bytes"], m["crc32"]) for m in listed] == [(len(CLI_DATA), f"{zlib.crc32(CLI_DATA):08x}")]
    assert zl("-t", str(path)).returncode == 0
    r = zl("-o", str(tmp_path / "out.zl"), "-q", "-", stdin=CLI_DATA)
    assert r.returncode == 0 and (tmp_path / "out.zl").read_bytes() == path.read_bytes()


def test_cli_reports_a_bad_streamed_file_in_one_line(tmp_path):
    blob = bytearray(_streamed(CLI_DATA))
    blob[-5] ^= 1  # the trailer's CRC
    path = tmp_path / "bad.zl"
    path.write_bytes(bytes(blob))
    r = zl("-d", str(path))
    assert r.returncode == 1 and not (tmp_path / "bad").exists()
    assert r.stderr.decode() == f"ziplab: error: {path}: the end block fails its CRC32: the data is corrupt\n"


def test_a_non_blocking_input_with_nothing_ready_is_refused_not_cut_short():
    class Dry(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, b):
            return None

    class DryRead:
        def read(self, n):
            return None

    for src in (Dry(), DryRead()):
        with pytest.raises(ZiplabError, match="non-blocking"):
            container.compress_file(src, io.BytesIO(), "store")
