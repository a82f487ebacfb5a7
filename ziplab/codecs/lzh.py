"""lzh: LZ77 tokens entropy-coded with canonical Huffman (DEFLATE-class, our own bitstream).

Payload of a block: one LSB-first bit stream of sub-blocks until the block's size is reached.
A sub-block is ``litlen lengths | dist lengths | symbols ... | end-of-block``:

* literal/length alphabet: 256 bytes, 256 = end of sub-block, 257+c = length code c
  (28 codes, lengths 3..258, up to 5 extra bits);
* distance alphabet: 44 codes for distances 1..4 MiB (up to 20 extra bits), so a whole
  4 MiB block is one window;
* code lengths are limited (``LITLEN_MAX``/``DIST_MAX``) so each code decodes with one lookup,
  and a token never needs more than the 56 bits one refill guarantees.

Levels 1-8 use a hash-chain greedy/lazy parse; level 9 a price-driven optimal parse. The
encoder picks the sub-block size (in tokens) with the smallest exact coded size.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

import numpy as np
from numba import njit

from .kernels.bitio import flush_bits, overrun, peek, put_bits, refill
from .kernels.classic import ClassicCodec, checked_match, decode_checked, lz_output
from .kernels.canonical import (best_split_nb, build_decode_table_nb, code_lengths_nb, pack_codes_nb,
    read_lengths_nb, write_lengths_nb)
from .kernels.errcodes import ERR_BAD_CODE, ERR_BAD_TABLE, ERR_OVERFLOW, ERR_TRUNCATED
from .kernels.lzh_parse import (DBASE, DEXTRA, LBASE, LEXTRA, NDIST, NLEN, NLITLEN, count_token, dist_code,
                                length_code, parse_lazy, parse_optimal)

EOB = 256
LITLEN_MAX = 14
DIST_MAX = 13


class Strategy(IntEnum):
    """How a level parses (zstd names its strategies the same way)."""

    GREEDY = 0  # take the longest match at each position
    LAZY = 1  # look one position ahead for a longer match before taking one
    OPTIMAL = 2  # price-driven shortest path over all matches (two passes)


class Level(NamedTuple):
    depth: int  # hash-chain candidates examined per position
    strategy: Strategy
    window_log: int  # log2 of the match window
    nice: int  # a match this long is taken at once
    hash_bits: int  # log2 of the hash-head table
    lazy_max: int  # lazy: only look ahead after matches shorter than this
    good: int  # lazy: after a match this long, search the next position less deeply


LEVELS: dict[int, Level] = {
    1: Level(1, Strategy.GREEDY, 16, 32, 15, 0, 0),
    2: Level(4, Strategy.GREEDY, 17, 32, 16, 0, 0),
    3: Level(8, Strategy.GREEDY, 18, 64, 16, 0, 0),
    4: Level(8, Strategy.LAZY, 18, 64, 16, 16, 8),
    5: Level(12, Strategy.LAZY, 18, 128, 17, 16, 8),
    6: Level(20, Strategy.LAZY, 18, 128, 17, 16, 8),
    7: Level(48, Strategy.LAZY, 20, 258, 18, 32, 16),
    8: Level(192, Strategy.LAZY, 22, 258, 18, 258, 32),
    9: Level(64, Strategy.OPTIMAL, 22, 128, 18, 0, 0),
}
OPT_PASSES = 2
#: candidate sub-block sizes, log2 tokens, ascending
SUB_LOGS = np.array([11, 12, 13, 14, 15, 16, 30], np.int64)


# --------------------------------------------------------------------------- encoder


@njit(cache=True)
def _best_sub_log(tl: np.ndarray, tv: np.ndarray, ntok: int, choices: np.ndarray) -> int:
    """Sub-block size (log2 tokens) with the fewest table + symbol bits (extra bits don't vary)."""
    fine_log = choices[0]
    chunk = 1 << fine_log
    hist = np.zeros((max(1, (ntok + chunk - 1) // chunk), NLITLEN + NDIST), np.int64)
    for t in range(ntok):
        count_token(hist[t >> fine_log], tl, tv, t)
    bump = np.zeros(NLITLEN + NDIST, np.int64)
    bump[EOB] = 1
    return best_split_nb(hist, fine_log, choices, np.array([0, NLITLEN, NLITLEN + NDIST], np.int64),
                         np.array([LITLEN_MAX, DIST_MAX], np.int64), bump)


@njit(cache=True)
def _encode_tokens(tl: np.ndarray, tv: np.ndarray, ntok: int, n: int, sub_log: int) -> np.ndarray:
    sub = 1 << sub_log
    nsub = (ntok + sub - 1) // sub
    out = np.empty(3 * n + 600 * nsub + 64, np.uint8)
    pos, acc, nbits = 0, np.uint64(0), 0
    lpack = np.empty(NLITLEN, np.uint64)
    dpack = np.empty(NDIST, np.uint64)
    for t0 in range(0, ntok, sub):
        t1 = min(ntok, t0 + sub)
        f = np.zeros(NLITLEN + NDIST, np.int64)
        for t in range(t0, t1):
            count_token(f, tl, tv, t)
        f[EOB] += 1
        ll = code_lengths_nb(f[:NLITLEN].copy(), LITLEN_MAX)
        dl = code_lengths_nb(f[NLITLEN:].copy(), DIST_MAX)
        pack_codes_nb(ll, lpack)
        pack_codes_nb(dl, dpack)
        pos, acc, nbits = write_lengths_nb(out, pos, acc, nbits, ll)
        pos, acc, nbits = write_lengths_nb(out, pos, acc, nbits, dl)
        m5 = np.uint64(31)
        s5 = np.uint64(5)
        for t in range(t0, t1):
            if tl[t] == 0:
                a = lpack[tv[t]]
                pos, acc, nbits = put_bits(out, pos, acc, nbits, a >> s5, np.int64(a & m5))
            else:
                lc, le, lv = length_code(tl[t])
                dc, de, dv = dist_code(tv[t])
                a = lpack[257 + lc]
                la = np.int64(a & m5)
                # code + extra bits of the length in one put (<= 14 + 5 bits)
                v = (a >> s5) | (np.uint64(lv) << np.uint64(la))
                pos, acc, nbits = put_bits(out, pos, acc, nbits, v, la + le)
                b = dpack[dc]
                lb = np.int64(b & m5)
                v = (b >> s5) | (np.uint64(dv) << np.uint64(lb))
                pos, acc, nbits = put_bits(out, pos, acc, nbits, v, lb + de)
        a = lpack[EOB]
        pos, acc, nbits = put_bits(out, pos, acc, nbits, a >> s5, np.int64(a & m5))
    pos = flush_bits(out, pos, acc, nbits)
    return out[:pos]


# --------------------------------------------------------------------------- decoder


@njit(inline="always")
def _table_symbol(table: np.ndarray, mask: np.uint64, acc: np.uint64, nbits: int):
    """(symbol or -1 for a bit pattern no code has, acc, nbits) from a (symbol << 4 | length) table."""
    e = np.int64(table[acc & mask])
    ln = e & 15
    if ln == 0:
        return -1, acc, nbits
    return e >> 4, acc >> np.uint64(ln), nbits - ln


@njit(cache=True)
def _decode_nb(buf: np.ndarray, size: int, lbase: np.ndarray, lextra: np.ndarray, dbase: np.ndarray, dextra: np.ndarray):
    n = buf.size
    out = lz_output(size)
    ll = np.zeros(NLITLEN, np.uint8)
    dl = np.zeros(NDIST, np.uint8)
    lt = np.empty(1 << LITLEN_MAX, np.uint16)
    dt = np.empty(1 << DIST_MAX, np.uint16)
    lmask = np.uint64((1 << LITLEN_MAX) - 1)
    dmask = np.uint64((1 << DIST_MAX) - 1)
    pos, acc, nbits = 0, np.uint64(0), 0
    o = 0
    while o < size:
        err, pos, acc, nbits = read_lengths_nb(buf, n, pos, acc, nbits, ll)
        if err:
            return out, err
        err, pos, acc, nbits = read_lengths_nb(buf, n, pos, acc, nbits, dl)
        if err:
            return out, err
        if build_decode_table_nb(ll, LITLEN_MAX, lt) or build_decode_table_nb(dl, DIST_MAX, dt):
            return out, ERR_BAD_TABLE
        while True:
            pos, acc, nbits = refill(buf, n, pos, acc, nbits)
            sym, acc, nbits = _table_symbol(lt, lmask, acc, nbits)
            if sym < 0:
                return out, ERR_BAD_CODE
            if sym < 256:
                if o >= size:
                    return out, ERR_OVERFLOW
                out[o] = sym
                o += 1
                # a second literal fits in the same refill more often than not
                if nbits >= LITLEN_MAX:
                    e = np.int64(lt[acc & lmask])
                    sym = e >> 4
                    if sym < 256 and (e & 15) != 0:
                        if o >= size:
                            return out, ERR_OVERFLOW
                        out[o] = sym
                        o += 1
                        acc >>= np.uint64(e & 15)
                        nbits -= e & 15
                continue
            if sym == EOB:
                break
            c = sym - 257
            length = lbase[c] + np.int64(peek(acc, lextra[c]))
            acc >>= np.uint64(lextra[c])
            nbits -= lextra[c]
            dc, acc, nbits = _table_symbol(dt, dmask, acc, nbits)
            if dc < 0:
                return out, ERR_BAD_CODE
            dist = dbase[dc] + np.int64(peek(acc, dextra[dc]))
            acc >>= np.uint64(dextra[dc])
            nbits -= dextra[dc]
            err = checked_match(out, o, dist, length, size)
            if err:
                return out, err
            o += length
        if overrun(n, pos, nbits):
            return out, ERR_TRUNCATED
    return out, 0


# --------------------------------------------------------------------------- codec


def compress_block(data: np.ndarray, level: int) -> bytes:
    """Parse at ``level`` and entropy-code the tokens; empty input gives an empty payload."""
    n = data.size
    if n == 0:
        return b""
    lv = LEVELS[level]
    tl = np.empty(n, np.int32)
    tv = np.empty(n, np.int32)
    if lv.strategy == Strategy.OPTIMAL:
        ntok = parse_optimal(data, lv.depth, lv.window_log, lv.nice, lv.hash_bits, OPT_PASSES, tl, tv)
    else:
        ntok = parse_lazy(data, lv.depth, lv.window_log, int(lv.strategy), lv.nice, lv.hash_bits, lv.lazy_max,
                          lv.good, tl, tv)
    sub_log = _best_sub_log(tl, tv, ntok, SUB_LOGS)
    return _encode_tokens(tl, tv, ntok, n, sub_log).tobytes()


def decompress_block(payload: bytes, size: int) -> np.ndarray:
    return decode_checked("lzh", _decode_nb, payload, size, LBASE, LEXTRA, DBASE, DEXTRA, needs_payload=True)


class LzhCodec(ClassicCodec):
    name = "lzh"
    summary = "LZ77 + canonical Huffman sub-blocks (DEFLATE-class, 4 MiB window, optimal parse at -9)"
    levels = (1, 9)
    default_level = 6
    #: best case: the longest match of a length code with 1-bit length and distance codes
    #: and no distance extra bits (258 bytes in 7 bits, ~295 bytes per payload byte)
    max_ratio = float(max((LBASE[c] + (1 << LEXTRA[c]) - 1) * 8 / (2 + LEXTRA[c]) for c in range(NLEN)))
    block_size = 4 << 20
    compress = staticmethod(compress_block)
    decompress = staticmethod(decompress_block)


CODEC = LzhCodec()

__all__ = ["CODEC", "LEVELS", "LzhCodec", "compress_block", "decompress_block"]
