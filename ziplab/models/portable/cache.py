"""The quantised-model cache: a checkpoint's portable engine, stored once per (checkpoint bytes,
engine), so that later runs start without building the torch model or importing torch.

Key: sha256 of the checkpoint file's bytes, the engine name and CACHE_FORMAT. An entry is an
.npz of the engine's arrays plus its metadata (the float weights' sha256, the quantised model's
sha256, config, sizes); on load the quantised sha256 is recomputed from the arrays, so a damaged
or foreign entry is ignored (and rebuilt), never used. Location: ZIPLAB_CACHE_DIR, else the
platform's user cache folder (platformdirs) / quantised.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

#: bump when an entry's layout changes (not when an engine changes: engines are in the key)
CACHE_FORMAT = 1
META = "__meta__"


def cache_dir() -> Path:
    env = os.environ.get("ZIPLAB_CACHE_DIR")
    if env:
        return Path(env).expanduser() / "quantised"
    import platformdirs

    return Path(platformdirs.user_cache_dir("ziplab")) / "quantised"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def entry_path(checkpoint_sha256: str, engine: str) -> Path:
    key = hashlib.sha256(f"{checkpoint_sha256}|{engine}|{CACHE_FORMAT}".encode()).hexdigest()
    return cache_dir() / f"{key[:40]}.npz"


def quant_sha256(arrays: dict[str, np.ndarray], engine: str) -> str:
    """The header's quant_sha256: the engine's arrays and its name."""
    from ..predictor import sha256_arrays

    return sha256_arrays({**arrays, "engine": np.frombuffer(engine.encode(), dtype=np.uint8)})


def load(checkpoint_sha256: str, engine: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """(arrays, metadata) of a valid entry, or None."""
    path = entry_path(checkpoint_sha256, engine)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != META}
            meta = json.loads(bytes(z[META]).decode())
    except Exception:  # a damaged entry fails in zipfile, numpy or json in many ways: rebuild it
        return None
    if meta.get("engine") != engine or meta.get("quant_sha256") != quant_sha256(arrays, engine):
        return None
    return arrays, meta


def store(checkpoint_sha256: str, engine: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write an entry atomically; a cache that cannot be written only costs speed."""
    path = entry_path(checkpoint_sha256, engine)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.savez(f, **arrays, **{META: np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)})
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
