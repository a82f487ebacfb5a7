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

from typing import NamedTuple

import numpy as np
from numba import njit

from .kernels.classic import MASK, MAX_OFFSET, WINDOW_LOG, ClassicCodec, checked_match, decode_checked, lz_output
from .kernels.errcodes import ERR_FLAGS, ERR_TRAILING, ERR_TRUNCATED, ERR_ZERO_OFFSET
from .kernels.matchfind import MIN_MATCH, insert, insert_range, longest_match, new_tables

MAX_LEN = MIN_MATCH + 255
MATCH_BYTES = 3
HASH_BITS = 16

#: skipped, lazy limit: matches this long are taken without looking one position ahead)
class Level(NamedTuple):
    depth: int  # hash-chain candidates examined per position
    nice: int  # a match this long is taken at once
    lazy: int  # 1: look one position ahead for a longer match
    insert_max: int  # matches longer than this insert only their first position into the chains
    lazy_max: int  # only look ahead after matches shorter than this


LEVELS: dict[int, Level] = {
    1: Level(1, 16, 0, 16, 0),
    2: Level(2, 32, 0, 32, 0),
    3: Level(4, 32, 0, MAX_LEN, 0),
    4: Level(8, 64, 0, MAX_LEN, 0),
    5: Level(12, 128, 1, MAX_LEN, 16),
    6: Level(16, 128, 1, MAX_LEN, 32),
    7: Level(32, MAX_LEN, 1, MAX_LEN, 64),
    8: Level(96, MAX_LEN, 1, MAX_LEN, MAX_LEN),
    9: Level(256, MAX_LEN, 1, MAX_LEN, MAX_LEN),
}



# --------------------------------------------------------------------------- encoder


@njit(inline="always")
def _group_room(out: np.ndarray, fpos: int, o: int, fbits: int, ntok: int):
    """Before a token: if the current group holds 8, write its flag byte and open the next."""
    if ntok == 8:
        out[fpos] = fbits
        return o, o + 1, 0, 0
    return fpos, o, fbits, ntok


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
                fpos, o, fbits, ntok = _group_room(out, fpos, o, fbits, ntok)
                out[o] = data[i]
                o += 1
                ntok += 1
                i += 1
                ln = ln2
                d = d2
        fpos, o, fbits, ntok = _group_room(out, fpos, o, fbits, ntok)
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
    lv = LEVELS[level]
    return _encode_nb(np.ascontiguousarray(data, np.uint8), lv.depth, lv.nice, lv.lazy, lv.insert_max,
                      lv.lazy_max).tobytes()


# --------------------------------------------------------------------------- decoder


@njit(cache=True)
def _decode_nb(buf: np.ndarray, size: int):
    """Groups of a flag byte and 8 tokens (literal byte, or 3-byte match) -> (output with slack,
    error code); every read and write position is checked first."""
    out = lz_output(size)
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
                err = checked_match(out, o, d, ln, size)
                if err:
                    return out, err
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
    return decode_checked("lzss", _decode_nb, payload, size, max_size=CODEC.max_ratio * len(payload))


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
