"""What a model config may say, and what the model costs in memory — known before anything is built.

A config comes from a checkpoint a user passes, or from a file's header: both are input. Bounds
keep every size the portable engine derives from it (the attention window's weight budget, the
exact-product input limits, the KV cache) positive and finite, and keep what a config can make
ziplab allocate proportional to what the budget allows. The estimates are upper bounds of the
portable engine's arrays, with margin; `tests/test_budget.py` holds them against measured RSS.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import ZiplabError

VOCAB_IN, VOCAB_OUT = 257, 256
#: integer fields of each family's config and their inclusive bounds. context <= 8192 keeps the
#: transformer's attention weight budget (about 8196 - context / 2) positive with room to spare
INT_BOUNDS: dict[str, dict[str, tuple[int, int]]] = {
    "transformer": {"n_layer": (1, 64), "n_embd": (2, 4096), "n_head": (1, 64), "n_kv_head": (1, 64),
                    "context": (1, 8192), "mlp_ratio": (1, 16)},
    "lstm": {"n_layer": (1, 16), "n_hidden": (1, 8192), "n_embd": (1, 8192), "context": (1, 1 << 16)},
}
FLOAT_BOUNDS: dict[str, dict[str, tuple[float, float]]] = {
    "transformer": {"rope_base": (2.0, 1e9)},
    "lstm": {"emb_std": (0.0, 1e3)},
}
BOOL_FIELDS = {"transformer": (), "lstm": ("tie",)}
#: bytes per parameter of a loaded portable predictor: fp32 module, float64 copies while
#: quantising, the engine's fp32 product operands and int8 weights, with margin
BYTES_PER_PARAM = 32


class ModelConfigError(ZiplabError):
    """A model config outside what ziplab can build and code with exactly."""


def check_config(family: str, config: dict) -> None:
    """Raise ModelConfigError unless `config` is a buildable config of `family` within bounds."""
    if family not in INT_BOUNDS:
        raise ModelConfigError(f"unknown model family {family!r}")
    if not isinstance(config, dict):
        raise ModelConfigError("a model config must be a JSON object")
    known = {*INT_BOUNDS[family], *FLOAT_BOUNDS[family], *BOOL_FIELDS[family], "family", "step_dtype"}
    extra = sorted(set(config) - known)
    if extra:
        raise ModelConfigError(f"{family} config has unknown field {extra[0]!r}")
    for key, (lo, hi) in INT_BOUNDS[family].items():
        value = config.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise ModelConfigError(f"{family} config field {key} = {value!r} is outside [{lo}, {hi}]")
    for key, (lo, hi) in FLOAT_BOUNDS[family].items():
        value = config.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not lo <= value <= hi:
            raise ModelConfigError(f"{family} config field {key} = {value!r} is outside [{lo:g}, {hi:g}]")
    for key in BOOL_FIELDS[family]:
        if key in config and not isinstance(config[key], bool):
            raise ModelConfigError(f"{family} config field {key} must be true or false")
    if family == "transformer":
        _check_heads(config)


def _check_heads(config: dict) -> None:
    d, h, kv = (int(config.get(k, v)) for k, v in (("n_embd", 96), ("n_head", 3), ("n_kv_head", 1)))
    if d % h or (d // h) % 2 or h % kv:
        raise ModelConfigError("transformer config: n_embd must split into n_head heads of even size, "
                               "n_head into n_kv_head groups")


def _get(config: dict, key: str, default: Any) -> Any:
    value = config.get(key)
    return default if value is None else value


def param_count(family: str, config: dict) -> int:
    """Parameters of a (checked) config, from the architecture's shapes."""
    if family == "transformer":
        d, n = int(_get(config, "n_embd", 96)), int(_get(config, "n_layer", 4))
        h, kv = int(_get(config, "n_head", 3)), int(_get(config, "n_kv_head", 1))
        hd, mlp = d // h, int(_get(config, "mlp_ratio", 4)) * d
        per_layer = 2 * d + d * (h + 2 * kv) * hd + d * d + 2 * d * mlp
        return VOCAB_IN * d + n * per_layer + d
    hid, emb, n = int(_get(config, "n_hidden", 192)), int(_get(config, "n_embd", 192)), int(_get(config, "n_layer", 2))
    layers = 4 * hid * (emb + hid) + 8 * hid + (n - 1) * (8 * hid * hid + 8 * hid)
    head = 0 if _get(config, "tie", True) else VOCAB_OUT * hid
    return VOCAB_IN * emb + layers + head + VOCAB_OUT


def lane_state_bytes(family: str, config: dict) -> int:
    """Bytes of one lane's coding state in the portable engine (caches, scratch, output rows)."""
    out = VOCAB_OUT * 24 + VOCAB_IN * 8  # logits, probabilities, accumulators; mix's cumulative sums
    if family == "transformer":
        d, n = int(_get(config, "n_embd", 96)), int(_get(config, "n_layer", 4))
        h, kv, T = int(_get(config, "n_head", 3)), int(_get(config, "n_kv_head", 1)), int(_get(config, "context", 128))
        hd, mlp = d // h, int(_get(config, "mlp_ratio", 4)) * d
        cache = n * kv * T * (4 * hd + 16)  # integer keys and values (int16) and their steps (float64)
        attention = 40 * h * T  # softmax scratch: at most a cell per lane, head and slot (`attention`), 36 bytes each
        scratch = 8 * (8 * d + 3 * mlp) + 8 * h * hd
        return cache + attention + scratch + out
    hid, n = int(_get(config, "n_hidden", 192)), int(_get(config, "n_layer", 2))
    return n * 80 * hid + out


def model_bytes(family: str, config: dict) -> int:
    """Bytes of one loaded portable predictor, before any lane (LSTM: plus layer 0's input table)."""
    table = VOCAB_IN * 4 * int(_get(config, "n_hidden", 0)) * 8 if family == "lstm" else 0
    return param_count(family, config) * BYTES_PER_PARAM + table


def predictor_bytes(family: str, config: dict, lanes: int) -> int:
    """One predictor coding `lanes` lanes: the model and every lane's state."""
    return model_bytes(family, config) + int(lanes) * lane_state_bytes(family, config)
