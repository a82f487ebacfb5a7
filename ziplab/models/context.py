"""`ctx` predictor: adaptive order-k context counts, blended down to order 0 (Witten-Bell style).

No training and no floats in the model state: integer counts per (order, context) row, so
encoder and decoder reproduce the same probabilities bit for bit. All lanes share one set of
tables (lanes are parts of one file, so sharing helps) and are updated in lane order inside a
single numba kernel per step. Memory is bounded: order 0 and 1 are indexed directly, orders
>= 2 hash into 2**table_bits rows of 256 uint16 counts, a 32-bit tag per row detecting
collisions (a new context evicts the old one).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numba as nb
import numpy as np

from .predictor import BOS, FLOOR, check_prev

LIMIT = 1 << 13  # a row's total count is halved past this, so statistics follow the text
ESCAPE = 3.0  # weight of the lower-order estimate per distinct byte seen in a context


@dataclass
class ContextState:
    lanes: int
    counts: np.ndarray  # uint16 [k+1, rows, 256]
    totals: np.ndarray  # uint32 [k+1, rows]
    distinct: np.ndarray  # uint16 [k+1, rows]
    tags: np.ndarray  # uint32 [k+1, rows], 0 = empty
    hist: np.ndarray  # int32 [lanes, max(k, 1)], hist[:, 0] = latest byte, BOS-padded
    rows: np.ndarray  # int64 [lanes, k+1]: the row each lane's current context maps to
    ctags: np.ndarray  # uint32 [lanes, k+1]: and its tag
    started: np.ndarray  # bool [lanes]: false until a lane's first prediction was made
    probs: np.ndarray  # float32 [lanes, 256] output buffer


@nb.njit(cache=True, nogil=True)
def context_key(hist: np.ndarray, lane: int, order: int) -> np.uint64:
    h = np.uint64(0x9E3779B97F4A7C15) * np.uint64(order + 1)
    for j in range(order):
        h = (h ^ np.uint64(hist[lane, j] + 1)) * np.uint64(0x100000001B3)
        h ^= h >> np.uint64(29)
    return h


@nb.njit(cache=True, nogil=True)
def _halve(counts, totals, distinct, o, row):
    tot = 0
    dis = 0
    for x in range(256):
        c = counts[o, row, x] >> 1
        counts[o, row, x] = c
        tot += c
        if c > 0:
            dis += 1
    totals[o, row] = tot
    distinct[o, row] = dis


@nb.njit(cache=True, nogil=True)
def _step(prev, counts, totals, distinct, tags, hist, rows, ctags, started, probs, mask, escape, limit, floor):
    lanes = prev.shape[0]
    k = counts.shape[0] - 1
    width = hist.shape[1]
    p = np.empty(256, dtype=np.float64)
    for lane in range(lanes):
        b = prev[lane]
        # 1. learn: the byte just seen follows the contexts predicted from last step
        if started[lane] and b != 256:
            for o in range(k + 1):
                row = rows[lane, o]
                if tags[o, row] != ctags[lane, o]:
                    counts[o, row, :] = 0
                    totals[o, row] = 0
                    distinct[o, row] = 0
                    tags[o, row] = ctags[lane, o]
                if counts[o, row, b] == 0:
                    distinct[o, row] += 1
                counts[o, row, b] += 1
                totals[o, row] += 1
                if totals[o, row] >= (60000 if o == 0 else limit):
                    _halve(counts, totals, distinct, o, row)
        # 2. slide the history (BOS resets it, as at the start of a stream)
        if b == 256:
            for j in range(width):
                hist[lane, j] = 256
        else:
            for j in range(width - 1, 0, -1):
                hist[lane, j] = hist[lane, j - 1]
            hist[lane, 0] = b
        started[lane] = True
        # 3. predict: blend from uniform up through orders 0..k
        for x in range(256):
            p[x] = 1.0 / 256.0
        for o in range(k + 1):
            if o == 0:
                row = 0
                tag = np.uint32(1)
            elif o == 1:
                row = hist[lane, 0]
                tag = np.uint32(1)
            else:
                h = context_key(hist, lane, o)
                row = np.int64(h & np.uint64(mask))
                tag = np.uint32((h >> np.uint64(32)) | np.uint64(1))
            rows[lane, o] = row
            ctags[lane, o] = tag
            if tags[o, row] != tag or totals[o, row] == 0:
                continue
            n = float(totals[o, row])
            u = escape * float(distinct[o, row])
            inv = 1.0 / (n + u)
            for x in range(256):
                p[x] = (float(counts[o, row, x]) + u * p[x]) * inv
        s = 0.0
        for x in range(256):
            v = np.float32(p[x] * (1.0 - floor) + floor / 256.0)
            probs[lane, x] = v
            s += float(v)
        for x in range(256):
            probs[lane, x] = np.float32(probs[lane, x] / s)


class ContextPredictor:
    """Order-k adaptive context model under the predictor protocol (no weights, no torch)."""

    def __init__(self, order: int = 2, table_bits: int = 16, escape: float = ESCAPE, limit: int = LIMIT) -> None:
        if not 0 <= order <= 12:
            raise ValueError("order must be in 0..12")
        self.order = int(order)
        self.table_bits = int(table_bits)
        self.escape = float(escape)
        self.limit = int(limit)
        self.name = f"ctx{self.order}"
        self.config = {"family": "ctx", "order": self.order, "table_bits": self.table_bits, "escape": self.escape,
                       "limit": self.limit}

    @property
    def weights_sha256(self) -> str:
        """No weights: the hash of the config identifies the model."""
        return hashlib.sha256(repr(sorted(self.config.items())).encode()).hexdigest()

    def num_params(self) -> int:
        return 0

    def non_embedding_params(self) -> int:
        return 0

    @staticmethod
    def memory(order: int, lanes: int, table_bits: int = 16) -> int:
        """Bytes `start(lanes)` allocates: per order a row of 256 uint16 counts, a total, a
        distinct count and a tag for each of its rows; each lane's history and output row."""
        rows = max(257, 1 << table_bits) if order >= 1 else 1
        return (order + 1) * rows * (256 * 2 + 10) + lanes * (16 * (order + 1) + 4 * max(order, 1) + 1 + 1024)

    def start(self, lanes: int) -> ContextState:
        k = self.order
        rows = max(257, 1 << self.table_bits) if k >= 1 else 1
        return ContextState(
            lanes=int(lanes),
            counts=np.zeros((k + 1, rows, 256), dtype=np.uint16),
            totals=np.zeros((k + 1, rows), dtype=np.uint32),
            distinct=np.zeros((k + 1, rows), dtype=np.uint16),
            tags=np.zeros((k + 1, rows), dtype=np.uint32),
            hist=np.full((lanes, max(k, 1)), BOS, dtype=np.int32),
            rows=np.zeros((lanes, k + 1), dtype=np.int64),
            ctags=np.zeros((lanes, k + 1), dtype=np.uint32),
            started=np.zeros(lanes, dtype=np.bool_),
            probs=np.empty((lanes, 256), dtype=np.float32),
        )

    def step(self, state: ContextState, prev: np.ndarray) -> tuple[np.ndarray, ContextState]:
        prev = check_prev(prev, state.lanes)
        s = state
        _step(prev, s.counts, s.totals, s.distinct, s.tags, s.hist, s.rows, s.ctags, s.started, s.probs,
              (1 << self.table_bits) - 1, self.escape, self.limit, FLOOR)
        return s.probs.copy(), s
