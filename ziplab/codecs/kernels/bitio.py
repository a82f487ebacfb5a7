"""LSB-first bit writer/reader for numba code (DEFLATE bit order).

State is passed explicitly as ``(pos, acc, nbits)`` tuples instead of living in an object:
numba keeps plain integers in registers, so an inlined ``put_bits`` costs a few instructions.

Writer: ``acc`` holds ``nbits < 8`` pending bits; values of up to 56 bits are appended and the
completed bytes flushed with one 8-byte store. The caller sizes ``buf`` (no capacity checks in
the hot path; every encoder here allocates a proven upper bound plus 8 bytes of slack).

Reader: ``pos`` is the index of the next byte not yet loaded into ``acc``. Bytes past the end of
``buf`` read as zeros, so a truncated stream never reads out of bounds; callers detect overrun
with :func:`overrun` (more bits consumed than the buffer holds).
"""

from __future__ import annotations

import numpy as np
from numba import njit



@njit(inline="always")
def put_bits(buf: np.ndarray, pos: int, acc: np.uint64, nbits: int, value: int, n: int):
    """Append the low ``n`` (<= 56) bits of ``value``; returns the new (pos, acc, nbits).

    Branch-free: always stores 8 bytes at ``pos`` and advances by the whole bytes completed,
    so ``buf`` needs 8 bytes of slack past the final length.
    """
    acc |= np.uint64(value) << np.uint64(nbits)
    nbits += n
    base = np.uint64(pos)  # unsigned index: numba skips the negative-index fix-up, stores merge
    for k in range(8):
        buf[base + np.uint64(k)] = np.uint8((acc >> np.uint64(8 * k)) & np.uint64(0xFF))
    adv = nbits >> 3
    pos += adv
    acc >>= np.uint64(adv * 8)
    nbits &= 7
    return pos, acc, nbits


@njit(inline="always")
def flush_bits(buf: np.ndarray, pos: int, acc: np.uint64, nbits: int) -> int:
    """Write the pending bits (zero-padded to a byte); returns the final byte length."""
    if nbits > 0:
        buf[pos] = np.uint8(acc & np.uint64(0xFF))
        pos += 1
    return pos


@njit(inline="always")
def load_le64(buf: np.ndarray, pos: int) -> np.uint64:
    """Little-endian 64-bit load (LLVM folds the byte loads into one); needs pos + 8 <= len."""
    b = np.uint64(pos)
    return (
        np.uint64(buf[b])
        | (np.uint64(buf[b + np.uint64(1)]) << np.uint64(8))
        | (np.uint64(buf[b + np.uint64(2)]) << np.uint64(16))
        | (np.uint64(buf[b + np.uint64(3)]) << np.uint64(24))
        | (np.uint64(buf[b + np.uint64(4)]) << np.uint64(32))
        | (np.uint64(buf[b + np.uint64(5)]) << np.uint64(40))
        | (np.uint64(buf[b + np.uint64(6)]) << np.uint64(48))
        | (np.uint64(buf[b + np.uint64(7)]) << np.uint64(56))
    )


@njit(inline="always")
def refill(buf: np.ndarray, n: int, pos: int, acc: np.uint64, nbits: int):
    """Top ``acc`` up to at least 56 valid bits; bytes at or past ``n`` count as zeros.

    The fast path ORs a whole 8-byte word and advances only by the whole bytes that fitted; the
    partially loaded byte is ORed again (same bits) next time, so no branch per byte.
    """
    if pos + 8 <= n:
        acc |= load_le64(buf, pos) << np.uint64(nbits)
        pos += (63 - nbits) >> 3
        nbits |= 56
    else:
        while nbits <= 56:
            if pos < n:
                acc |= np.uint64(buf[pos]) << np.uint64(nbits)
            pos += 1
            nbits += 8
    return pos, acc, nbits


@njit(inline="always")
def peek(acc: np.uint64, n: int) -> np.uint64:
    """The next ``n`` bits without consuming them (n < 64); unsigned, so usable as a fast index."""
    return acc & ((np.uint64(1) << np.uint64(n)) - np.uint64(1))


@njit(inline="always")
def consume(acc: np.uint64, nbits: int, n: int):
    """Drop ``n`` bits that the caller has already used; returns (acc, nbits)."""
    return acc >> np.uint64(n), nbits - n


@njit(inline="always")
def overrun(n: int, pos: int, nbits: int) -> bool:
    """True when more bits were consumed than the ``n``-byte buffer holds."""
    return pos * 8 - nbits > n * 8


@njit(inline="always")
def bits_used(pos: int, nbits: int) -> int:
    """Bits consumed so far by a reader."""
    return pos * 8 - nbits


@njit(inline="always")
def store_le64(buf: np.ndarray, pos: int, value: np.uint64) -> None:
    """Little-endian 64-bit store (folded into one store); needs pos + 8 <= len."""
    b = np.uint64(pos)
    for k in range(8):
        buf[b + np.uint64(k)] = np.uint8((value >> np.uint64(8 * k)) & np.uint64(0xFF))
