"""lz77: classic (offset, length, next byte) triples in fixed 4-byte fields.

Payload of a block: a sequence of triples, each ``offset u16 LE | length u8 | next u8``:
copy ``length`` bytes from ``offset`` back, then append ``next``. A literal is (0, 0, byte).
Offsets are 1..65535 (a 64 KiB - 1 window), lengths 1..255, so one triple yields at most
256 bytes. Every triple carries a next byte, so the parse never lets a match reach the last
byte of the block.

Since any match (even of 1 or 2 bytes) yields more output per triple than a literal, the
greedy parse falls back to the nearest 2-byte, then 1-byte repeat when the 3-byte hash chains
find nothing. Levels only set the chain search effort; the decoder does not need them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .kernels.classic import MASK, MAX_OFFSET, WINDOW_LOG, ClassicCodec, checked_match, decode_checked, lz_output
from .kernels.errcodes import ERR_LITERAL_OFFSET, ERR_TRAILING, ERR_TRUNCATED, ERR_ZERO_OFFSET
from .kernels.matchfind import insert, insert_range, longest_match, match_length, new_tables

MAX_LEN = 255
TRIPLE = 4
HASH_BITS = 16

class Level(NamedTuple):
    depth: int  # hash-chain candidates examined per position
    nice: int  # a match this long is taken at once
    insert_max: int  # matches longer than this insert only their first position into the chains


LEVELS: dict[int, Level] = {
    1: Level(1, 16, 16),
    2: Level(2, 32, 32),
    3: Level(4, 32, MAX_LEN),
    4: Level(8, 64, MAX_LEN),
    5: Level(16, 128, MAX_LEN),
    6: Level(32, MAX_LEN, MAX_LEN),
    7: Level(64, MAX_LEN, MAX_LEN),
    8: Level(128, MAX_LEN, MAX_LEN),
    9: Level(256, MAX_LEN, MAX_LEN),
}



# --------------------------------------------------------------------------- encoder


@njit(inline="always")
def _short_match(data: np.ndarray, i: int, last1: np.ndarray, last2: np.ndarray, limit: int):
    """(length, offset) of the nearest repeat of data[i:i+2], else of data[i], within the window."""
    c = last2[np.int64(data[i]) | (np.int64(data[i + 1]) << 8)] if limit >= 2 else -1
    if c < 0 or i - c > MAX_OFFSET:
        c = last1[data[i]]
        if c < 0 or i - c > MAX_OFFSET:
            return 0, 0
    return match_length(data, c, i, limit), i - c


@njit(inline="always")
def _note_short(data: np.ndarray, start: int, stop: int, last1: np.ndarray, last2: np.ndarray) -> None:
    """Record positions start..stop-1 as the newest 1-byte and 2-byte repeats."""
    n = data.size
    for p in range(start, stop):
        last1[data[p]] = p
        if p + 1 < n:
            last2[np.int64(data[p]) | (np.int64(data[p + 1]) << 8)] = p


@njit(cache=True)
def _encode_nb(data: np.ndarray, depth: int, nice: int, ins_max: int) -> np.ndarray:
    """Greedy parse into triples; the output is at most 4 bytes per input byte."""
    n = data.size
    out = np.empty(TRIPLE * n, np.uint8)
    head, prev = new_tables(HASH_BITS, WINDOW_LOG)
    last1 = np.full(256, -1, np.int32)
    last2 = np.full(1 << 16, -1, np.int32)
    i = 0
    o = 0
    while i < n:
        limit = min(MAX_LEN, n - 1 - i)  # the triple's next byte must exist
        cand = insert(data, i, head, prev, MASK, HASH_BITS)
        ln, d = longest_match(data, i, cand, prev, MASK, MAX_OFFSET, depth, nice, limit)
        if ln == 0 and limit > 0:
            ln, d = _short_match(data, i, last1, last2, limit)
        if ln == 0:
            d = 0
        out[o] = d & 0xFF
        out[o + 1] = d >> 8
        out[o + 2] = ln
        out[o + 3] = data[i + ln]
        o += TRIPLE
        end = i + ln + 1
        if ln <= ins_max:
            insert_range(data, i + 1, end, head, prev, MASK, HASH_BITS)
        _note_short(data, i, end, last1, last2)
        i = end
    return out[:o]


def compress_block(data: np.ndarray, level: int = 6) -> bytes:
    lv = LEVELS[level]
    return _encode_nb(np.ascontiguousarray(data, np.uint8), lv.depth, lv.nice, lv.insert_max).tobytes()


# --------------------------------------------------------------------------- decoder


@njit(cache=True)
def _decode_nb(buf: np.ndarray, size: int):
    """4-byte triples (offset, length, next byte) -> (output with slack, error code); every read
    and write position is checked first."""
    out = lz_output(size)
    n = buf.size
    p = 0
    o = 0
    while o < size:
        if p + TRIPLE > n:
            return out, ERR_TRUNCATED
        d = np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8)
        ln = np.int64(buf[p + 2])
        nxt = buf[p + 3]
        p += TRIPLE
        if ln > 0:
            if d == 0:
                return out, ERR_ZERO_OFFSET
            err = checked_match(out, o, d, ln, size - 1)  # room for the literal after it
            if err:
                return out, err
            o += ln
        elif d != 0:
            return out, ERR_LITERAL_OFFSET
        out[o] = nxt
        o += 1
    if p != n:
        return out, ERR_TRAILING
    return out, 0


def decompress_block(payload: bytes, size: int) -> np.ndarray:
    max_size = (MAX_LEN + 1) * (len(payload) // TRIPLE)
    return decode_checked("lz77", _decode_nb, payload, size, max_size=max_size)


class LZ77Codec(ClassicCodec):
    name = "lz77"
    summary = "classic LZ77 (offset, length, next byte) triples, 4 fixed bytes each, 64 KiB window"
    levels = (1, 9)
    default_level = 6
    max_ratio = float(MAX_LEN + 1) / TRIPLE  # one triple yields at most 256 bytes
    block_size = 4 << 20
    compress = staticmethod(compress_block)
    decompress = staticmethod(decompress_block)


CODEC = LZ77Codec()
