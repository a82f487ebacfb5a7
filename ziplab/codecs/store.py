"""`store`: no compression. The zero point of every table, and a codec-free check of the
container's framing."""

from __future__ import annotations

import numpy as np

from .base import BlockCodec


class StoreCodec(BlockCodec):
    name = "store"
    summary = "no compression: blocks are framed and checksummed only"
    max_ratio = 1.0

    def encode_block(self, data: np.ndarray, params: dict) -> bytes:
        return data.tobytes()

    def decode_block(self, payload: bytes, size: int, params: dict) -> np.ndarray:
        return np.frombuffer(payload, dtype=np.uint8)


CODEC = StoreCodec()
