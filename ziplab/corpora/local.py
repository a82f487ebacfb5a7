"""Corpora the user already has on disk: a train/dev folder or one file split 90/10."""

from __future__ import annotations

from pathlib import Path

from .corpus import Corpus, CorpusError

HELDOUT_NAMES = ("dev.txt", "test.txt")


def read_bytes(path: Path) -> bytes:
    """Read a file, turning OS errors into a one-line CorpusError."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None


def folder_corpus(path: Path) -> Corpus:
    """train.txt is trained on; dev.txt (else test.txt) is held out, so the split is by file."""
    heldout = next((path / n for n in HELDOUT_NAMES if (path / n).is_file()), None)
    if not (path / "train.txt").is_file() or heldout is None:
        raise CorpusError(f"{path} is not a corpus folder: it needs train.txt and dev.txt (or test.txt)")
    return Corpus(
        str(path),
        lambda: read_bytes(path / "train.txt"),
        lambda: read_bytes(heldout),
        description=f"local folder: train.txt / {heldout.name}",
    )


def file_corpus(path: Path) -> Corpus:
    """A single file: the last 10% is held out (a suffix, so no byte is in both splits)."""

    def split(part: int) -> bytes:
        data = read_bytes(path)
        cut = len(data) - len(data) // 10
        return data[:cut] if part == 0 else data[cut:]

    return Corpus(str(path), lambda: split(0), lambda: split(1), description="local file: last 10% held out")
