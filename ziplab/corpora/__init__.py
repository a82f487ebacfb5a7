"""Corpora: named or local text collections with deterministic train / held-out splits.

`load_corpus(spec)` takes a registered name or a local path (a folder with train.txt and
dev.txt/test.txt, or a single file whose last 10% is held out)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import ZiplabError


class CorpusError(ZiplabError):
    """A corpus that cannot be found, read or fetched."""


@dataclass
class Corpus:
    name: str
    _train: Callable[[], bytes]
    _heldout: Callable[[], bytes]
    _sha256: str | None = None

    def train(self) -> bytes:
        return self._train()

    def heldout(self) -> bytes:
        return self._heldout()

    @property
    def sha256(self) -> str:
        """Fingerprint of both splits, recorded with every result trained or measured on it."""
        if self._sha256 is None:
            h = hashlib.sha256()
            for part in (self.train(), self.heldout()):
                h.update(len(part).to_bytes(8, "little"))
                h.update(part)
            self._sha256 = h.hexdigest()
        return self._sha256


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None


def folder_corpus(path: Path) -> Corpus:
    heldout = next((path / n for n in ("dev.txt", "test.txt") if (path / n).is_file()), None)
    if not (path / "train.txt").is_file() or heldout is None:
        raise CorpusError(f"{path} is not a corpus folder: it needs train.txt and dev.txt (or test.txt)")
    return Corpus(str(path), lambda: _read(path / "train.txt"), lambda: _read(heldout))


def file_corpus(path: Path) -> Corpus:
    def split(part: int) -> bytes:
        data = _read(path)
        cut = len(data) - len(data) // 10
        return data[:cut] if part == 0 else data[cut:]

    return Corpus(str(path), lambda: split(0), lambda: split(1))


def load_corpus(spec: str | Path) -> Corpus:
    path = Path(spec).expanduser()
    if path.is_dir():
        return folder_corpus(path)
    if path.is_file():
        return file_corpus(path)
    raise CorpusError(f"no corpus named {str(spec)!r}: give a registered name, a folder or a file")
