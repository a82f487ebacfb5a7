"""A corpus of crafted inputs, one builder per class an attacker would try (issue #26): headers
whose claims ask for gigabytes or hours, and checkpoints that lie about their shapes, hold
NaNs, or configure an attention window whose cache would not fit any machine.

Everything is built from the committed golden model and small texts, so the corpus needs no
network and no large files; tests/test_memory_budget.py runs each class through the API and
the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Callable

import numpy as np

import ziplab
from ziplab import container
from ziplab.container import Header

ROOT = Path(__file__).resolve().parents[1]
T1 = ROOT / "tests" / "data" / "golden" / "t1-golden.safetensors"
TEXT = (b"It was the best of times, it was the worst of times, it was the age of wisdom, "
        b"it was the age of foolishness, it was the epoch of belief. ") * 120
BLOCK = container.BLOCK  # the tests craft block framing byte for byte
CLAIM = 256 << 20  # the container's largest block


def reclaim(blob: bytes, claimed: int, params: dict | None = None) -> bytes:
    """A one-block member whose header and block claim `claimed` bytes from the payload that
    honestly codes far fewer: the decoder must notice long before `claimed` bytes."""
    header = container.read_header(io.BytesIO(blob))
    raw, pay, _, crc = BLOCK.unpack(blob[header.header_size:header.header_size + BLOCK.size])
    payload = blob[header.header_size + BLOCK.size:header.header_size + BLOCK.size + pay]
    forged = Header(header.codec, params or header.params, claimed, claimed, header.crc32, version=header.version)
    return forged.encode() + BLOCK.pack(claimed, len(payload), 0, crc) + payload


def claims() -> dict[str, Callable[[], bytes]]:
    """Builders of small files whose headers claim one 256 MiB block (lanes and processes at
    their worst)."""
    return {
        "mix-none-lanes1": lambda: reclaim(ziplab.compress(TEXT, "mix", 3, model="none", lanes=1), CLAIM),
        "mix-t1-lanes1": lambda: reclaim(ziplab.compress(TEXT, "mix", 3, model=str(T1), lanes=1), CLAIM),
        "nn-t1-lanes4096": lambda: reclaim(ziplab.compress(TEXT, "nn", model=str(T1), lanes=4096), CLAIM),
        "ctx6-64-substreams": lambda: reclaim(ziplab.compress(TEXT, "ctx", 6, lanes=4096, workers=64), CLAIM),
    }


def header_with(blob: bytes, **changes) -> bytes:
    """The member with some header params changed (the payload kept)."""
    header = container.read_header(io.BytesIO(blob))
    params = {**header.params, **changes}
    forged = Header(header.codec, params, header.block_size, header.original_size, header.crc32,
                    version=header.version)
    return forged.encode() + blob[header.header_size:]


def hostile_configs() -> dict[str, dict]:
    """Model configs a header or checkpoint might carry, each outside what the engine codes with."""
    base = json.loads(T1.with_suffix(".json").read_text())["config"]
    return {
        "context 2^30": {**base, "context": 1 << 30},
        "context 16390 (attention budget <= 0)": {**base, "context": 16390},
        "n_embd 2^20": {**base, "n_embd": 1 << 20, "n_head": 2},
        "n_layer 10^6": {**base, "n_layer": 10**6},
        "heads do not divide": {**base, "n_head": 5},
        "bool for int": {**base, "n_layer": True},
        "float for int": {**base, "n_layer": 1.5},
        "NaN rope base": {**base, "rope_base": float("nan")},
        "negative context": {**base, "context": -1},
        "unknown field": {**base, "evil": 1},
    }


def _weights() -> tuple[dict[str, np.ndarray], dict]:
    from safetensors.numpy import load_file

    meta = json.loads(T1.with_suffix(".json").read_text())
    return load_file(str(T1)), meta


def write_checkpoint(path: Path, arrays: dict[str, np.ndarray], meta: dict | str) -> Path:
    from safetensors.numpy import save_file

    raw = meta if isinstance(meta, str) else json.dumps(meta, sort_keys=True)
    save_file(arrays, str(path), metadata={"ziplab": raw})
    return path


def _poisoned(value: float) -> Callable[[Path], Path]:
    def build(path: Path) -> Path:
        arrays, meta = _weights()
        name = sorted(arrays)[0]
        w = arrays[name].astype(np.float32)  # fp32, so 1e30 stays finite
        w.reshape(-1)[0] = value
        return write_checkpoint(path, {**arrays, name: w}, meta)
    return build


def _with_config(config: dict) -> Callable[[Path], Path]:
    def build(path: Path) -> Path:
        arrays, meta = _weights()
        return write_checkpoint(path, arrays, {**meta, "config": config})
    return build


def _wrong_shape(path: Path) -> Path:
    arrays, meta = _weights()
    name = sorted(arrays)[0]
    return write_checkpoint(path, {**arrays, name: arrays[name][:-1]}, meta)


def _extra_tensor(path: Path) -> Path:
    arrays, meta = _weights()
    return write_checkpoint(path, {**arrays, "padding": np.zeros(1 << 20, dtype=np.float32)}, meta)


def _bad_meta(path: Path) -> Path:
    arrays, _ = _weights()
    return write_checkpoint(path, arrays, "[1, 2, 3]")


def _not_json(path: Path) -> Path:
    arrays, _ = _weights()
    return write_checkpoint(path, arrays, "{not json")


def _integer_weights(path: Path) -> Path:
    arrays, meta = _weights()
    name = sorted(arrays)[0]
    return write_checkpoint(path, {**arrays, name: arrays[name].astype(np.int32)}, meta)


def _garbage(path: Path) -> Path:
    path.write_bytes(b"\xff" * 64)
    return path


def hostile_checkpoints() -> dict[str, Callable[[Path], Path]]:
    """Builders of checkpoints a user might be handed, each one wrong in its own way."""
    cases: dict[str, Callable[[Path], Path]] = {
        "NaN weight": _poisoned(float("nan")),
        "inf weight": _poisoned(float("inf")),
        "huge weight": _poisoned(1e30),
        "shape differs from config": _wrong_shape,
        "an extra megabyte tensor": _extra_tensor,
        "metadata not an object": _bad_meta,
        "metadata not JSON": _not_json,
        "integer weights": _integer_weights,
        "not a safetensors file": _garbage,
    }
    cases.update({f"config: {name}": _with_config(cfg) for name, cfg in hostile_configs().items()})
    return cases
