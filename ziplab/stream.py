"""Incremental compression objects with the semantics of `lzma.LZMACompressor` and
`lzma.LZMADecompressor` (and zstandard's), for code that receives or produces data in pieces.

`Compressor` writes one streamed member (docs/FORMAT-streaming.md): blocks are coded as they
fill, so it holds at most one block of input, and its output depends only on the bytes given,
never on how they were cut into calls. `Decompressor` decodes one member (classic or streamed)
with the container's own block decoding, holding at most one block of output; what follows
the member is `unused_data`, as with lzma.

Both objects may be shared between threads: each call runs under the object's lock, so calls
are serialised and the output follows the order of the calls. For parallel work use one object
per thread (each file is independent).

    >>> c = Compressor("lzh", 6, block_size=1024)
    >>> blob = c.compress(b"to be or not to be, " * 100) + c.flush()
    >>> d = Decompressor()
    >>> out = d.decompress(blob + b"trailing", max_length=100)
    >>> len(out), d.needs_input, d.eof
    (100, False, False)
    >>> out += d.decompress(b"")
    >>> out == b"to be or not to be, " * 100, d.eof, d.unused_data
    (True, True, b'trailing')
"""

from __future__ import annotations

import io
import threading
from collections import deque
from typing import Iterator

from . import container
from .codecs.base import CodingOptions
from .limits import default_limits

#: enough of a member's first bytes to know its header's length (magic, version, flags, name
#: length, the longest name, the params length)
HEADER_PREFIX = 4 + 3 + 255 + 2


class Compressor:
    """Compress data in pieces: `compress()` returns what is ready (the header, then each block
    as it fills), `flush()` the rest and the end of the member. Parameters as `ziplab.compress`.

        >>> c = Compressor("store", block_size=4)
        >>> head = c.compress(b"ab")    # the header; "ab" waits for its block to fill
        >>> block = c.compress(b"cdef")  # "abcd": 13 bytes of framing, 4 stored; "ef" waits
        >>> tail = c.flush()             # "ef", then the end block with the length and CRC
        >>> len(block), len(tail), container.decompress(head + block + tail)
        (17, 40, b'abcdef')
    """

    def __init__(self, codec: str = "lzh", level: int | None = None, *, block_size: int | None = None,
                 model: str | None = None, lanes: int | None = None, workers: int | None = None) -> None:
        options = CodingOptions(model=model, lanes=lanes, workers=workers)
        self._member = container.StreamEncoder(codec, level, options, block_size)
        self._pending = bytearray()
        self._started = self._finished = False
        self._lock = threading.Lock()

    @property
    def block_size(self) -> int:
        """Input bytes per block: `compress()` returns output each time this many have arrived."""
        return self._member.block_size

    def compress(self, data) -> bytes:
        """Take `data` (any bytes-like); return the compressed bytes that are ready (possibly
        none: a block is coded only once it is full)."""
        with self._lock:
            if self._finished:
                raise ValueError("Compressor has been flushed")
            return b"".join(self._blocks(memoryview(data).cast("B")))

    def flush(self) -> bytes:
        """Finish the member: the last, short block and the end block. The compressor cannot be
        used afterwards (as with lzma)."""
        with self._lock:
            if self._finished:
                raise ValueError("Repeated call to flush()")
            self._finished = True
            parts = list(self._blocks(memoryview(b"")))
            if self._pending:
                parts += self._member.block(self._pending)
            parts.append(self._member.end())
            self._pending = bytearray()
            return b"".join(parts)

    def _blocks(self, data: memoryview) -> Iterator[bytes]:
        """The header (first call only), then the framing and payload of every block `data`
        completes; whole blocks are coded straight from `data`, the remainder waits."""
        if not self._started:
            self._started = True
            yield self._member.start()
        size = self._member.block_size
        if self._pending:
            take = data[:size - len(self._pending)]
            self._pending += take
            data = data[len(take):]
            if len(self._pending) < size:
                return
            yield from self._member.block(bytes(self._pending))
            self._pending = bytearray()
        while len(data) >= size:
            yield from self._member.block(data[:size])
            data = data[size:]
        self._pending += data


class _Feed(io.RawIOBase):
    """The input a Decompressor has been given, read by the container's own decoding (which
    the Decompressor only advances once the next whole header or block is here). Input is kept
    as the pieces it came in (bytes are kept, not copied) and copied once, when read."""

    def __init__(self) -> None:
        self._pieces: deque[bytes] = deque()
        self._offset = 0  # into the first piece
        self._size = 0

    def readable(self) -> bool:
        return True

    def append(self, data) -> None:
        if len(data):
            self._pieces.append(data if type(data) is bytes else bytes(data))
            self._size += len(self._pieces[-1])

    def buffered(self) -> int:
        return self._size

    def peek(self, n: int) -> bytes:
        views, offset = [], self._offset
        for piece in self._pieces:
            if n <= 0:
                break
            views.append(memoryview(piece)[offset:offset + n])
            n -= len(views[-1])
            offset = 0
        return b"".join(views)

    def read(self, n: int = -1) -> bytes:
        out = self.peek(self._size if n is None or n < 0 else n)
        self._size -= len(out)
        left = len(out)
        while left:
            room = len(self._pieces[0]) - self._offset
            if left < room:
                self._offset += left
                break
            self._pieces.popleft()
            self._offset, left = 0, left - room
        return out

    def readinto(self, target) -> int:
        data = self.read(len(target))
        target[:len(data)] = data
        return len(data)

    def rest(self) -> bytes:
        return self.read()


class Decompressor:
    """Decompress one member of a .zl stream given in pieces, with lzma's semantics:
    `decompress(data, max_length=-1)` returns what is ready (at most `max_length` bytes if that
    is not negative), `needs_input` says whether more input is needed for more output, `eof`
    whether the member ended, and `unused_data` holds whatever followed it. `model`, `workers`
    and `memory_limit` reach the codec's decoder as in `ziplab.decompress`.

        >>> d = Decompressor()
        >>> blob = container.compress(b"abc" * 1000, "lzh")
        >>> b"".join(d.decompress(blob[i:i + 7]) for i in range(0, len(blob), 7)) == b"abc" * 1000
        True
        >>> d.eof, d.needs_input
        (True, False)
    """

    def __init__(self, *, model: str | None = None, workers: int | None = None,
                 memory_limit: int | str | None = None) -> None:
        limits = None if memory_limit is None else default_limits(memory_limit)
        self._options = CodingOptions(model=model, workers=workers, limits=limits)
        self._feed = _Feed()
        self._header: container.Header | None = None
        self._blocks: Iterator[bytes] | None = None
        self._left = 0  # blocks still to come in a classic member (its header counts them)
        self._out = memoryview(b"")
        self._failed: BaseException | None = None
        self._lock = threading.Lock()
        self.eof = False
        self.needs_input = True
        self.unused_data = b""

    def decompress(self, data, max_length: int = -1) -> bytes:
        """Decompressed bytes for `data` and what was given before; see the class docstring."""
        with self._lock:
            if self.eof:
                raise EOFError("End of stream already reached")
            if self._failed is not None:
                raise self._failed
            self._feed.append(data)
            try:
                return self._run(max_length)
            except BaseException as exc:  # the member's decoding cannot resume after an error
                self._failed = exc
                raise

    def _run(self, max_length: int) -> bytes:
        out = bytearray()
        while max_length < 0 or len(out) < max_length:
            if self._out:
                take = len(self._out) if max_length < 0 else max_length - len(out)
                out += self._out[:take]
                self._out = self._out[take:]
                continue
            block = self._next_block()
            if block is None:
                break
            self._out = memoryview(block)
        if self.eof:
            self.unused_data = self._feed.rest()
        self.needs_input = not self.eof and not self._out and not self._unit_ready()
        return bytes(out)

    def _next_block(self) -> bytes | None:
        """The next decoded block; None when more input is needed or the member has ended."""
        while self._unit_ready():
            if self._header is None:
                self._header = container.read_header(self._feed)
                self._left = self._header.blocks
                self._blocks = container.member_blocks(self._feed, self._header, self._options)
                continue
            block = next(self._blocks, None)
            if block is None:
                self.eof = True
                return None
            self._left -= 1
            return block
        return None

    def _unit_ready(self) -> bool:
        """Whether the input holds all of the next step's bytes: the header, the next block (or a
        streamed member's end block), or nothing at all once a classic member's blocks are in."""
        if self.eof:
            return False
        have = self._feed.buffered()
        if self._header is None:
            need = container.header_length(self._feed.peek(HEADER_PREFIX))
            return need is not None and have >= need
        if not self._header.streamed and self._left <= 0:
            return True  # the member's last step checks its CRC and reads nothing
        if have < container.BLOCK_FRAME:
            return False
        need = container.block_length(self._feed.peek(container.BLOCK_FRAME))
        # a payload longer than a block plus framing is refused from the framing alone: no waiting for it
        return have >= need or need > self._header.block_size + 2 * container.BLOCK_FRAME
