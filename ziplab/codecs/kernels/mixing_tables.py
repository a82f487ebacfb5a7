"""The fixed tables of the context-mixing engine (`mixing`): squash, stretch and the counters'
rate reciprocals, built with decimal arithmetic so they are the same bits on every machine.
Kept apart from the kernels so the format's constants can be read (and rebuilt) on their own."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from pathlib import Path

import numpy as np

# ---- tables: built with decimal arithmetic, so they are the same bits everywhere -----------
STRETCH_MAX = 2047  # stretch domain: 8 fractional bits, |st| <= 2047 (p in ~[3e-4, 1 - 3e-4])


def _build_tables() -> tuple[np.ndarray, np.ndarray]:
    """SQUASH and STRETCH from 40-digit decimal arithmetic rounding half to even, in a context of
    their own: neither the caller's decimal settings change them nor they the caller's."""
    with localcontext(Context(prec=40, rounding=ROUND_HALF_EVEN)):
        squash = np.empty(2 * STRETCH_MAX + 1, dtype=np.int64)  # st + 2047 -> 16-bit probability
        for i in range(-STRETCH_MAX, STRETCH_MAX + 1):
            p = Decimal(65536) / (1 + (Decimal(-i) / 256).exp())
            squash[i + STRETCH_MAX] = min(65535, max(1, int(p.to_integral_value())))
        stretch = np.empty(4096, dtype=np.int64)  # 12-bit probability -> st
        for p12 in range(4096):
            q = (Decimal(p12) + Decimal("0.5")) / 4096
            st = int(((q / (1 - q)).ln() * 256).to_integral_value())
            stretch[p12] = min(STRETCH_MAX, max(-STRETCH_MAX, st))
    return squash, stretch


#: the tables as built once (`python -m ziplab.codecs.kernels.mixing_tables` writes it): building
#: them takes ~0.2 s of every start-up, loading ~1 ms. tests/test_mix.py rebuilds and compares.
STORED = Path(__file__).with_name("mixing_tables.npz")


def _load_tables() -> tuple[np.ndarray, np.ndarray]:
    """The stored tables when they are there and well-formed, else built (same bits either way)."""
    try:
        with np.load(STORED) as f:
            squash, stretch = f["squash"], f["stretch"]
        if squash.shape == (2 * STRETCH_MAX + 1,) and stretch.shape == (4096,) and squash.dtype == stretch.dtype == np.int64:
            return squash, stretch
    except (OSError, KeyError, ValueError, EOFError):  # np.load's ways of saying 'not this file'
        pass
    return _build_tables()


SQUASH, STRETCH = _load_tables()
#: counter rates: a count-n slot moves 1/(n + 1.5) of the way to the bit (16-bit fixed point)
RECIP = np.array([int(65536 / (n + 1.5)) for n in range(1024)], dtype=np.int64)


if __name__ == "__main__":
    squash, stretch = _build_tables()
    np.savez(STORED, squash=squash, stretch=stretch)
    print(f"wrote {STORED}")
