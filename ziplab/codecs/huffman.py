"""Order-0 canonical Huffman, length-limited, table-driven decoding.

Payload of a block: one byte ``k``, then one LSB-first bit stream (see bitio) of chunks of
2**k bytes, each ``lengths table | code bits``: per-chunk tables follow local statistics, which
beats the block-wide order-0 entropy on real text. The encoder picks k by exact cost.
Code lengths are optimal under the length limit (package-merge, in :mod:`.canonical`) and are
limited to ``MAX_LEN`` = 12 so one 4096-entry table decodes every symbol with a single lookup.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .kernels.bitio import flush_bits, overrun, put_bits, refill
from .kernels.canonical import (best_split_nb, build_decode_table_nb, code_lengths_nb, pack_codes_nb,
    read_lengths_nb, write_lengths_nb)
from .kernels.classic import ClassicCodec, decode_checked
from .kernels.errcodes import ERR_BAD_CODE, ERR_BAD_HEADER, ERR_BAD_TABLE, ERR_TRUNCATED

MAX_LEN = 12
#: the byte codec splits a block into chunks of 2**k bytes, each with its own table
MIN_CHUNK_LOG = 10
MAX_CHUNK_LOG = 30
CHUNK_LOG_CHOICES = np.array([14, 15, 16, 17, 19, 30], np.int64)

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
    return best_split_nb(hist, fine_log, choices, np.array([0, 256], np.int64), np.array([max_len], np.int64),
                         np.zeros(256, np.int64))


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
        pack_codes_nb(lengths, packed)
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
    return decode_checked("huffman", _decode_nb, payload, size, MAX_LEN, needs_payload=True)


class HuffmanCodec(ClassicCodec):
    name = "huffman"
    summary = "order-0 canonical Huffman, length-limited, table-driven decoding"
    #: every code is at least 1 bit, so one payload byte decodes to at most 8 bytes
    max_ratio = 8.0
    block_size = 4 << 20
    compress = staticmethod(compress_block)
    decompress = staticmethod(decompress_block)


CODEC = HuffmanCodec()

__all__ = ["CODEC", "HuffmanCodec", "MAX_LEN", "compress_block", "decompress_block"]
