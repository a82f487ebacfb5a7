"""The run store: a sweep or grid folder's results.json and its side files, read and written whole
under one lock.

Several processes (one sweep per family, `--jobs` workers, a benchmark beside a running grid) may
share a folder: every read-modify-write happens under `locked`, and every file is replaced
atomically (`write_json`), so a reader never sees half a file and a killed writer leaves the old
one. The bottom floor of `ziplab.sweep`: it imports nothing of the package but the provenance
record every file carries.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..provenance import stamp

#: the folder's main record (sweep or grid) and the side files the research protocol writes beside it
RESULTS = "results.json"
PREREGISTERED = "preregistered.json"  # `ziplab sweep --grid --predict` (ziplab.sweep.preregister)
RATE_CHECK = "rate_check.json"  # benchmarks/grid_rate_check.py
LARGEST = "largest.json"  # benchmarks/grid_largest.py
FRESH = "fresh.json"  # benchmarks/grid_fresh.py


def write_json(path: Path, data: Any) -> None:
    """Write `data` to `path` atomically (a .part file renamed over it)."""
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def load_previous(path: Path, key: dict) -> dict | None:
    """The record at `path` if it was written for the same run key (None if absent, unreadable or
    another run's)."""
    if not path.is_file():
        return None
    try:
        old = json.loads(path.read_text())
    except ValueError:
        return None
    return old if isinstance(old, dict) and old.get("run_key") == key else None


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold the folder's lock: every read-modify-write of a file in `out` happens under it."""
    with open(out / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def update(out: Path, fresh: dict, change: Callable[[dict], None]) -> dict:
    """Apply `change` to the newest results.json (or `fresh` if there is none) and save it. Where
    `fresh` carries a provenance record, the file is stamped with the writing process's record as
    it is now (torch's details once it is loaded); a writer of another origin is kept beside it."""
    with locked(out):
        results = load_previous(out / RESULTS, fresh["run_key"]) or fresh
        change(results)
        if "provenance" in fresh:
            stamp(results)
        write_json(out / RESULTS, results)
        return results


def read(out: Path, key: dict, fresh: dict) -> dict:
    """The folder's current record for run `key` (read under the lock), or `fresh`."""
    with locked(out):
        return load_previous(out / RESULTS, key) or fresh
