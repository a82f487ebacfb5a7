"""Pieces shared by the classic numba codecs (huffman, lz77, lzss, lzh).

* :class:`ClassicCodec` -- the ``encode_block``/``decode_block`` pair for a codec whose module
  defines ``compress_block(data, level)`` and ``decompress_block(payload, size)``.
* :func:`decode_checked` -- the checks around an njit decoder: block size sanity, then the
  decoder's error code (0 = ok) mapped to a :class:`CorruptDataError` named after the codec.
* :func:`copy_match` -- the LZ back-reference copy used by every LZ decoder.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from numba import njit

from ...errors import CorruptDataError
from ..base import BlockCodec
from .bitio import load_le64, store_le64
from .errcodes import ERR_DISTANCE, ERR_OVERFLOW, MESSAGES

#: bytes an LZ decoder allocates past the block size for copy_match's 8-byte steps
COPY_SLACK = 8
#: lz77 and lzss: a 64 KiB window, offsets in 16 bits
WINDOW_LOG = 16
MAX_OFFSET = (1 << WINDOW_LOG) - 1
MASK = MAX_OFFSET  # window index mask

@njit(inline="always")
def lz_output(size: int) -> np.ndarray:
    """An LZ decoder's output buffer: the block plus copy_match's slack."""
    return np.empty(size + COPY_SLACK, np.uint8)  # every byte below size is written before use


@njit(inline="always")
def checked_match(out: np.ndarray, o: int, dist: int, length: int, room: int) -> int:
    """Copy a back-reference after checking it reaches inside the block and ends by `room`;
    returns the error code (0 = copied)."""
    if dist > o:
        return ERR_DISTANCE
    if o + length > room:
        return ERR_OVERFLOW
    copy_match(out, o, dist, length)
    return 0


@njit(inline="always")
def copy_match(out: np.ndarray, o: int, dist: int, length: int) -> None:
    """out[o:o+length] = the bytes ``dist`` back, overlap allowed (dist < length repeats).

    With dist >= 8 it moves 8 bytes per step (every byte read is already written), spilling up
    to 7 bytes past the match: ``out`` needs COPY_SLACK bytes beyond the block size."""
    src = o - dist
    if dist >= 8:
        k = 0
        while k < length:
            store_le64(out, o + k, load_le64(out, src + k))
            k += 8
    else:
        for k in range(length):
            out[o + k] = out[src + k]


def decode_checked(
    name: str,
    kernel: Callable[..., tuple[np.ndarray, int]],
    payload: bytes,
    size: int,
    *args: Any,
    max_size: float | None = None,
    needs_payload: bool = False,
) -> np.ndarray:
    """Run ``kernel(buf, size, *args) -> (out, err)`` and return ``out[:size]``.

    ``max_size``: the most bytes ``payload`` can decode to; larger claims are rejected before
    decoding. ``needs_payload``: a zero-size block decodes to nothing whatever its payload, and
    a non-empty block with an empty payload is an error (entropy-coded streams)."""
    if size < 0:
        raise CorruptDataError(f"{name}: negative block size {size}")
    if needs_payload:
        if size == 0:
            return np.zeros(0, np.uint8)
        if len(payload) == 0:
            raise CorruptDataError(f"{name}: empty payload for a non-empty block")
    if max_size is not None and size > max_size:
        raise CorruptDataError(f"{name}: {len(payload)} payload bytes cannot hold {size} bytes")
    out, err = kernel(np.frombuffer(payload, np.uint8), int(size), *args)
    if err:
        raise CorruptDataError(f"{name}: {MESSAGES.get(err, f'error {err}')}")
    return out[:size]


class ClassicCodec(BlockCodec):
    """A codec whose work is two module functions, set as static methods ``compress`` and
    ``decompress``: ``compress(data, level) -> bytes`` (level is None for codecs without
    levels) and ``decompress(payload, size) -> ndarray``; the decoder needs no parameters."""

    compress: Callable[[np.ndarray, Any], bytes]
    decompress: Callable[[bytes, int], np.ndarray]

    def encode_block(self, data: np.ndarray, params: dict) -> bytes:
        level = self.check_level(params.get("level")) if self.levels else None
        return self.compress(np.ascontiguousarray(data, dtype=np.uint8), level)

    def decode_block(self, payload: bytes, size: int, params: dict) -> np.ndarray:
        return self.decompress(payload, size)
