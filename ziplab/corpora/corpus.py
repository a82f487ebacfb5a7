"""The Corpus value every trainer and sweep consumes: two byte splits and their fingerprint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

from ..errors import ZiplabError


class CorpusError(ZiplabError):
    """A corpus that cannot be found, read, fetched or verified."""


@dataclass
class Corpus:
    """Splits are loaded lazily so listing or naming a corpus never reads gigabytes."""

    name: str
    _train: Callable[[], bytes]
    _heldout: Callable[[], bytes]
    _sha256: str | None = None
    description: str = ""

    def train(self) -> bytes:
        return self._train()

    def heldout(self) -> bytes:
        return self._heldout()

    @property
    def sha256(self) -> str:
        """Fingerprint of both splits, recorded with every result trained or measured on it."""
        if self._sha256 is None:
            self._sha256 = split_fingerprint(self.train(), self.heldout())
        return self._sha256


def split_fingerprint(train: bytes, heldout: bytes) -> str:
    """Length-prefixed so moving the split point changes the fingerprint even if the bytes don't."""
    h = hashlib.sha256()
    for part in (train, heldout):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()
