"""Canonical Huffman codes, shared by `huffman` and `lzh`.

* :func:`code_lengths_nb` / :func:`code_lengths` -- optimal length-limited code lengths
  (package-merge).
* :func:`canonical_codes_nb` -- bit-reversed canonical codes for an LSB-first writer.
* :func:`write_lengths_nb` / :func:`read_lengths_nb` -- compact code-length tables
  (run-length coded lengths, themselves Huffman coded with a 19-symbol code).
* :func:`build_decode_table_nb` -- validated single-level lookup table, entries
  ``symbol << 4 | length`` (0 = no code maps here).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .bitio import consume, overrun, peek, put_bits, refill
from .errcodes import ERR_BAD_CODE, ERR_BAD_TABLE, ERR_TRUNCATED

#: code-length alphabet: 0..15 literal lengths, 16 repeat previous 3-6, 17 zeros 3-10, 18 zeros 11-138
CL_SYMS = 19
CL_MAX_LEN = 7
#: transmission order of the code-length code lengths: likely-used first, so the tail is trimmed
CL_ORDER = np.array([0, 18, 17, 16, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15], np.int64)



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
def pack_codes_nb(lengths: np.ndarray, packed: np.ndarray) -> None:
    """One lookup table for the encoder: canonical code in the high bits, its length in the low 5."""
    codes = canonical_codes_nb(lengths)
    for s in range(lengths.size):
        packed[s] = (np.uint64(codes[s]) << np.uint64(5)) | np.uint64(lengths[s])


@njit(cache=True)
def best_split_nb(hist: np.ndarray, fine_log: int, choices: np.ndarray, bounds: np.ndarray,
                  max_lens: np.ndarray, bump: np.ndarray) -> int:
    """The chunk size (log2, from `choices`, ascending, all >= fine_log) whose chunks cost the
    fewest table + symbol bits. `hist` rows count symbols per chunk of 2**fine_log units and
    are summed for coarser chunks; a chunk's row holds one alphabet per [bounds[a], bounds[a+1])
    (coded with max_lens[a]), plus `bump` (symbols every chunk codes once, such as an end code)."""
    nf = hist.shape[0]
    scratch = np.empty(4096, np.uint8)
    best = choices[0]
    best_bits = -1
    for k in choices:
        group = 1 << (k - fine_log) if k - fine_log < 40 else nf
        total = 0
        for g0 in range(0, nf, group):
            f = hist[g0 : min(nf, g0 + group)].sum(axis=0) + bump
            pos, acc, nbits = 0, np.uint64(0), 0
            for a in range(bounds.size - 1):
                fa = f[bounds[a] : bounds[a + 1]].copy()
                lengths = code_lengths_nb(fa, max_lens[a])
                pos, acc, nbits = write_lengths_nb(scratch, pos, acc, nbits, lengths)
                for s in range(fa.size):
                    total += fa[s] * lengths[s]
            total += pos * 8 + nbits
        if best_bits < 0 or total < best_bits:
            best_bits = total
            best = k
        if group >= nf:
            break
    return best


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
