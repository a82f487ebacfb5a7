"""Corpora the user already has on disk: a train/dev folder or one file split 90/10."""

from __future__ import annotations

import functools
import lzma
from pathlib import Path

from .corpus import Corpus, CorpusError

HELDOUT_NAMES = ("dev.txt", "test.txt")
#: the training split as plain text, else xz-compressed (a large split ships that way)
TRAIN_NAMES = ("train.txt", "train.txt.xz")


def read_bytes(path: Path) -> bytes:
    """Read a file, turning OS errors into a one-line CorpusError."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_xz(path: Path) -> bytes:
    """Decompress an .xz file whole, turning OS and format errors into a one-line CorpusError."""
    try:
        with lzma.open(path) as f:
            return f.read()
    except (OSError, lzma.LZMAError, EOFError) as exc:
        raise CorpusError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None


def folder_corpus(path: Path) -> Corpus:
    """train.txt (or train.txt.xz) is trained on; dev.txt (else test.txt) is held out, so the
    split is by file. An xz split is decompressed once per Corpus, not on every read."""
    heldout = next((path / n for n in HELDOUT_NAMES if (path / n).is_file()), None)
    train = next((path / n for n in TRAIN_NAMES if (path / n).is_file()), None)
    if train is None or heldout is None:
        raise CorpusError(f"{path} is not a corpus folder: it needs train.txt (or train.txt.xz) and dev.txt "
                          "(or test.txt)")
    read_train = functools.cache(lambda: read_xz(train)) if train.suffix == ".xz" else lambda: read_bytes(train)
    return Corpus(
        str(path),
        read_train,
        lambda: read_bytes(heldout),
        description=f"local folder: {train.name} / {heldout.name}",
    )


def file_corpus(path: Path) -> Corpus:
    """A single file: the last 10% is held out (a suffix, so no byte is in both splits)."""

    def split(part: int) -> bytes:
        data = read_bytes(path)
        cut = len(data) - len(data) // 10
        return data[:cut] if part == 0 else data[cut:]

    return Corpus(str(path), lambda: split(0), lambda: split(1), description="local file: last 10% held out")
