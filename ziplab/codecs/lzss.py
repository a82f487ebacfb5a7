"""lzss: literals and (offset, length) matches told apart by one flag bit per token.

Payload of a block: groups of ``flags u8`` followed by up to 8 tokens; bit k (LSB first) of
the flags byte is 1 when token k is a match. A literal is its byte; a match is
``offset u16 LE | length - 3 u8``: offsets 1..65535 (a 64 KiB - 1 window), lengths 3..258.
A 3-byte match already saves two flag bits over three literals, so MIN_MATCH is 3. The last
group may hold fewer than 8 tokens; its unused flag bits are zero.

Levels set the chain search effort; levels 5-9 add one-step lazy matching (a match is
deferred by one literal while the next position starts a longer one). The decoder does not
need the level.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .classic import (
    COPY_SLACK,
    ERR_DISTANCE,
    ERR_OVERFLOW,
    ERR_TRAILING,
    ERR_TRUNCATED,
    ERR_ZERO_OFFSET,
    LZ_ERRORS,
    ClassicCodec,
    copy_match,
    decode_checked,
)
from .matchfind import MIN_MATCH, insert, insert_range, longest_match, new_tables

MAX_OFFSET = 65535
WINDOW_LOG = 16
MASK = (1 << WINDOW_LOG) - 1
MAX_LEN = MIN_MATCH + 255
MATCH_BYTES = 3
HASH_BITS = 16

#: level -> (chain depth, nice length, lazy, insert limit: positions inside longer matches are
#: skipped, lazy limit: matches this long are taken without looking one position ahead)
LEVELS: dict[int, tuple[int, int, int, int, int]] = {
    1: (1, 16, 0, 16, 0),
    2: (2, 32, 0, 32, 0),
    3: (4, 32, 0, MAX_LEN, 0),
    4: (8, 64, 0, MAX_LEN, 0),
    5: (12, 128, 1, MAX_LEN, 16),
    6: (16, 128, 1, MAX_LEN, 32),
    7: (32, MAX_LEN, 1, MAX_LEN, 64),
    8: (96, MAX_LEN, 1, MAX_LEN, MAX_LEN),
    9: (256, MAX_LEN, 1, MAX_LEN, MAX_LEN),
}

ERR_FLAGS = 6
ERRORS = {**LZ_ERRORS, ERR_FLAGS: "flag bits set for tokens past the end of the block"}


# --------------------------------------------------------------------------- encoder


@njit(cache=True)
def _encode_nb(data: np.ndarray, depth: int, nice: int, lazy: int, ins_max: int, lazy_max: int) -> np.ndarray:
    """Greedy or one-step lazy parse; output is at most n + ceil(n / 8) bytes (all literals)."""
    n = data.size
    out = np.empty(n + (n + 7) // 8 + 1, np.uint8)
    head, prev = new_tables(HASH_BITS, WINDOW_LOG)
    o = 0
    fpos = 0  # index of the current flags byte
    fbits = 0
    ntok = 8  # tokens in the current group: 8 forces a new group before the first token
    i = 0
    while i < n:
        cand = insert(data, i, head, prev, MASK, HASH_BITS)
        ln, d = longest_match(data, i, cand, prev, MASK, MAX_OFFSET, depth, nice, MAX_LEN)
        if lazy:
            while 0 < ln < lazy_max:
                cand = insert(data, i + 1, head, prev, MASK, HASH_BITS)
                ln2, d2 = longest_match(data, i + 1, cand, prev, MASK, MAX_OFFSET, depth, nice, MAX_LEN)
                if ln2 <= ln:
                    break
                # a literal now buys a longer match one byte on (i + 1 is already inserted)
                if ntok == 8:
                    out[fpos] = fbits
                    fpos = o
                    o += 1
                    fbits = 0
                    ntok = 0
                out[o] = data[i]
                o += 1
                ntok += 1
                i += 1
                ln = ln2
                d = d2
        if ntok == 8:
            out[fpos] = fbits
            fpos = o
            o += 1
            fbits = 0
            ntok = 0
        if ln == 0:
            out[o] = data[i]
            o += 1
            i += 1
        else:
            fbits |= 1 << ntok
            out[o] = d & 0xFF
            out[o + 1] = d >> 8
            out[o + 2] = ln - MIN_MATCH
            o += MATCH_BYTES
            # with lazy on, i + 1 may already be in the chains; inserting twice would loop them
            start = i + 2 if lazy and ln < lazy_max else i + 1
            if ln <= ins_max:
                insert_range(data, start, i + ln, head, prev, MASK, HASH_BITS)
            i += ln
        ntok += 1
    if n > 0:
        out[fpos] = fbits
    return out[:o]


def compress_block(data: np.ndarray, level: int = 6) -> bytes:
    depth, nice, lazy, ins_max, lazy_max = LEVELS[level]
    return _encode_nb(np.ascontiguousarray(data, np.uint8), depth, nice, lazy, ins_max, lazy_max).tobytes()


# --------------------------------------------------------------------------- decoder


@njit(cache=True)
def _decode_nb(buf: np.ndarray, size: int):
    """(output with slack, error code); every read and write position is checked first."""
    out = np.empty(size + COPY_SLACK, np.uint8)  # every byte below size is written before use
    n = buf.size
    p = 0
    o = 0
    while o < size:
        if p >= n:
            return out, ERR_TRUNCATED
        flags = np.int64(buf[p])
        p += 1
        for k in range(8):
            if o >= size:
                if flags >> k:
                    return out, ERR_FLAGS
                break
            if (flags >> k) & 1:
                if p + MATCH_BYTES > n:
                    return out, ERR_TRUNCATED
                d = np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8)
                ln = np.int64(buf[p + 2]) + MIN_MATCH
                p += MATCH_BYTES
                if d == 0:
                    return out, ERR_ZERO_OFFSET
                if d > o:
                    return out, ERR_DISTANCE
                if o + ln > size:
                    return out, ERR_OVERFLOW
                copy_match(out, o, d, ln)
                o += ln
            else:
                if p >= n:
                    return out, ERR_TRUNCATED
                out[o] = buf[p]
                p += 1
                o += 1
    if p != n:
        return out, ERR_TRAILING
    return out, 0


def decompress_block(payload: bytes, size: int) -> np.ndarray:
    return decode_checked("lzss", _decode_nb, ERRORS, payload, size, max_size=CODEC.max_ratio * len(payload))


class LZSSCodec(ClassicCodec):
    name = "lzss"
    summary = "LZSS: flag bit per token, 1-byte literals, 3-byte (offset, length) matches, 64 KiB window"
    levels = (1, 9)
    default_level = 6
    #: best case: a flags byte and 8 matches of 258 bytes, 25 payload bytes for 2064
    max_ratio = 8 * MAX_LEN / (1 + 8 * MATCH_BYTES)
    block_size = 4 << 20
    compress = staticmethod(compress_block)
    decompress = staticmethod(decompress_block)


CODEC = LZSSCodec()
