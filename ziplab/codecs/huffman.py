"""Order-0 canonical Huffman, length-limited, table-driven decoding.

Payload of a block: one byte ``k``, then one LSB-first bit stream (see bitio) of chunks of
2**k bytes, each ``lengths table | code bits``: per-chunk tables follow local statistics, which
beats the block-wide order-0 entropy on real text. The encoder picks k by exact cost.
Code lengths are optimal under the length limit (package-merge) and are limited to
``MAX_LEN`` = 12 so one 4096-entry table decodes every symbol with a single lookup.

The pieces are reused by lzh:

* :func:`code_lengths_nb` / :func:`code_lengths` -- optimal length-limited code lengths.
* :func:`canonical_codes_nb` -- bit-reversed canonical codes for an LSB-first writer.
* :func:`write_lengths_nb` / :func:`read_lengths_nb` -- compact code-length tables
  (run-length coded lengths, themselves Huffman coded with a 19-symbol code).
* :func:`build_decode_table_nb` -- validated single-level lookup table, entries
  ``symbol << 4 | length`` (0 = no code maps here).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .bitio import consume, flush_bits, overrun, peek, put_bits, refill
from .classic import ClassicCodec, decode_checked

MAX_LEN = 12
#: code-length alphabet: 0..15 literal lengths, 16 repeat previous 3-6, 17 zeros 3-10, 18 zeros 11-138
CL_SYMS = 19
CL_MAX_LEN = 7
#: the byte codec splits a block into chunks of 2**k bytes, each with its own table
MIN_CHUNK_LOG = 10
MAX_CHUNK_LOG = 30
CHUNK_LOG_CHOICES = np.array([14, 15, 16, 17, 19, 30], np.int64)
#: transmission order of the code-length code lengths: likely-used first, so the tail is trimmed
CL_ORDER = np.array([0, 18, 17, 16, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15], np.int64)

# error codes returned by the njit decoders (0 = ok)
ERR_TRUNCATED = 1
ERR_BAD_TABLE = 2
ERR_BAD_CODE = 3
ERR_BAD_HEADER = 4
ERR_MESSAGES = {
    ERR_BAD_HEADER: "bad chunk-size byte",
    ERR_TRUNCATED: "payload ends before the block does",
    ERR_BAD_TABLE: "invalid code-length table (over-subscribed or malformed)",
    ERR_BAD_CODE: "bit pattern matches no code",
}


# --------------------------------------------------------------------------- code construction


@njit(cache=True)
def code_lengths_nb(freqs: np.ndarray, max_len: int) -> np.ndarray:
    """Optimal code lengths with every length <= max_len (package-merge).

    One used symbol gets length 1 (a decoder needs at least one bit per symbol); unused
    symbols get 0. Requires (number of used symbols) <= 2**max_len.
    """
    nsym = freqs.size
    lengths = np.zeros(nsym, np.uint8)
    idx = np.nonzero(freqs)[0]
    n = idx.size
    if n == 0:
        return lengths
    if n == 1:
        lengths[idx[0]] = 1
        return lengths
    w = np.empty(n, np.int64)
    for i in range(n):
        w[i] = freqs[idx[i]]
    order = np.argsort(w, kind="mergesort")
    leaf_w = np.empty(n, np.int64)
    sym = np.empty(n, np.int64)
    for i in range(n):
        leaf_w[i] = w[order[i]]
        sym[i] = idx[order[i]]
    # level lists: level 0 = leaves; level k = merge(leaves, pairs of level k-1).
    # Leaves appear in every list in sorted order, so only the leaf/package flags are kept.
    is_leaf = np.zeros((max_len, 2 * n), np.bool_)
    cur = leaf_w.copy()
    cur_n = n
    is_leaf[0, :n] = True
    for lev in range(1, max_len):
        npk = cur_n // 2
        nxt = np.empty(n + npk, np.int64)
        i = 0
        j = 0
        k = 0
        pk = 0
        while i < n or j < npk:
            if j < npk:
                pk = cur[2 * j] + cur[2 * j + 1]
            if j >= npk or (i < n and leaf_w[i] <= pk):
                nxt[k] = leaf_w[i]
                is_leaf[lev, k] = True
                i += 1
            else:
                nxt[k] = pk
                j += 1
            k += 1
        cur = nxt
        cur_n = k
    take = 2 * n - 2
    for lev in range(max_len - 1, -1, -1):
        nl = 0
        for q in range(take):
            if is_leaf[lev, q]:
                nl += 1
        for q in range(nl):
            lengths[sym[q]] += 1
        take = 2 * (take - nl)
    return lengths


def code_lengths(freqs: np.ndarray, max_len: int) -> np.ndarray:
    """Optimal length-limited Huffman code lengths (uint8, 0 for unused symbols)."""
    f = np.ascontiguousarray(freqs, dtype=np.int64)
    if np.count_nonzero(f) > (1 << max_len):
        raise ValueError(f"{np.count_nonzero(f)} symbols do not fit codes of at most {max_len} bits")
    return code_lengths_nb(f, int(max_len))


@njit(cache=True)
def canonical_codes_nb(lengths: np.ndarray) -> np.ndarray:
    """Canonical codes (ordered by length, then symbol), bit-reversed for LSB-first output."""
    nsym = lengths.size
    bl_count = np.zeros(17, np.int64)
    for s in range(nsym):
        bl_count[lengths[s]] += 1
    bl_count[0] = 0
    next_code = np.zeros(17, np.int64)
    code = 0
    for ln in range(1, 17):
        code = (code + bl_count[ln - 1]) << 1
        next_code[ln] = code
    codes = np.zeros(nsym, np.uint32)
    for s in range(nsym):
        ln = lengths[s]
        if ln:
            c = next_code[ln]
            next_code[ln] += 1
            r = 0
            for _ in range(ln):
                r = (r << 1) | (c & 1)
                c >>= 1
            codes[s] = r
    return codes


@njit(cache=True)
def build_decode_table_nb(lengths: np.ndarray, max_len: int, table: np.ndarray) -> int:
    """Fill ``table`` (size >= 2**max_len) with ``symbol << 4 | length``; returns an error code.

    Rejects lengths above max_len and over-subscribed codes; slots of an incomplete code stay
    0 so the decoder reports hitting them instead of emitting garbage.
    """
    size = 1 << max_len
    kraft = 0
    for s in range(lengths.size):
        ln = lengths[s]
        if ln > max_len:
            return ERR_BAD_TABLE
        if ln:
            kraft += 1 << (max_len - ln)
    if kraft > size:
        return ERR_BAD_TABLE
    table[:size] = 0
    codes = canonical_codes_nb(lengths)
    for s in range(lengths.size):
        ln = np.int64(lengths[s])
        if ln:
            entry = (s << 4) | ln
            for k in range(np.int64(codes[s]), size, 1 << ln):
                table[k] = entry
    return 0


# --------------------------------------------------------------------------- code-length tables


@njit(cache=True)
def write_lengths_nb(buf: np.ndarray, pos: int, acc: np.uint64, nbits: int, lengths: np.ndarray):
    """Serialize code lengths (each <= 15): run-length symbols coded with a small Huffman code.

    Costs ~4 bytes for a trivial table and ~100 bytes for a dense byte alphabet.
    """
    n = lengths.size
    rsym = np.empty(n, np.int64)
    rext = np.empty(n, np.int64)
    m = 0
    i = 0
    prev = -1
    while i < n:
        ln = np.int64(lengths[i])
        run = 1
        while i + run < n and lengths[i + run] == ln:
            run += 1
        if ln == 0 and run >= 3:
            r = min(run, 138)
            if r >= 11:
                rsym[m] = 18
                rext[m] = r - 11
            else:
                rsym[m] = 17
                rext[m] = r - 3
            m += 1
            i += r
            prev = -1
        elif ln == prev and run >= 3:
            r = min(run, 6)
            rsym[m] = 16
            rext[m] = r - 3
            m += 1
            i += r
        else:
            rsym[m] = ln
            rext[m] = 0
            m += 1
            i += 1
            prev = ln
    freqs = np.zeros(CL_SYMS, np.int64)
    for k in range(m):
        freqs[rsym[k]] += 1
    cl = code_lengths_nb(freqs, CL_MAX_LEN)
    codes = canonical_codes_nb(cl)
    last = CL_SYMS
    while last > 4 and cl[CL_ORDER[last - 1]] == 0:
        last -= 1
    pos, acc, nbits = put_bits(buf, pos, acc, nbits, last - 4, 4)
    for k in range(last):
        pos, acc, nbits = put_bits(buf, pos, acc, nbits, cl[CL_ORDER[k]], 3)
    for k in range(m):
        s = rsym[k]
        pos, acc, nbits = put_bits(buf, pos, acc, nbits, codes[s], cl[s])
        if s == 16:
            pos, acc, nbits = put_bits(buf, pos, acc, nbits, rext[k], 2)
        elif s == 17:
            pos, acc, nbits = put_bits(buf, pos, acc, nbits, rext[k], 3)
        elif s == 18:
            pos, acc, nbits = put_bits(buf, pos, acc, nbits, rext[k], 7)
    return pos, acc, nbits


@njit(cache=True)
def read_lengths_nb(buf: np.ndarray, n: int, pos: int, acc: np.uint64, nbits: int, lengths: np.ndarray):
    """Inverse of write_lengths_nb into ``lengths``; returns (err, pos, acc, nbits)."""
    pos, acc, nbits = refill(buf, n, pos, acc, nbits)
    last = np.int64(peek(acc, 4)) + 4
    acc, nbits = consume(acc, nbits, 4)
    cl = np.zeros(CL_SYMS, np.uint8)
    for k in range(last):
        if nbits < 3:
            pos, acc, nbits = refill(buf, n, pos, acc, nbits)
        cl[CL_ORDER[k]] = peek(acc, 3)
        acc, nbits = consume(acc, nbits, 3)
    table = np.empty(1 << CL_MAX_LEN, np.int32)
    if build_decode_table_nb(cl, CL_MAX_LEN, table):
        return ERR_BAD_TABLE, pos, acc, nbits
    nsym = lengths.size
    i = 0
    prev = -1
    while i < nsym:
        if nbits < 16:
            pos, acc, nbits = refill(buf, n, pos, acc, nbits)
            if overrun(n, pos, nbits):
                return ERR_TRUNCATED, pos, acc, nbits
        e = table[peek(acc, CL_MAX_LEN)]
        ln = e & 15
        if ln == 0:
            return ERR_BAD_CODE, pos, acc, nbits
        acc, nbits = consume(acc, nbits, ln)
        s = e >> 4
        if s < 16:
            lengths[i] = s
            prev = s
            i += 1
            continue
        if s == 16:
            r = 3 + np.int64(peek(acc, 2))
            acc, nbits = consume(acc, nbits, 2)
            val = prev
        elif s == 17:
            r = 3 + np.int64(peek(acc, 3))
            acc, nbits = consume(acc, nbits, 3)
            val = 0
        else:
            r = 11 + np.int64(peek(acc, 7))
            acc, nbits = consume(acc, nbits, 7)
            val = 0
        if val < 0 or i + r > nsym:
            return ERR_BAD_TABLE, pos, acc, nbits
        lengths[i : i + r] = val
        i += r
        prev = -1 if val == 0 else val
    if overrun(n, pos, nbits):
        return ERR_TRUNCATED, pos, acc, nbits
    return 0, pos, acc, nbits


# --------------------------------------------------------------------------- byte codec kernels


@njit(cache=True)
def histogram_nb(data: np.ndarray) -> np.ndarray:
    """Byte counts; four interleaved tables avoid store-to-load stalls on runs."""
    c = np.zeros((4, 256), np.int64)
    n = data.size
    n4 = n & ~3
    for i in range(0, n4, 4):
        c[0, data[i]] += 1
        c[1, data[i + 1]] += 1
        c[2, data[i + 2]] += 1
        c[3, data[i + 3]] += 1
    for i in range(n4, n):
        c[0, data[i]] += 1
    return c[0] + c[1] + c[2] + c[3]


@njit(cache=True)
def _best_chunk_log_nb(data: np.ndarray, max_len: int, choices: np.ndarray) -> int:
    """The chunk size (log2, from ``choices``, ascending, all >= choices[0]) of smallest exact payload.

    Histograms are taken once at the finest chunk size and summed for the coarser ones.
    """
    n = data.size
    fine_log = choices[0]
    fine = 1 << fine_log
    nf = (n + fine - 1) // fine
    hist = np.zeros((nf, 256), np.int64)
    for c in range(nf):
        hist[c] = histogram_nb(data[c * fine : min(n, (c + 1) * fine)])
    scratch = np.empty(1024, np.uint8)
    best = choices[0]
    best_bits = -1
    for k in choices:
        group = 1 << (k - fine_log) if k - fine_log < 40 else nf
        total = 0
        for g0 in range(0, nf, group):
            f = hist[g0 : min(nf, g0 + group)].sum(axis=0)
            lengths = code_lengths_nb(f, max_len)
            pos, acc, nbits = write_lengths_nb(scratch, 0, np.uint64(0), 0, lengths)
            total += pos * 8 + nbits
            for s in range(256):
                total += f[s] * lengths[s]
        if best_bits < 0 or total < best_bits:
            best_bits = total
            best = k
        if group >= nf:
            break
    return best


@njit(cache=True)
def _encode_nb(data: np.ndarray, max_len: int, chunk_log: int) -> np.ndarray:
    n = data.size
    chunk = 1 << chunk_log
    nchunks = (n + chunk - 1) // chunk
    out = np.empty((n * max_len) // 8 + 300 * nchunks + 16, np.uint8)
    out[0] = chunk_log
    pos, acc, nbits = 1, np.uint64(0), 0
    packed = np.empty(256, np.uint64)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        lengths = code_lengths_nb(histogram_nb(data[start:stop]), max_len)
        codes = canonical_codes_nb(lengths)
        # one table: code in the high bits, length in the low 5
        for s in range(256):
            packed[s] = (np.uint64(codes[s]) << np.uint64(5)) | np.uint64(lengths[s])
        pos, acc, nbits = write_lengths_nb(out, pos, acc, nbits, lengths)
        for i in range(start, stop):
            a = packed[data[i]]
            pos, acc, nbits = put_bits(out, pos, acc, nbits, a >> np.uint64(5), np.int64(a & np.uint64(31)))
    pos = flush_bits(out, pos, acc, nbits)
    return out[:pos]


@njit(cache=True)
def _decode_nb(buf: np.ndarray, size: int, max_len: int):
    n = buf.size
    out = np.empty(size, np.uint8)
    chunk_log = np.int64(buf[0])
    if chunk_log < MIN_CHUNK_LOG or chunk_log > MAX_CHUNK_LOG:
        return out, ERR_BAD_HEADER
    chunk = 1 << chunk_log
    lengths = np.zeros(256, np.uint8)
    table = np.empty(1 << max_len, np.uint16)
    mask = np.uint64((1 << max_len) - 1)
    per_refill = 56 // max_len
    pos, acc, nbits = 1, np.uint64(0), 0
    for start in range(0, size, chunk):
        stop = min(size, start + chunk)
        err, pos, acc, nbits = read_lengths_nb(buf, n, pos, acc, nbits, lengths)
        if err:
            return out, err
        if build_decode_table_nb(lengths, max_len, table):
            return out, ERR_BAD_TABLE
        o = start
        while o + per_refill <= stop:
            pos, acc, nbits = refill(buf, n, pos, acc, nbits)
            bad = 0
            for _ in range(per_refill):
                # an empty slot (length 0) consumes nothing; checked once per group, not per symbol
                e = table[acc & mask]
                ln = e & 15
                bad |= ln == 0
                out[o] = e >> 4
                o += 1
                acc >>= np.uint64(ln)
                nbits -= ln
            if bad:
                return out, ERR_BAD_CODE
            if pos > n + 8:
                # far past the end: stop instead of decoding zeros for the rest of the block
                return out, ERR_TRUNCATED
        while o < stop:
            pos, acc, nbits = refill(buf, n, pos, acc, nbits)
            e = table[acc & mask]
            ln = e & 15
            if ln == 0:
                return out, ERR_BAD_CODE
            out[o] = e >> 4
            o += 1
            acc >>= np.uint64(ln)
            nbits -= ln
        if overrun(n, pos, nbits):
            return out, ERR_TRUNCATED
    return out, 0


# --------------------------------------------------------------------------- codec


def compress_block(data: np.ndarray, level: None = None) -> bytes:
    """Huffman-code one block; empty input gives an empty payload (there are no levels)."""
    data = np.ascontiguousarray(data, dtype=np.uint8)
    if data.size == 0:
        return b""
    # local statistics beat one block-wide table on real text; pick the cheapest chunking
    best = _best_chunk_log_nb(data, MAX_LEN, CHUNK_LOG_CHOICES)
    return _encode_nb(data, MAX_LEN, best).tobytes()


def decompress_block(payload: bytes, size: int) -> np.ndarray:
    return decode_checked("huffman", _decode_nb, ERR_MESSAGES, payload, size, MAX_LEN, needs_payload=True)


class HuffmanCodec(ClassicCodec):
    name = "huffman"
    summary = "order-0 canonical Huffman, length-limited, table-driven decoding"
    #: every code is at least 1 bit, so one payload byte decodes to at most 8 bytes
    max_ratio = 8.0
    block_size = 4 << 20
    compress = staticmethod(compress_block)
    decompress = staticmethod(decompress_block)


CODEC = HuffmanCodec()

__all__ = [
    "CODEC",
    "HuffmanCodec",
    "MAX_LEN",
    "build_decode_table_nb",
    "canonical_codes_nb",
    "code_lengths",
    "code_lengths_nb",
    "compress_block",
    "decompress_block",
    "read_lengths_nb",
    "write_lengths_nb",
]
