"""The .zl file format: a validated header, then independent blocks (the framing itself is
`frames`; its names are also this module's, e.g. `container.read_header`, `container.Header`).

Blocks are independent so memory stays bounded by the block size and files stream.
A block that does not shrink is stored raw, so no codec can blow a file up by more than
the framing. Every length is checked against what the rest of the file could hold before
anything is allocated or decoded, and nothing is returned that failed its checksum.
"""

from __future__ import annotations

import dataclasses
import io
import zlib
from typing import BinaryIO, Iterator

import numpy as np

from . import codecs
from .codecs.base import Codec, CodingOptions, CodingStats, Decoder, Encoder, Progress
from .errors import ChecksumError, FormatError, LimitError, ParameterError, TruncatedError
from .frames import (  # noqa: F401 - the format's names, as container.NAME for the modules that read files
    BLOCK,
    BLOCK_FRAME,
    CHUNK,
    CODED,
    END,
    FLAG_PARAMS_DEFLATED,
    FLAG_STREAMED,
    MAGIC,
    MAX_BLOCK,
    MAX_PARAMS,
    STORED,
    TRAILER,
    VERSION,
    Header,
    block_length,
    header_length,
    inflate_params,
    members,
    next_member,
    read_exact,
    read_header,
    read_trailer,
)
from .limits import Limits, MemoryNeed, default_limits


def _remaining(src: BinaryIO) -> int | None:
    try:
        if not src.seekable():
            return None
        here = src.tell()
        end = src.seek(0, io.SEEK_END)
        src.seek(here)
        return end - here
    except (OSError, ValueError):
        return None


def _check_claim(header: Header, available: int | None) -> None:
    """Reject headers that promise more output than the bytes behind them could decode to."""
    if available is None:
        return
    codec = codecs.get(header.codec)
    framing = header.blocks * BLOCK.size
    if available < framing:
        raise TruncatedError(
            f"file is truncated: {header.blocks} blocks need at least {framing} bytes, {available} remain")
    payload = available - framing
    if header.original_size > payload * max(codec.max_ratio, 1.0) + header.blocks * 64:
        raise LimitError(
            f"header claims {header.original_size} bytes from {available} bytes of payload: "
            f"more than codec {header.codec!r} can produce (corrupt file or decompression bomb)")


def _input_stats(src: BinaryIO) -> tuple[int, int]:
    """Length and CRC32 of a seekable stream, which is rewound to where it was."""
    start = src.tell()
    size, crc = 0, 0
    while chunk := src.read(CHUNK):
        size += len(chunk)
        crc = zlib.crc32(chunk, crc)
    src.seek(start)
    return size, crc


def _seekable(src: BinaryIO) -> bool:
    """Whether `src` can be read twice (a CRC pass, then the blocks): files yes, pipes no."""
    try:
        if getattr(src, "seekable", lambda: False)():  # an object with only read() is a stream
            src.tell()
            return True
    except (OSError, ValueError):
        pass
    return False


def _block_parts(encoder: Encoder, raw) -> tuple[bytes, bytes]:
    """A block's framing and payload, kept apart so a caller can write them without joining
    (which would copy a whole block once more)."""
    payload = encoder.encode(np.frombuffer(raw, dtype=np.uint8))
    kind = CODED
    if len(payload) >= len(raw):
        payload, kind = raw, STORED
    return BLOCK.pack(len(raw), len(payload), kind, zlib.crc32(raw)), payload


def _checked_block_size(default: int, block_size: int | None) -> int:
    size = int(block_size or default)
    if not 0 < size <= MAX_BLOCK:
        raise ParameterError(f"block size must be between 1 and {MAX_BLOCK} bytes")
    return size


class StreamEncoder:
    """One streamed member (FLAG_STREAMED), coded a block at a time as its input arrives, so
    nothing larger than one block is ever held. Its bytes depend only on the input and the
    settings: never on the destination, nor on how the input was cut into calls. `header`
    counts the length and CRC as blocks go by (its encoding holds 0 for both).

        >>> enc = StreamEncoder("store", block_size=4)
        >>> frame, payload = enc.block(b"abcd")
        >>> blob = enc.start() + frame + payload + b"".join(enc.block(b"ef")) + enc.end()
        >>> decompress(blob), enc.header.original_size
        (b'abcdef', 6)
    """

    def __init__(self, codec: str = "lzh", level: int | None = None, options: CodingOptions = CodingOptions(),
                 block_size: int | None = None, progress: Progress | None = None,
                 stats: CodingStats | None = None) -> None:
        impl = codecs.get(codec)
        self.block_size = _checked_block_size(impl.block_size, block_size)
        self._encoder = impl.open_encoder(level, options, progress, stats)
        self.header = Header(codec, self._encoder.params, self.block_size, 0, 0,
                             version=self._encoder.version or impl.format_version, streamed=True)
        self._short = False

    def start(self) -> bytes:
        """The member's header."""
        return self.header.encode()

    def block(self, raw) -> tuple[bytes, bytes]:
        """Framing and payload of the next block (any bytes-like). Every block but the last is
        full, so a decoder can check each length and there is one encoding per input."""
        if self._short or not 0 < len(raw) <= self.block_size:
            raise ValueError(f"a streamed member's blocks are {self.block_size} bytes but the last "
                             f"(got {len(raw)} bytes{' after a short block' if self._short else ''})")
        self._short = len(raw) < self.block_size
        self.header.original_size += len(raw)
        self.header.crc32 = zlib.crc32(raw, self.header.crc32)
        return _block_parts(self._encoder, raw)

    def end(self) -> bytes:
        """The end block: the length and CRC32 of everything given to `block`."""
        trailer = TRAILER.pack(self.header.original_size, self.header.crc32)
        return BLOCK.pack(0, len(trailer), END, zlib.crc32(trailer)) + trailer


def _fill(src: BinaryIO, buffer: memoryview) -> int:
    """Read until `buffer` is full or the input ends (a pipe hands over what it has)."""
    got = 0
    while got < len(buffer):
        if hasattr(src, "readinto"):
            n = src.readinto(buffer[got:])
        else:
            chunk = src.read(len(buffer) - got)
            n = None if chunk is None else len(chunk)
            buffer[got:got + (n or 0)] = chunk or b""
        if n is None:  # a non-blocking input with nothing ready: stopping here would cut the file short
            raise ParameterError("the input is non-blocking and has no data ready; give a blocking stream")
        if not n:
            break
        got += n
    return got


def _compress_stream(src: BinaryIO, dst: BinaryIO, member: StreamEncoder) -> Header:
    """A non-seekable input coded as it arrives, into one reused block buffer."""
    dst.write(member.start())
    buffer = memoryview(bytearray(member.block_size))
    while n := _fill(src, buffer):
        for part in member.block(buffer[:n]):
            dst.write(part)
        if n < member.block_size:
            break
    dst.write(member.end())
    return member.header


def compress_file(src: BinaryIO, dst: BinaryIO, codec: str = "lzh", level: int | None = None, *,
                  options: CodingOptions = CodingOptions(), block_size: int | None = None,
                  progress: Progress | None = None, stats: CodingStats | None = None) -> Header:
    """Stream `src` into `dst` as a .zl file; returns the header written. `progress` hears the
    input bytes coded as they go; `stats` (model-driven codecs) collects the ideal bits.

    A seekable `src` (a file) is measured first and written as a classic member, its length and
    CRC in the header; anything else (a pipe) is coded as it arrives into a streamed member, whose
    length and CRC trail it: memory stays at one block either way. The header returned holds the
    length and CRC in both cases."""
    impl = codecs.get(codec)
    if not _seekable(src):
        return _compress_stream(src, dst, StreamEncoder(codec, level, options, block_size, progress, stats))
    block_size = _checked_block_size(impl.block_size, block_size)
    encoder = impl.open_encoder(level, options, progress, stats)
    size, crc = _input_stats(src)
    header = Header(codec, encoder.params, block_size, size, crc, version=encoder.version or impl.format_version)
    dst.write(header.encode())
    for _ in range(header.blocks):
        for part in _block_parts(encoder, src.read(block_size)):
            dst.write(part)
    return header


def decoding_need(header: Header) -> MemoryNeed:
    """What decoding this member needs, from its validated header alone (a streamed member's
    length is unknown until its end: any of its blocks may be full)."""
    size = header.block_size if header.streamed else header.original_size
    return codecs.get(header.codec).decode_memory(header.params, header.block_size, size)


def budgeted(header: Header, options: CodingOptions) -> CodingOptions:
    """Refuse a member whose needs exceed the memory limit, before anything is allocated, and
    choose the decoder's process count within the limit (never a count read from the file)."""
    limits = options.resolved_limits()
    need = decoding_need(header)
    limits.check(need.total(1), f"this {header.codec!r} member")
    codec = codecs.get(header.codec)
    if not codec.model_driven or (codec.lane_threads and need.streams == 1):  # threads share one model
        return dataclasses.replace(options, limits=limits)
    workers = need.processes(limits, options.workers or limits.cpus)
    return dataclasses.replace(options, workers=workers, limits=limits)


def _iter_blocks(src: BinaryIO, header: Header, options: CodingOptions = CodingOptions(),
                 progress: Progress | None = None) -> Iterator[bytes]:
    """Yield verified raw blocks; the container-level checks live here, codec ones in the codec."""
    codec = codecs.get(header.codec)
    _check_claim(header, _remaining(src))
    options = budgeted(header, options)
    decoder = codec.open_decoder(header.params, options, progress)
    if header.streamed:  # its length and CRC trail its blocks (docs/FORMAT-streaming.md)
        yield from _streamed_blocks(src, header, codec, decoder)
        return
    left, crc = header.original_size, 0
    for index in range(header.blocks):
        raw_len, pay_len, kind, block_crc = BLOCK.unpack(read_exact(src, BLOCK.size, f"block {index} header"))
        expected = min(header.block_size, left)
        if raw_len != expected:
            raise FormatError(f"block {index} claims {raw_len} bytes where {expected} belong")
        raw = _verified_block(src, codec, decoder, index, (raw_len, pay_len, kind, block_crc))
        crc = zlib.crc32(raw, crc)
        left -= raw_len
        yield raw
        del raw  # not held while the next block decodes: memory stays at one block
    if crc != header.crc32:
        raise ChecksumError("the decoded file fails its CRC32: the data is corrupt")


def _verified_block(src: BinaryIO, codec: Codec, decoder: Decoder, index: int,
                    frame: tuple[int, int, int, int]) -> bytes:
    """One block's payload read, decoded and checked against its CRC, once its framing (raw
    length, payload length, kind, CRC) is known to claim a length that belongs where it is."""
    raw_len, pay_len, kind, block_crc = frame
    if kind == STORED:
        if pay_len != raw_len:
            raise FormatError(f"stored block {index} has payload {pay_len} for {raw_len} bytes")
    elif kind != CODED or pay_len >= raw_len:
        raise FormatError(f"block {index} has an invalid kind or payload length")
    elif raw_len > pay_len * codec.max_ratio + 64:
        raise LimitError(f"block {index} claims {raw_len} bytes from a {pay_len}-byte payload")
    payload = read_exact(src, pay_len, f"block {index} payload")
    if kind == STORED:
        raw = payload
        decoder.stored(raw_len)
    else:
        raw = _decoded(decoder.decode(payload, raw_len), raw_len, index)
    if zlib.crc32(raw) != block_crc:
        raise ChecksumError(f"block {index} fails its CRC32: the data is corrupt")
    return raw


def _streamed_blocks(src: BinaryIO, header: Header, codec: Codec, decoder: Decoder) -> Iterator[bytes]:
    """A streamed member's blocks: full ones, at most one short one, then the end block, whose
    length and CRC must be those of what was decoded."""
    size, crc, index, short = 0, 0, 0, False
    while True:
        frame = BLOCK.unpack(read_exact(src, BLOCK.size, f"block {index} header"))
        if frame[2] == END:
            break
        if short:
            raise FormatError(f"block {index} follows a short block (only the last block may be short)")
        if not 0 < frame[0] <= header.block_size:
            raise FormatError(f"block {index} claims {frame[0]} bytes where 1 to {header.block_size} belong")
        raw = _verified_block(src, codec, decoder, index, frame)
        size, crc, index, short = size + len(raw), zlib.crc32(raw, crc), index + 1, len(raw) < header.block_size
        yield raw
        del raw  # not held while the next block decodes: memory stays at one block
    length, total_crc = read_trailer(src, index, frame)
    if length != size:
        raise FormatError(f"the end block records {length} bytes where {size} were decoded")
    if total_crc != crc:
        raise ChecksumError("the decoded file fails its CRC32: the data is corrupt")


def member_blocks(src: BinaryIO, header: Header, options: CodingOptions = CodingOptions(),
                  progress: Progress | None = None) -> Iterator[bytes]:
    """The verified raw blocks of the member whose header was just read from `src`, in order;
    the last step checks the member's length and CRC (so stop early and nothing is vouched for)."""
    return _iter_blocks(src, header, options, progress)


def _decoded(out: np.ndarray, size: int, index: int) -> bytes | memoryview:
    """The decoded block as bytes, without another copy where the codec's array is contiguous."""
    arr = np.ascontiguousarray(out, dtype=np.uint8).reshape(-1)
    raw = memoryview(arr).cast("B") if arr.flags.c_contiguous else arr.tobytes()
    if len(raw) != size:
        raise FormatError(f"block {index} decoded to {len(raw)} bytes instead of {size}")
    return raw


def decompress_file(src: BinaryIO, dst: BinaryIO, *, options: CodingOptions = CodingOptions(),
                    progress: Progress | None = None, header: Header | None = None) -> Header:
    """Stream a .zl file into `dst`. The caller must discard `dst` if this raises. `options`
    reach the codec's decoder (model: where the model is, if not where the header says;
    workers); `header`, if the caller already read it from `src`, is not read again."""
    header = header or read_header(src)
    first = header
    while header is not None:  # every member of a concatenated stream, in order
        for raw in _iter_blocks(src, header, options, progress):
            dst.write(raw)
            del raw  # not held while the next block decodes
        header = next_member(src)
    return first


def compress(data: bytes, codec: str = "lzh", level: int | None = None, *, block_size: int | None = None,
             model: str | None = None, lanes: int | None = None, workers: int | None = None,
             progress: Progress | None = None, stats: CodingStats | None = None,
             memory_limit: int | str | None = None, engine: str | None = None) -> bytes:
    """`data` as a .zl file in memory (see compress_file; model, lanes, workers, engine:
    CodingOptions; memory_limit bounds what loading a model may take, as in `decompress`)."""
    out = io.BytesIO()
    options = CodingOptions(model, lanes, workers, limits=_limits(memory_limit), engine=engine)
    compress_file(io.BytesIO(bytes(data)), out, codec, level, options=options, block_size=block_size,
                  progress=progress, stats=stats)
    return out.getvalue()


def decompress(blob: bytes, *, model: str | None = None, workers: int | None = None,
               progress: Progress | None = None, memory_limit: int | str | None = None) -> bytes:
    """The original bytes of a .zl file in memory. `memory_limit` (bytes, or a size such as
    "512M"; default: ZIPLAB_MEMORY_LIMIT, else 3/4 of available memory) refuses a member that
    would need more, before decoding it (ziplab.limits.MemoryLimitError)."""
    out = io.BytesIO()
    options = CodingOptions(model=model, workers=workers, limits=_limits(memory_limit))
    decompress_file(io.BytesIO(blob), out, options=options, progress=progress)
    return out.getvalue()


def _limits(memory_limit: int | str | None) -> Limits | None:
    return None if memory_limit is None else default_limits(memory_limit)


class ZLReader(io.RawIOBase):
    """Read-only file object over a .zl stream, decoding one block at a time (every member of a
    concatenated stream, in order). `options` reach the codecs' decoders (model, workers)."""

    def __init__(self, src: BinaryIO, close_source: bool = False, options: CodingOptions = CodingOptions()):
        self._src, self._close_source, self._options = src, close_source, options
        self.header = read_header(src)
        self._blocks = self._all_blocks()
        self._buf, self._pos = b"", 0

    def _all_blocks(self) -> Iterator[bytes]:
        header: Header | None = self.header
        while header is not None:
            yield from _iter_blocks(self._src, header, self._options)
            header = next_member(self._src)

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while self._pos >= len(self._buf):
            nxt = next(self._blocks, None)
            if nxt is None:
                return 0
            self._buf, self._pos = nxt, 0
        n = min(len(target), len(self._buf) - self._pos)
        target[:n] = self._buf[self._pos:self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        if self._close_source and not self.closed:
            self._src.close()
        super().close()
