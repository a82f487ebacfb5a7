"""`stdlib`: the running Python's standard-library sources, an offline corpus every machine has.

Which files: every `*.py` under `sysconfig.get_paths()["stdlib"]`, except third-party code
(site-packages, dist-packages) and test suites (`test`, `tests`, `idle_test` directories).
Test suites are left out on purpose: they hold deliberately malformed sources and large
generated fixtures, which would make the corpus less like ordinary code (and ~2.5x larger).

Order: sorted POSIX relative paths, concatenated byte for byte. A file is held out when a
stable hash (sha256) of its relative path falls in the lowest 5% of the range, so the choice
depends only on the path (not on Python's salted `hash`) and no file is in both splits.
It is ~12 MB for CPython 3.11 and reads in well under a second, so it is built in memory
(memoized per process) rather than cached on disk.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sysconfig
from pathlib import Path

from .corpus import Corpus, CorpusError

EXCLUDED_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__", "test", "tests", "idle_test"})
HELDOUT_PER_10000 = 500


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_files(root: Path | None = None) -> list[str]:
    """Sorted POSIX paths (relative to root) of the corpus's source files."""
    root = root or stdlib_root()
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in EXCLUDED_DIRS]
        rel = Path(dirpath).relative_to(root)
        found.extend((rel / f).as_posix() for f in filenames if f.endswith(".py"))
    return sorted(found)


def is_heldout(relpath: str) -> bool:
    """Stable across runs and Python versions: depends on the path's bytes only."""
    digest = hashlib.sha256(relpath.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 < HELDOUT_PER_10000


@functools.lru_cache(maxsize=4)
def _build(root: Path) -> tuple[bytes, bytes]:
    files = stdlib_files(root)
    if not files:
        raise CorpusError(f"no standard-library sources under {root}")
    train: list[bytes] = []
    heldout: list[bytes] = []
    for rel in files:
        try:
            data = (root / rel).read_bytes()
        except OSError as exc:
            raise CorpusError(f"cannot read {root / rel}: {exc.strerror or exc}") from None
        (heldout if is_heldout(rel) else train).append(data)
    return b"".join(train), b"".join(heldout)


def stdlib_size(root: Path | None = None) -> int:
    """Total bytes, from stat alone (for listings that must not read the files)."""
    root = root or stdlib_root()
    return sum((root / rel).stat().st_size for rel in stdlib_files(root))


def stdlib_corpus(root: Path | None = None) -> Corpus:
    """Splits are built on first use; the fingerprint comes from the same memoized build."""
    root = root or stdlib_root()
    return Corpus(
        "stdlib",
        lambda: _build(root)[0],
        lambda: _build(root)[1],
        description="Python standard-library sources, ~5% of files held out",
    )
