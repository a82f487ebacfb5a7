"""enwik8, enwik9 and text8: the standard byte-level benchmarks, with the literature's splits.

Verification: Matt Mahoney publishes size, MD5 and SHA-1 of the unzipped enwik8 and enwik9
(mattmahoney.net/dc/textdata.html), not SHA-256, so the unzipped files are checked against
size + the published SHA-1; text8's SHA-1 is the one used by MXNet/GluonNLP's loaders. The
corpus fingerprint (`Corpus.sha256`) is the SHA-256 of the splits themselves, computed once
and remembered in the cache stamp.

Splits, as byte fractions of the file: train = first 90%, valid = next 5%, test = last 5%,
and heldout() is the test split. For enwik8 and text8 (10^8 bytes) this is exactly the usual
90M / 5M / 5M. For enwik9 (10^9 bytes) there is no single convention; we use the same
proportions (900M / 50M / 50M), so a sweep evaluating a prefix of heldout() reads the start of
enwik9's last 50M.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .corpus import Corpus
from .download import Download, fetch, read_stamp, write_stamp

TRAIN_PERCENT = 90
VALID_PERCENT = 5


@dataclass(frozen=True)
class Standard:
    spec: Download
    description: str


STANDARD: dict[str, Standard] = {
    "enwik8": Standard(
        Download("enwik8", "enwik8.zip", "enwik8", 100_000_000, {"sha1": "57b8363b814821dc9d47aa4d41f58733519076b2"}),
        "first 10^8 bytes of English Wikipedia XML (Hutter Prize); 90M/5M/5M",
    ),
    "enwik9": Standard(
        Download("enwik9", "enwik9.zip", "enwik9", 1_000_000_000, {"sha1": "2996e86fb978f93cca8f566cc56998923e7fe581"}),
        "first 10^9 bytes of English Wikipedia XML; 900M/50M/50M",
    ),
    "text8": Standard(
        Download("text8", "text8.zip", "text8", 100_000_000, {"sha1": "0dc3edebc970dcc96137e7deda4d9995af9d93de"}),
        "enwik9 cleaned to lowercase a-z and space, first 10^8 bytes; 90M/5M/5M",
    ),
}


def split_ranges(size: int) -> dict[str, tuple[int, int]]:
    """Byte ranges of train / valid / test; integer arithmetic so 10^8 splits exactly."""
    train_end = size * TRAIN_PERCENT // 100
    valid_end = size * (TRAIN_PERCENT + VALID_PERCENT) // 100
    return {"train": (0, train_end), "valid": (train_end, valid_end), "test": (valid_end, size)}


def read_range(path: Path, start: int, end: int) -> bytes:
    with path.open("rb") as f:
        f.seek(start)
        return f.read(end - start)


def file_fingerprint(path: Path, ranges: list[tuple[int, int]]) -> str:
    """Same value as corpus.split_fingerprint over these ranges, streamed (enwik9 is 1 GB)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for start, end in ranges:
            h.update((end - start).to_bytes(8, "little"))
            f.seek(start)
            left = end - start
            while left:
                chunk = f.read(min(left, 1 << 22))
                if not chunk:
                    break
                h.update(chunk)
                left -= len(chunk)
    return h.hexdigest()


def download_corpus(
    spec: Download,
    description: str = "",
    *,
    cache_dir: Path | None = None,
    mirror: str | None = None,
    progress: bool = True,
) -> Corpus:
    """Fetch (if needed) and verify now, so a missing corpus fails before any training starts."""
    path = fetch(spec, cache_dir=cache_dir, mirror=mirror, progress=progress)
    ranges = split_ranges(path.stat().st_size)
    parts = [ranges["train"], ranges["test"]]
    fingerprint = read_stamp(path).get("fingerprint")
    if fingerprint is None:
        fingerprint = file_fingerprint(path, parts)
        write_stamp(path, fingerprint=fingerprint)
    return Corpus(
        spec.name,
        lambda: read_range(path, *ranges["train"]),
        lambda: read_range(path, *ranges["test"]),
        fingerprint,
        description,
    )


def standard_corpus(name: str, **kwargs: object) -> Corpus:
    entry = STANDARD[name]
    return download_corpus(entry.spec, entry.description, **kwargs)  # type: ignore[arg-type]
