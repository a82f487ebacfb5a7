"""LZ parsing for lzh: hash-chain match finder, greedy/lazy parse and a price-driven optimal parse.

The chains here are not matchfind's: they hash 4 bytes (plus a 3-byte table for the optimal
parse), link by absolute position over windows up to 4 MiB (distance == window allowed) and
collect every improving candidate at level 9. Only the byte comparison (match_length) is shared.

Every parser fills two int32 token arrays: ``tl`` (match length, 0 for a literal) and ``tv``
(distance, or the literal byte), and returns the token count. Distances are 1..window.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import leading_zeros

from .matchfind import match_length

MIN_MATCH = 3
MAX_MATCH = 258
NLEN = 28  # length codes for lengths 3..258
NDIST = 44  # distance codes for distances 1..2**22
NLITLEN = 257 + NLEN  # literals, the end-of-block code, length codes
MAX_WINDOW_LOG = 22
H3_BITS = 16


# --------------------------------------------------------------------------- symbol mapping


@njit(inline="always")
def ilog2(x: int) -> int:
    """floor(log2(x)) for x >= 1."""
    return 63 - np.int64(leading_zeros(np.uint64(x)))


@njit(inline="always")
def length_code(length: int):
    """(code 0..27, extra bits, extra value) for a match length 3..258."""
    v = length - MIN_MATCH
    if v < 8:
        return v, 0, 0
    nb = ilog2(v)
    return 8 + (nb - 3) * 4 + ((v >> (nb - 2)) & 3), nb - 2, v & ((1 << (nb - 2)) - 1)


@njit(inline="always")
def dist_code(dist: int):
    """(code 0..43, extra bits, extra value) for a distance 1..2**22."""
    v = dist - 1
    if v < 4:
        return v, 0, 0
    nb = ilog2(v)
    return 2 * nb + ((v >> (nb - 1)) & 1), nb - 1, v & ((1 << (nb - 1)) - 1)


def _code_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Base value and extra-bit count per length code and per distance code (for the decoder)."""
    lbase = np.zeros(NLEN, np.int64)
    lextra = np.zeros(NLEN, np.int64)
    for c in range(NLEN):
        if c < 8:
            lbase[c] = c + MIN_MATCH
        else:
            nb = (c - 8) // 4 + 3
            lbase[c] = ((4 + ((c - 8) & 3)) << (nb - 2)) + MIN_MATCH
            lextra[c] = nb - 2
    dbase = np.zeros(NDIST, np.int64)
    dextra = np.zeros(NDIST, np.int64)
    for c in range(NDIST):
        if c < 4:
            dbase[c] = c + 1
        else:
            nb = c // 2
            dbase[c] = ((2 + (c & 1)) << (nb - 1)) + 1
            dextra[c] = nb - 1
    return lbase, lextra, dbase, dextra


LBASE, LEXTRA, DBASE, DEXTRA = _code_tables()


# --------------------------------------------------------------------------- match finding


@njit(inline="always")
def hash4(data: np.ndarray, i: int, hb: int) -> int:
    v = (
        np.uint64(data[i])
        | (np.uint64(data[i + 1]) << np.uint64(8))
        | (np.uint64(data[i + 2]) << np.uint64(16))
        | (np.uint64(data[i + 3]) << np.uint64(24))
    )
    return np.int64(((v * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)) >> np.uint64(32 - hb))


@njit(inline="always")
def hash3(data: np.ndarray, i: int) -> int:
    v = (np.uint64(data[i]) << np.uint64(8)) | (np.uint64(data[i + 1]) << np.uint64(16)) | (
        np.uint64(data[i + 2]) << np.uint64(24)
    )
    return np.int64(((v * np.uint64(2246822519)) & np.uint64(0xFFFFFFFF)) >> np.uint64(32 - H3_BITS))


@njit(inline="always")
def longest_match(data: np.ndarray, i: int, cand: int, prev: np.ndarray, depth: int, window: int, nice: int):
    """Best (length, distance) along the hash chain starting at ``cand`` (nearest first)."""
    n = data.size
    limit = min(MAX_MATCH, n - i)
    best = MIN_MATCH
    best_d = 0
    lo = i - window
    while cand >= lo and cand >= 0 and depth > 0:
        if data[cand + best] == data[i + best]:  # best < limit here: cheap reject first
            ln = match_length(data, cand, i, limit)
            if ln > best or (ln == best and best_d == 0):
                best = ln
                best_d = i - cand
                if ln >= nice or ln >= limit:
                    break
        cand = prev[cand]
        depth -= 1
    if best_d == 0:
        return 0, 0
    return best, best_d


@njit(inline="always")
def worth_it(length: int, dist: int) -> bool:
    """Reject short matches whose distance costs more bits than the literals they replace."""
    if length >= 6:
        return True
    if length == 5:
        return dist <= (1 << 18)
    if length == 4:
        return dist <= (1 << 14)
    return dist <= 256


# --------------------------------------------------------------------------- greedy / lazy


@njit(cache=True)
def parse_lazy(
    data: np.ndarray,
    depth: int,
    window_log: int,
    lazy: int,
    nice: int,
    hash_bits: int,
    lazy_max: int,
    good: int,
    tl: np.ndarray,
    tv: np.ndarray,
) -> int:
    """Greedy (lazy=0) or lazy (lazy=1) parse. Lazy defers a match while the next position
    starts a longer one, but only for matches shorter than ``lazy_max``, searching a quarter
    of the chain once the match is already ``good`` long. Greedy skips chain insertion inside
    matches >= nice, for speed."""
    n = data.size
    head = np.full(1 << hash_bits, -1, np.int32)
    prev = np.empty(max(n, 1), np.int32)
    window = 1 << window_log
    last = n - 4  # last position with a full 4-byte hash
    ntok = 0
    i = 0
    ins = 0  # next position to insert into the chains
    while i < n:
        if i > last:
            tl[ntok] = 0
            tv[ntok] = data[i]
            ntok += 1
            i += 1
            continue
        while ins < i:
            h = hash4(data, ins, hash_bits)
            prev[ins] = head[h]
            head[h] = ins
            ins += 1
        h = hash4(data, i, hash_bits)
        cand = head[h]
        prev[i] = cand
        head[h] = i
        ins = i + 1
        ln, d = longest_match(data, i, cand, prev, depth, window, nice)
        if ln and not worth_it(ln, d):
            ln = 0
        if ln == 0:
            tl[ntok] = 0
            tv[ntok] = data[i]
            ntok += 1
            i += 1
            continue
        if lazy:
            while ln < lazy_max and i + 1 <= last:
                j = i + 1
                h = hash4(data, j, hash_bits)
                cand = head[h]
                prev[j] = cand
                head[h] = j
                ins = j + 1
                dep = depth >> 2 if ln >= good else depth
                ln2, d2 = longest_match(data, j, cand, prev, max(dep, 1), window, nice)
                if ln2 > ln and worth_it(ln2, d2):
                    tl[ntok] = 0
                    tv[ntok] = data[i]
                    ntok += 1
                    i = j
                    ln = ln2
                    d = d2
                else:
                    break
        tl[ntok] = ln
        tv[ntok] = d
        ntok += 1
        i += ln
        if not lazy and ln >= nice:
            ins = i
    return ntok


# --------------------------------------------------------------------------- optimal parse


@njit(cache=True)
def collect_matches(data: np.ndarray, depth: int, window_log: int, nice: int, hash_bits: int):
    """Candidate matches per position, lengths strictly increasing with the nearest distance
    for each; positions inside a match of length >= nice are skipped (no candidates).

    Returns (off, clen, cdist): candidates of position i are clen/cdist[off[i]:off[i+1]].
    """
    n = data.size
    head = np.full(1 << hash_bits, -1, np.int32)
    head3 = np.full(1 << H3_BITS, -1, np.int32)
    prev = np.empty(max(n, 1), np.int32)
    window = 1 << window_log
    off = np.zeros(n + 1, np.int64)
    cap = 2 * n + 1024
    clen = np.empty(cap, np.int32)
    cdist = np.empty(cap, np.int32)
    m = 0
    last = n - 4
    i = 0
    while i < n:
        off[i] = m
        if i > last:
            i += 1
            continue
        if m + depth + 2 > cap:
            cap = 2 * cap + depth + 2
            nl = np.empty(cap, np.int32)
            nd = np.empty(cap, np.int32)
            nl[:m] = clen[:m]
            nd[:m] = cdist[:m]
            clen = nl
            cdist = nd
        limit = min(MAX_MATCH, n - i)
        h3 = hash3(data, i)
        c3 = head3[h3]
        head3[h3] = i
        h = hash4(data, i, hash_bits)
        cand = head[h]
        prev[i] = cand
        head[h] = i
        best = MIN_MATCH - 1
        if c3 >= 0 and i - c3 <= window:
            ln = match_length(data, c3, i, limit)
            if ln >= MIN_MATCH:
                best = ln
                clen[m] = ln
                cdist[m] = i - c3
                m += 1
        lo = i - window
        dd = depth
        while cand >= lo and cand >= 0 and dd > 0 and best < limit:
            if data[cand + best] == data[i + best]:
                ln = match_length(data, cand, i, limit)
                if ln > best:
                    best = ln
                    clen[m] = ln
                    cdist[m] = i - cand
                    m += 1
                    if ln >= nice:
                        break
            cand = prev[cand]
            dd -= 1
        if best >= nice:
            # commit to the long match: insert the covered positions, search none of them
            stop = min(i + best, last + 1)
            for p in range(i + 1, stop):
                off[p] = m
                h3 = hash3(data, p)
                head3[h3] = p
                h = hash4(data, p, hash_bits)
                prev[p] = head[h]
                head[h] = p
            for p in range(stop, i + best):
                off[p] = m
            i += best
        else:
            i += 1
    off[n] = m
    return off, clen[:m], cdist[:m]


@njit(cache=True)
def greedy_from_matches(data: np.ndarray, off: np.ndarray, clen: np.ndarray, cdist: np.ndarray, tl, tv) -> int:
    """Cheap first parse (longest candidate at each position) to seed the prices."""
    n = data.size
    ntok = 0
    i = 0
    while i < n:
        k = off[i + 1]
        if k > off[i] and worth_it(clen[k - 1], cdist[k - 1]):
            tl[ntok] = clen[k - 1]
            tv[ntok] = cdist[k - 1]
            i += clen[k - 1]
        else:
            tl[ntok] = 0
            tv[ntok] = data[i]
            i += 1
        ntok += 1
    return ntok


@njit(cache=True)
def count_token(f: np.ndarray, tl: np.ndarray, tv: np.ndarray, t: int) -> None:
    """Count token t's symbols into f: litlen symbols at [0, NLITLEN), distance codes after."""
    if tl[t] == 0:
        f[tv[t]] += 1
    else:
        lc, _, _ = length_code(tl[t])
        f[257 + lc] += 1
        dc, _, _ = dist_code(tv[t])
        f[NLITLEN + dc] += 1


@njit(cache=True)
def token_prices(tl: np.ndarray, tv: np.ndarray, ntok: int):
    """Bit prices from token statistics: (literal[256], length[259], distance code[NDIST])."""
    f = np.zeros(NLITLEN + NDIST, np.int64)
    for t in range(ntok):
        count_token(f, tl, tv, t)
    flit = f[:NLITLEN].astype(np.float64)
    fdist = f[NLITLEN:].astype(np.float64)
    flit[256] += 1.0
    tot = flit.sum()
    totd = max(fdist.sum(), 1.0)
    plit = np.empty(flit.size, np.float64)
    for s in range(flit.size):
        plit[s] = min(np.log2(tot / max(flit[s], 0.5)), 16.0)
    pdist = np.empty(NDIST, np.float64)
    for c in range(NDIST):
        pdist[c] = min(np.log2(totd / max(fdist[c], 0.5)), 16.0)
    plen = np.zeros(MAX_MATCH + 1, np.float64)
    for ln in range(MIN_MATCH, MAX_MATCH + 1):
        lc, le, _ = length_code(ln)
        plen[ln] = plit[257 + lc] + le
    for c in range(NDIST):
        if c >= 4:
            pdist[c] += c // 2 - 1
    return plit[:256].copy(), plen, pdist


@njit(cache=True)
def optimal_parse(
    data: np.ndarray,
    off: np.ndarray,
    clen: np.ndarray,
    cdist: np.ndarray,
    nice: int,
    plit: np.ndarray,
    plen: np.ndarray,
    pdist: np.ndarray,
    tl: np.ndarray,
    tv: np.ndarray,
) -> int:
    """Shortest path over positions with the given bit prices (forward dynamic programming)."""
    n = data.size
    cost = np.full(n + 1, np.inf)
    flen = np.zeros(n + 1, np.int32)
    fdist = np.zeros(n + 1, np.int32)
    cost[0] = 0.0
    i = 0
    while i < n:
        c = cost[i]
        nc = c + plit[data[i]]
        if nc < cost[i + 1]:
            cost[i + 1] = nc
            flen[i + 1] = 1
            fdist[i + 1] = 0
        k0 = off[i]
        k1 = off[i + 1]
        if k1 > k0 and clen[k1 - 1] >= nice:
            ln = clen[k1 - 1]
            d = cdist[k1 - 1]
            dc, _, _ = dist_code(d)
            nc = c + plen[ln] + pdist[dc]
            if nc < cost[i + ln]:
                cost[i + ln] = nc
                flen[i + ln] = ln
                fdist[i + ln] = d
            i += ln
            continue
        lo = MIN_MATCH
        for k in range(k0, k1):
            ln = clen[k]
            d = cdist[k]
            dc, _, _ = dist_code(d)
            base = c + pdist[dc]
            for m in range(lo, ln + 1):
                nc = base + plen[m]
                if nc < cost[i + m]:
                    cost[i + m] = nc
                    flen[i + m] = m
                    fdist[i + m] = d
            lo = ln + 1
        i += 1
    # walk back from the end, then reverse into token order
    cnt = 0
    p = n
    while p > 0:
        cnt += 1
        p -= flen[p]
    t = cnt
    p = n
    while p > 0:
        t -= 1
        ln = flen[p]
        if ln == 1:
            tl[t] = 0
            tv[t] = data[p - 1]
        else:
            tl[t] = ln
            tv[t] = fdist[p]
        p -= ln
    return cnt


def parse_optimal(
    data: np.ndarray, depth: int, window_log: int, nice: int, hash_bits: int, passes: int, tl: np.ndarray, tv: np.ndarray
) -> int:
    """Near-optimal parse: collect candidates once, then re-price and re-parse ``passes`` times."""
    off, clen, cdist = collect_matches(data, depth, window_log, nice, hash_bits)
    ntok = greedy_from_matches(data, off, clen, cdist, tl, tv)
    for _ in range(passes):
        plit, plen, pdist = token_prices(tl, tv, ntok)
        ntok = optimal_parse(data, off, clen, cdist, nice, plit, plen, pdist, tl, tv)
    return ntok
