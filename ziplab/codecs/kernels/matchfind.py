"""Hash-chain match finder over a sliding window, as inlinable numba helpers.

Layout: ``head[hash3(pos)]`` is the newest position whose next 3 bytes hash there (-1: none);
``prev[pos & mask]`` links each inserted position to the one inserted before it in the same
chain. ``prev`` is a ring of ``mask + 1`` slots, so memory stays at the window size whatever the
block size; a slot is overwritten only by a position ``mask + 1`` later, so every candidate
within ``max_dist <= mask`` of the search position still has its own link.

Callers insert positions strictly in increasing order (they may skip some, e.g. inside long
matches: skipped positions are simply never candidates). No helper reads past ``data.size``:
positions without 3 bytes left are neither hashed nor inserted, and match lengths are capped
by the bytes remaining.

Typical use inside an ``@njit`` encoder::

    head, prev = new_tables(hash_bits, window_log)
    cand = insert(data, i, head, prev, mask, hash_bits)   # chain start for i, then link i
    length, dist = longest_match(data, i, cand, prev, mask, max_dist, depth, nice, max_len)
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

from .bitio import load_le64

MIN_MATCH = 3
_HASH_MUL = np.uint64(2654435761)


@njit(inline="always")
def new_tables(hash_bits: int, window_log: int):
    """Empty ``head`` (all -1) and ring ``prev`` (never read before being written)."""
    return np.full(1 << hash_bits, -1, np.int32), np.empty(1 << window_log, np.int32)


@njit(inline="always")
def hash3(data: np.ndarray, pos: int, hash_bits: int) -> int:
    """Multiplicative hash of data[pos:pos+3] to ``hash_bits`` bits; needs pos + 3 <= size."""
    v = np.uint64(data[pos]) | (np.uint64(data[pos + 1]) << np.uint64(8)) | (np.uint64(data[pos + 2]) << np.uint64(16))
    return np.int64(((v * _HASH_MUL) & np.uint64(0xFFFFFFFF)) >> np.uint64(32 - hash_bits))


@njit(inline="always")
def insert(data: np.ndarray, pos: int, head: np.ndarray, prev: np.ndarray, mask: int, hash_bits: int) -> int:
    """Link ``pos`` into its chain and return the chain's former head: the nearest earlier
    candidate for a match at ``pos`` (-1: none, or fewer than 3 bytes left at ``pos``)."""
    if pos + MIN_MATCH > data.size:
        return -1
    h = hash3(data, pos, hash_bits)
    cand = head[h]
    prev[pos & mask] = cand
    head[h] = pos
    return cand


@njit(inline="always")
def match_length(data: np.ndarray, a: int, b: int, limit: int) -> int:
    """Length of the common prefix of data[a:] and data[b:], at most ``limit``.

    Needs a < b and b + limit <= size; compares 8 bytes per step while they fit."""
    k = 0
    while k + 8 <= limit:
        x = load_le64(data, a + k) ^ load_le64(data, b + k)
        if x != np.uint64(0):
            return k + (np.int64(trailing_zeros(x)) >> 3)
        k += 8
    while k < limit and data[a + k] == data[b + k]:
        k += 1
    return k


@njit(inline="always")
def longest_match(
    data: np.ndarray,
    pos: int,
    cand: int,
    prev: np.ndarray,
    mask: int,
    max_dist: int,
    depth: int,
    nice: int,
    max_len: int,
):
    """Longest (length, distance) among at most ``depth`` chain candidates, nearest first.

    Length is capped by ``max_len`` and the bytes left; the walk stops early at ``nice``.
    Ties keep the nearer candidate. Returns (0, 0) when nothing reaches MIN_MATCH.
    Needs ``max_dist <= mask`` so every visited candidate still owns its ring slot."""
    limit = min(max_len, data.size - pos)
    if limit < MIN_MATCH:
        return 0, 0
    best = MIN_MATCH - 1
    best_dist = 0
    lo = pos - max_dist
    while cand >= lo and cand >= 0 and depth > 0:
        # one byte past the current best decides most rejections without a full compare
        if data[cand + best] == data[pos + best] and data[cand] == data[pos]:
            ln = match_length(data, cand, pos, limit)
            if ln > best:
                best = ln
                best_dist = pos - cand
                if ln >= nice or ln >= limit:
                    break
        nxt = prev[cand & mask]
        if nxt >= cand:  # defensive: chains only ever point backwards
            break
        cand = nxt
        depth -= 1
    if best_dist == 0:
        return 0, 0
    return best, best_dist


@njit(inline="always")
def insert_range(data: np.ndarray, start: int, stop: int, head: np.ndarray, prev: np.ndarray, mask: int, hash_bits: int) -> None:
    """Insert positions start..stop-1 (those with 3 bytes left), e.g. the inside of a match."""
    stop = min(stop, data.size - MIN_MATCH + 1)
    for p in range(start, stop):
        h = hash3(data, p, hash_bits)
        prev[p & mask] = head[h]
        head[h] = p
