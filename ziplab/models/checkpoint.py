"""Checkpoints: one .safetensors file whose header metadata carries the JSON record of how the
weights were made (family, size, config, corpus sha256, seed, bytes seen, bpb, command line).
A human-readable copy of that JSON sits beside it. Loading parses tensors and JSON only, so a
checkpoint can never execute code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ZiplabError
from ..hardware import restores_torch_state

META_KEY = "ziplab"
SUFFIX = ".safetensors"
#: largest weight magnitude a checkpoint may hold (fp16's range is below it): with configs in
#: bounds, every activation the engine derives stays finite in float64
MAX_WEIGHT = float(1 << 16)
#: bytes a checkpoint may hold beyond its weights at 4 bytes each (safetensors header, metadata)
FILE_SLACK = 1 << 20
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"


class CheckpointError(ZiplabError):
    """A checkpoint that is missing, unreadable or not a ziplab model."""


def models_dir() -> Path:
    """Where trained checkpoints go by default (ZIPLAB_MODELS_DIR overrides, e.g. for tests)."""
    env = os.environ.get("ZIPLAB_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("ziplab")) / "models"


def default_path(size: str, corpus_sha256: str, seed: int, stamp: str) -> Path:
    return models_dir() / f"{size}-{corpus_sha256[:12]}-s{seed}-{stamp}{SUFFIX}"


def save_checkpoint(model: Any, meta: dict, path: Path, dtype: str = "float16") -> Path:
    """Write weights (cast to dtype to keep files small) and metadata; returns the path."""
    import torch
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to(getattr(torch, dtype)).contiguous() for k, v in model.state_dict().items()}
    meta = {**meta, "storage_dtype": dtype}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta, sort_keys=True)})
    os.replace(tmp, path)
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path


def read_meta(path: Path) -> dict:
    """Metadata only, without reading the weights."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise CheckpointError(f"{path} is not a readable checkpoint: {exc}") from None
    if raw is None:
        raise CheckpointError(f"{path} has no ziplab metadata")
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError):
        raise CheckpointError(f"{path} has unreadable ziplab metadata") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("family"), str) or not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path}: its metadata names no model family and config")
    return meta


def check_checkpoint(path: Path, meta: dict, limits: Any = None) -> None:
    """A checkpoint is input: its config within bounds, its file no larger than its weights
    need, and one predictor of it within the memory limit — all before a tensor is read."""
    from ..limits import default_limits
    from .budget import ModelConfigError, check_config, model_bytes, param_count

    try:
        check_config(meta["family"], meta["config"])
    except ModelConfigError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    size = path.stat().st_size
    if size > param_count(meta["family"], meta["config"]) * 4 + FILE_SLACK:
        raise CheckpointError(f"{path} holds {size} bytes, more than its config's weights need")
    (limits or default_limits()).check(model_bytes(meta["family"], meta["config"]), f"the model in {path}")


def check_weights(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Every weight finite and within MAX_WEIGHT (a NaN would reach integer conversions)."""
    for name, value in arrays.items():
        if not np.issubdtype(value.dtype, np.floating):
            raise CheckpointError(f"{path}: tensor {name!r} is not floating point")
        if value.size and not (np.isfinite(value).all() and float(np.abs(value).max()) <= MAX_WEIGHT):
            raise CheckpointError(f"{path}: tensor {name!r} holds non-finite or implausibly large weights")


def load_checkpoint(path: Path, limits: Any = None):
    """(module in eval mode with fp32 weights, metadata). Casts are exact widenings, so the
    loaded weights, and their sha256, are the same in every process. Config, size and weights
    are checked (`check_checkpoint`, `check_weights`) before they are trusted."""
    import torch
    from safetensors.numpy import load_file

    from .ladder import build_model

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    meta = read_meta(path)
    check_checkpoint(path, meta, limits)
    try:
        arrays = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for bad files
        raise CheckpointError(f"{path} is not a readable checkpoint: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    check_weights(path, arrays)
    try:
        model = build_model(meta["family"], meta["config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: its config cannot be built: {exc}") from None
    state = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in arrays.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not match its config: {str(exc).splitlines()[0]}") from None
    return model.eval(), meta


def list_checkpoints(size: str | None = None) -> list[Path]:
    """Trained checkpoints in models_dir(), newest first (optionally of one size)."""
    root = models_dir()
    if not root.is_dir():
        return []
    pattern = f"{size}-*{SUFFIX}" if size else f"*{SUFFIX}"
    return sorted(root.glob(pattern), key=lambda p: (p.stat().st_mtime, p.name), reverse=True)


#: the model `nn` and `--model shipped` mean; `mix` levels name theirs (codecs.mix.LEVELS).
#: Since 0.9.1 the l4 trained on gutenberg-large (226 MB of fresh text): 1.836 bpb on 1 MiB of
#: dev.txt against l4-gutenberg's 2.087 at the same speed. l4-gutenberg stays in the package:
#: files name their model, and older files name it
SHIPPED_DEFAULT = "l4-gutenberg-large"


def shipped_names() -> list[str]:
    """Names of the models in the package (ziplab/models/shipped/NAME.safetensors)."""
    return sorted(p.name[: -len(SUFFIX)] for p in SHIPPED_DIR.glob(f"*{SUFFIX}"))


def shipped_index() -> dict:
    """The package's shipped/index.json (files, sha256s, training commands, measured figures),
    or {} if this installation has none."""
    path = SHIPPED_DIR / "index.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def shipped_path(name: str = SHIPPED_DEFAULT) -> Path | None:
    path = SHIPPED_DIR / f"{name}{SUFFIX}"
    return path if path.is_file() else None


def resolve(spec: str | Path | None) -> Path:
    """A shipped model's name, a size name (newest trained checkpoint of it), a path, or None
    (the shipped default)."""
    from .ladder import LADDER, rung

    if spec is None:
        path = shipped_path()
        if path is None:
            raise CheckpointError("no shipped model in this installation: train one with `ziplab train`")
        return path
    if isinstance(spec, str) and spec in shipped_names():
        return SHIPPED_DIR / f"{spec}{SUFFIX}"
    if isinstance(spec, str) and spec in LADDER:
        found = list_checkpoints(spec)
        if not found:
            raise CheckpointError(f"no trained checkpoint for size {spec!r}: train one with "
                                  f"`ziplab train --size {spec} --corpus stdlib` (or another corpus)")
        return found[0]
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    if isinstance(spec, str) and os.sep not in spec and not spec.endswith(SUFFIX):
        rung(spec)  # raises UnknownSizeError for names that are not sizes
    raise CheckpointError(f"no checkpoint at {path}")


@restores_torch_state
def load_model(spec: str | Path | None = None, threads: int = 1, engine: str | None = None, limits: Any = None):
    """A ready, portable Predictor for a size name, a checkpoint path, or None (shipped default);
    `engine` names the portable engine (default: the newest). The quantised model comes from the
    cache when this checkpoint was quantised for this engine before (`portable.cache`). The
    checkpoint is checked as input first, cached or not (`check_checkpoint`; `limits`,
    default: the machine's, bound what loading it may allocate)."""
    from .portable import PortablePredictor, cache, engines

    path = resolve(spec)
    meta = read_meta(path)
    check_checkpoint(path, meta, limits)
    family = meta["family"]
    pred = None
    if family in ("lstm", "transformer"):
        known, default = engines(family)
        engine = engine if engine in known else default
        digest = cache.file_sha256(path)
        hit = cache.load(digest, engine)
        if hit is not None:
            pred = PortablePredictor.from_cache(*hit, name=f"{meta.get('size', family)}@{path.stem}", threads=threads)
            pred.load_float = lambda: load_checkpoint(path, limits)[0]
    if pred is None:
        model, meta = load_checkpoint(path, limits)
        pred = PortablePredictor(model, name=f"{meta.get('size', meta['family'])}@{path.stem}", threads=threads,
                                 engine=engine)
        if family in ("lstm", "transformer"):
            cache.store(digest, pred.engine_name, pred.engine.arrays(), pred.cache_info(family))
    pred.meta = meta
    pred.path = path
    return pred
