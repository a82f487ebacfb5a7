"""The exactness self-test's plumbing: a fixed bank of test rows per product, its exact result
computed once (float64, exact below 2^53), and batches of the bank laid out at the coding shape.

A product kernel may choose its code path by shape (M blocks, tails), so the test multiplies
exactly `lanes` rows at a time — the bank's rows cycled to fill them — and compares every row
with the stored result. Re-run whenever coding starts, it costs one product per matrix.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

#: rows in each product's test bank: the bound rows plus random ones
BANK_ROWS = 16


def batches(bank_rows: int, lanes: int) -> np.ndarray:
    """Row indices [batches, lanes] that cycle through the bank and cover each row at least once."""
    count = -(-max(lanes, bank_rows) // lanes) * lanes
    return (np.arange(count) % bank_rows).reshape(-1, lanes)


def exact_in_batches(bank: np.ndarray, want: np.ndarray, lanes: int,
                     product: Callable[[np.ndarray], np.ndarray]) -> bool:
    """product(bank[idx]) == want[idx] for each batch of `lanes` bank rows (cycled)."""
    for idx in batches(len(bank), lanes):
        if not np.array_equal(np.asarray(product(bank[idx]), dtype=np.float64), want[idx]):
            return False
    return True
