"""The .zl framing: headers, block frames and end blocks, read and written, and members walked
without decoding. What the bytes mean is docs/FORMAT.md; coding and decoding whole files, with
their checks, is `container`.

    header  magic "ZLab" | version u8 | flags u8 | codec name (u8 len + ascii)
            | params (u16 len + JSON, raw-deflated when flag 1 is set) | block size u32 | original length u64
            | CRC32 of the original u32 | CRC32 of the header bytes so far u32
    block   raw length u32 | payload length u32 | kind u8 (0 coded, 1 stored) | CRC32 of raw u32
            | payload

A streamed member (flag 2, docs/FORMAT-streaming.md) is written before its length is known: its
header holds 0 for the length and CRC, its blocks run until an end block (raw length 0, payload
length 12, kind 2, CRC32 of the payload) whose payload is the original length u64 and CRC32 u32.
Nothing read here is trusted before it is checked: lengths against the format's bounds, the
header against its CRC, the params against the codec's schema.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from dataclasses import dataclass, field, replace
from typing import BinaryIO, Iterator

from . import codecs
from .errors import ChecksumError, FormatError, ParameterError, TruncatedError

MAGIC = b"ZLab"
#: the framing is the same in every version; the version says how the codec's payload was made.
#: 1: every codec of ziplab 0.1 (still written for all but nn and mix); 2: nn on the portable
#: engine, mix engine 2; 3: mix engine 3 (more contexts, two models, neural SSE); 4: mix blocks
#: in substreams.
VERSION = 1
VERSIONS = (1, 2, 3, 4)
MAX_BLOCK = 256 << 20
MAX_PARAMS = 60_000
#: bytes per read when streaming an input through (a CRC pass, a spool, a skip)
CHUNK = 1 << 20
FIXED = struct.Struct("<IQII")  # block size, original length, crc, header crc
BLOCK = struct.Struct("<IIBI")  # raw length, payload length, kind, crc
CODED, STORED = 0, 1
#: header flag: the params JSON is raw-deflated. The neural codec's params (model sha256, config,
#: fingerprint...) are ~350 bytes; deflating them saves ~110, which is 0.15% of bpb on a 256 KiB text.
FLAG_PARAMS_DEFLATED = 1
#: header flag: a streamed member, whose length and CRC trail its blocks in an end block
FLAG_STREAMED = 2
#: block kind of a streamed member's end block; its payload is the trailer
END = 2
TRAILER = struct.Struct("<QI")  # original length, CRC32 of the original
#: bytes of framing before each block's payload (raw length, payload length, kind, CRC32)
BLOCK_FRAME = BLOCK.size


@dataclass
class Header:
    codec: str
    params: dict
    block_size: int
    original_size: int
    crc32: int
    header_size: int = 0
    version: int = VERSION
    extra: dict = field(default_factory=dict)
    #: a streamed member (FLAG_STREAMED): original_size and crc32 are known only at its end block,
    #: 0 until then (members() and compress_file return the header with them filled in)
    streamed: bool = False

    @property
    def blocks(self) -> int:
        return -(-self.original_size // self.block_size)

    def encode(self) -> bytes:
        name = self.codec.encode("ascii")
        params = canonical_params(self.params)
        if len(params) > MAX_PARAMS:
            raise ParameterError("codec parameters too large for the header")
        flags = FLAG_STREAMED if self.streamed else 0
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        packed = packer.compress(params) + packer.flush()
        if len(packed) < len(params):
            params, flags = packed, flags | FLAG_PARAMS_DEFLATED
        size, crc = (0, 0) if self.streamed else (self.original_size, self.crc32)
        head = MAGIC + bytes([self.version, flags, len(name)]) + name + struct.pack("<H", len(params)) + params
        head += struct.pack("<IQI", self.block_size, size, crc)
        return head + struct.pack("<I", zlib.crc32(head))


def canonical_params(params: dict) -> bytes:
    """The one JSON text of a header's params (what `Header.encode` writes)."""
    return json.dumps(params, sort_keys=True, separators=(",", ":")).encode()


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number a header may hold")


def read_exact(src: BinaryIO, n: int, what: str) -> bytes:
    data = src.read(n)
    if len(data) != n:
        raise TruncatedError(f"file is truncated: it ends inside the {what}")
    return data


def inflate_params(raw: bytes) -> bytes:
    """Inflate at most MAX_PARAMS bytes, so a crafted header cannot balloon."""
    inflater = zlib.decompressobj(-15)
    out = inflater.decompress(raw, MAX_PARAMS + 1)
    if len(out) > MAX_PARAMS or not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
        raise ValueError("bad deflated params")
    return out


def read_header(src: BinaryIO, magic: bytes | None = None) -> Header:
    """Parse and validate a header; raises before trusting any field it cannot check.
    `magic`: the first four bytes, if the caller already read them (the next member of a stream)."""
    start = magic if magic is not None else read_exact(src, 4, "magic number")
    if start != MAGIC:
        raise FormatError("not a .zl file (bad magic number)")
    version, flags, name_len = read_exact(src, 3, "header")
    if version not in VERSIONS:
        raise FormatError(f"unsupported .zl format version {version} (this ziplab reads "
                          f"{', '.join(map(str, VERSIONS))}): it was written by a newer ziplab")
    if flags & ~(FLAG_PARAMS_DEFLATED | FLAG_STREAMED):
        raise FormatError(f"unsupported header flags {flags:#x}")
    name_raw = read_exact(src, name_len, "codec name")
    (params_len,) = struct.unpack("<H", read_exact(src, 2, "header"))
    params_raw = read_exact(src, params_len, "codec parameters")
    fixed = read_exact(src, FIXED.size, "header")
    block_size, original, crc, header_crc = FIXED.unpack(fixed)
    head = start + bytes([version, flags, name_len]) + name_raw + struct.pack("<H", params_len)
    head += params_raw + fixed[:-4]
    if zlib.crc32(head) != header_crc:
        raise FormatError("header checksum mismatch: the header is corrupt or was altered")
    try:
        name = name_raw.decode("ascii")
        text = inflate_params(params_raw) if flags & FLAG_PARAMS_DEFLATED else params_raw
        params = json.loads(text, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, zlib.error, RecursionError):
        raise FormatError("header holds an unreadable codec name or parameters") from None
    if canonical_params(params) != text:  # one header per member: no duplicate keys, spaces or reordering
        raise FormatError("header parameters are not in canonical form (sorted keys, no spaces, no duplicates)")
    if not name.isprintable():
        raise FormatError("header holds an unreadable codec name")
    codec = codecs.get(name[:40])  # unknown codec -> UnknownCodecError
    if version != codec.format_version and version not in codec.older_versions:
        readable = ", ".join(str(v) for v in (*codec.older_versions, codec.format_version))
        raise FormatError(f"this is a format {version} {name!r} file; this ziplab decodes {name!r} "
                          f"format {readable} only{codec.version_hint(version)}")
    codec.check_params(params)
    codec.check_version_params(version, params)
    if not 0 < block_size <= MAX_BLOCK:
        raise FormatError(f"implausible block size {block_size}")
    streamed = bool(flags & FLAG_STREAMED)
    if streamed and (original or crc):
        raise FormatError("a streamed member's header must hold 0 for the length and CRC")
    return Header(name, params, block_size, original, crc, header_size=len(head) + 4, version=version,
                  streamed=streamed)


def read_trailer(src: BinaryIO, index: int, frame: tuple[int, int, int, int]) -> tuple[int, int]:
    """The (length, CRC32) an end block records, after checking its framing and its own CRC."""
    raw_len, pay_len, _, trailer_crc = frame
    if raw_len != 0 or pay_len != TRAILER.size:
        raise FormatError(f"end block {index} has raw length {raw_len} and payload length {pay_len} "
                          f"(expected 0 and {TRAILER.size})")
    trailer = read_exact(src, TRAILER.size, "end block")
    if zlib.crc32(trailer) != trailer_crc:
        raise ChecksumError("the end block fails its CRC32: the data is corrupt")
    return TRAILER.unpack(trailer)


def header_length(prefix: bytes) -> int | None:
    """How many bytes `read_header` will read, judged from the first bytes of a member; None
    while `prefix` is too short to tell. A prefix that cannot start a header gives 4 (the
    magic number), so reading that much is enough to have `read_header` say why."""
    start = prefix[:4]
    if start != MAGIC[:len(start)]:
        return 4
    if len(prefix) < 7:
        return None
    end_of_name = 7 + prefix[6]
    if len(prefix) < end_of_name + 2:
        return None
    (params_len,) = struct.unpack_from("<H", prefix, end_of_name)
    return end_of_name + 2 + params_len + FIXED.size


def block_length(frame: bytes) -> int:
    """A block's framing and payload length, from its first BLOCK_FRAME bytes."""
    return BLOCK.size + BLOCK.unpack_from(frame)[1]


def next_member(src: BinaryIO) -> Header | None:
    """After a member's last block: the header of the next member of a concatenated stream
    (`cat a.zl b.zl`, `ziplab -c a b`), None at the end; anything else is an error."""
    magic = src.read(4)
    if not magic:
        return None
    if magic != MAGIC:
        raise FormatError("unexpected data after the last block")
    return read_header(src, magic)


def members(src: BinaryIO) -> Iterator[tuple[Header, int]]:
    """(header, compressed bytes) of every member, reading block framing only (no decoding)."""
    header: Header | None = read_header(src)
    while header is not None:
        size = header.header_size
        for index in range(header.blocks):
            raw_len, pay_len, kind, _ = BLOCK.unpack(read_exact(src, BLOCK.size, f"block {index} header"))
            size += skip_payload(src, index, pay_len)
        if header.streamed:
            header, walked = walk_streamed(src, header)
            size += walked
        yield header, size
        header = next_member(src)


def skip_payload(src: BinaryIO, index: int, pay_len: int) -> int:
    """Skip block `index`'s payload; the bytes of framing and payload passed."""
    if pay_len > MAX_BLOCK:
        raise FormatError(f"block {index} claims an implausible payload of {pay_len} bytes")
    if skip(src, pay_len) != pay_len:
        raise TruncatedError(f"file is truncated: it ends inside block {index}")
    return BLOCK.size + pay_len


def walk_streamed(src: BinaryIO, header: Header) -> tuple[Header, int]:
    """A streamed member's blocks passed without decoding: its header with the length and CRC
    its end block records, and the bytes passed."""
    size, index = 0, 0
    while True:
        frame = BLOCK.unpack(read_exact(src, BLOCK.size, f"block {index} header"))
        if frame[2] == END:
            length, crc = read_trailer(src, index, frame)
            return replace(header, original_size=length, crc32=crc), size + BLOCK.size + TRAILER.size
        size += skip_payload(src, index, frame[1])
        index += 1


def skip(src: BinaryIO, n: int) -> int:
    if src.seekable():
        here = src.tell()
        end = src.seek(0, io.SEEK_END)
        src.seek(min(end, here + n))
        return min(end, here + n) - here
    done = 0
    while done < n and (chunk := src.read(min(CHUNK, n - done))):
        done += len(chunk)
    return done


