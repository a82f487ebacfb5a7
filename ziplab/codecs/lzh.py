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

import numpy as np
from numba import njit

from .bitio import flush_bits, overrun, peek, put_bits, refill
from .classic import COPY_SLACK, ClassicCodec, copy_match, decode_checked
from .canonical import (
    ERR_BAD_CODE,
    ERR_BAD_TABLE,
    ERR_MESSAGES,
    ERR_TRUNCATED,
    build_decode_table_nb,
    canonical_codes_nb,
    code_lengths_nb,
    read_lengths_nb,
    write_lengths_nb,
)
from .lzh_parse import (
    DBASE,
    DEXTRA,
    LBASE,
    LEXTRA,
    NDIST,
    NLEN,
    dist_code,
    length_code,
    parse_lazy,
    parse_optimal,
)

EOB = 256
NLITLEN = 257 + NLEN
LITLEN_MAX = 14
DIST_MAX = 13

ERR_DISTANCE = 10
ERR_OVERFLOW = 11
LZH_ERRORS = dict(ERR_MESSAGES)
LZH_ERRORS[ERR_DISTANCE] = "match distance reaches before the start of the block"
LZH_ERRORS[ERR_OVERFLOW] = "decoded data runs past the block size"

#: level -> (chain depth, lazy, window log2, nice length, hash bits, lazy_max, good length);
#: lazy=2 is the optimal parse
LEVELS: dict[int, tuple[int, int, int, int, int, int, int]] = {
    1: (1, 0, 16, 32, 15, 0, 0),
    2: (4, 0, 17, 32, 16, 0, 0),
    3: (8, 0, 18, 64, 16, 0, 0),
    4: (8, 1, 18, 64, 16, 16, 8),
    5: (12, 1, 18, 128, 17, 16, 8),
    6: (20, 1, 18, 128, 17, 16, 8),
    7: (48, 1, 20, 258, 18, 32, 16),
    8: (192, 1, 22, 258, 18, 258, 32),
    9: (64, 2, 22, 128, 18, 0, 0),
}
OPT_PASSES = 2
#: candidate sub-block sizes, log2 tokens, ascending
SUB_LOGS = np.array([11, 12, 13, 14, 15, 16, 30], np.int64)


# --------------------------------------------------------------------------- encoder


@njit(cache=True)
def _symbol_hists(tl: np.ndarray, tv: np.ndarray, ntok: int, chunk_log: int):
    """Litlen and distance symbol counts per chunk of 2**chunk_log tokens."""
    chunk = 1 << chunk_log
    nc = max(1, (ntok + chunk - 1) // chunk)
    hl = np.zeros((nc, NLITLEN), np.int64)
    hd = np.zeros((nc, NDIST), np.int64)
    for t in range(ntok):
        c = t >> chunk_log
        if tl[t] == 0:
            hl[c, tv[t]] += 1
        else:
            lc, _, _ = length_code(tl[t])
            hl[c, 257 + lc] += 1
            dc, _, _ = dist_code(tv[t])
            hd[c, dc] += 1
    return hl, hd


@njit(cache=True)
def _best_sub_log(tl: np.ndarray, tv: np.ndarray, ntok: int, choices: np.ndarray) -> int:
    """Sub-block size (log2 tokens) with the fewest table + symbol bits (extra bits don't vary)."""
    fine_log = choices[0]
    hl, hd = _symbol_hists(tl, tv, ntok, fine_log)
    nf = hl.shape[0]
    scratch = np.empty(2048, np.uint8)
    best = choices[0]
    best_bits = -1
    for k in choices:
        group = 1 << (k - fine_log) if k - fine_log < 40 else nf
        total = 0
        for g0 in range(0, nf, group):
            fl = hl[g0 : min(nf, g0 + group)].sum(axis=0)
            fd = hd[g0 : min(nf, g0 + group)].sum(axis=0)
            fl[EOB] += 1
            ll = code_lengths_nb(fl, LITLEN_MAX)
            dl = code_lengths_nb(fd, DIST_MAX)
            pos, acc, nbits = write_lengths_nb(scratch, 0, np.uint64(0), 0, ll)
            pos, acc, nbits = write_lengths_nb(scratch, pos, acc, nbits, dl)
            total += pos * 8 + nbits
            for s in range(NLITLEN):
                total += fl[s] * ll[s]
            for s in range(NDIST):
                total += fd[s] * dl[s]
        if best_bits < 0 or total < best_bits:
            best_bits = total
            best = k
        if group >= nf:
            break
    return best


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
        fl = np.zeros(NLITLEN, np.int64)
        fd = np.zeros(NDIST, np.int64)
        for t in range(t0, t1):
            if tl[t] == 0:
                fl[tv[t]] += 1
            else:
                lc, _, _ = length_code(tl[t])
                fl[257 + lc] += 1
                dc, _, _ = dist_code(tv[t])
                fd[dc] += 1
        fl[EOB] += 1
        ll = code_lengths_nb(fl, LITLEN_MAX)
        dl = code_lengths_nb(fd, DIST_MAX)
        lcodes = canonical_codes_nb(ll)
        dcodes = canonical_codes_nb(dl)
        for s in range(NLITLEN):
            lpack[s] = (np.uint64(lcodes[s]) << np.uint64(5)) | np.uint64(ll[s])
        for s in range(NDIST):
            dpack[s] = (np.uint64(dcodes[s]) << np.uint64(5)) | np.uint64(dl[s])
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


@njit(cache=True)
def _decode_nb(buf: np.ndarray, size: int, lbase: np.ndarray, lextra: np.ndarray, dbase: np.ndarray, dextra: np.ndarray):
    n = buf.size
    out = np.empty(size + COPY_SLACK, np.uint8)
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
            e = np.int64(lt[acc & lmask])
            ln = e & 15
            if ln == 0:
                return out, ERR_BAD_CODE
            acc >>= np.uint64(ln)
            nbits -= ln
            sym = e >> 4
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
            e = np.int64(dt[acc & dmask])
            ln = e & 15
            if ln == 0:
                return out, ERR_BAD_CODE
            acc >>= np.uint64(ln)
            nbits -= ln
            dc = e >> 4
            dist = dbase[dc] + np.int64(peek(acc, dextra[dc]))
            acc >>= np.uint64(dextra[dc])
            nbits -= dextra[dc]
            if dist > o:
                return out, ERR_DISTANCE
            if o + length > size:
                return out, ERR_OVERFLOW
            copy_match(out, o, dist, length)
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
    depth, lazy, wlog, nice, hb, lazy_max, good = LEVELS[level]
    tl = np.empty(n, np.int32)
    tv = np.empty(n, np.int32)
    if lazy == 2:
        ntok = parse_optimal(data, depth, wlog, nice, hb, OPT_PASSES, tl, tv)
    else:
        ntok = parse_lazy(data, depth, wlog, lazy, nice, hb, lazy_max, good, tl, tv)
    sub_log = _best_sub_log(tl, tv, ntok, SUB_LOGS)
    return _encode_tokens(tl, tv, ntok, n, sub_log).tobytes()


def decompress_block(payload: bytes, size: int) -> np.ndarray:
    return decode_checked("lzh", _decode_nb, LZH_ERRORS, payload, size, LBASE, LEXTRA, DBASE, DEXTRA, needs_payload=True)


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
