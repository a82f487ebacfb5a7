"""Other compressors, measured beside ours: stdlib zlib/bz2/lzma always, and zstd, brotli
and PPMd when the `peers` extra is installed. Each is a (compress, decompress) pair."""

from __future__ import annotations

import bz2
import lzma
import zlib
from dataclasses import dataclass
from typing import Callable

PPMD_PIECE = 4096  # pyppmd's one-shot encoder was seen to drop a byte: feed it in pieces


@dataclass(frozen=True)
class Peer:
    name: str
    compress: Callable[[bytes], bytes]
    decompress: Callable[[bytes], bytes]


def _xz(preset: int) -> Peer:
    return Peer(f"xz-{preset & 0xF}{'e' if preset & lzma.PRESET_EXTREME else ''}",
                lambda d: lzma.compress(d, preset=preset), lzma.decompress)


def _ppmd(order: int, mem: int = 64 << 20) -> Peer | None:
    try:
        import pyppmd
    except ImportError:
        return None

    def compress(data: bytes) -> bytes:
        enc = pyppmd.Ppmd7Encoder(order, mem)
        parts = [enc.encode(data[i:i + PPMD_PIECE]) for i in range(0, len(data), PPMD_PIECE)]
        return len(data).to_bytes(8, "little") + b"".join(parts) + enc.flush()

    def decompress(blob: bytes) -> bytes:
        size = int.from_bytes(blob[:8], "little")
        return pyppmd.Ppmd7Decoder(order, mem).decode(blob[8:], size)

    return Peer(f"ppmd-o{order}", compress, decompress)


def _zstd(level: int) -> Peer | None:
    try:
        import zstandard
    except ImportError:
        return None
    return Peer(f"zstd-{level}", zstandard.ZstdCompressor(level=level).compress,
                lambda b: zstandard.ZstdDecompressor().decompress(b))


def _brotli(quality: int) -> Peer | None:
    try:
        import brotli
    except ImportError:
        return None
    return Peer(f"brotli-{quality}", lambda d: brotli.compress(d, quality=quality), brotli.decompress)


def all_peers() -> dict[str, Peer]:
    peers: list[Peer | None] = [
        Peer("zlib-1", lambda d: zlib.compress(d, 1), zlib.decompress),
        Peer("zlib-6", lambda d: zlib.compress(d, 6), zlib.decompress),
        Peer("zlib-9", lambda d: zlib.compress(d, 9), zlib.decompress),
        Peer("bz2-9", lambda d: bz2.compress(d, 9), bz2.decompress),
        _xz(9), _xz(9 | lzma.PRESET_EXTREME),
        _zstd(3), _zstd(19), _brotli(11), _ppmd(6),
    ]
    return {p.name: p for p in peers if p is not None}
