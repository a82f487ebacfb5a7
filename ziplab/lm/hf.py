"""Hugging Face causal language models from a local directory, checked before they are trusted.

`load_hf(DIR)` reads `config.json`, safetensors weights and a byte-level BPE tokenizer — never
pickles, never remote code, never the network — and returns an `HFModel`: the torch module, its
exact tokenizer (`tokens.BpeTokens`), and the sha256 of the model's and the tokenizer's files.

A hostile or broken directory gets one line (`HFLoadError`) before any large allocation: the
config is parsed with a size limit, the model is first built on torch's meta device and every
parameter's shape checked against the safetensors headers, so a config that claims a billion
hidden units cannot make ziplab allocate them; missing or unexpected tensors, non-float dtypes
and non-finite weights are refused too.

`transformers` and `tokenizers` are an optional extra (`pip install ziplab[hf]`); this module
imports them only inside its functions, and says so in one line when they are missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import ZiplabError
from .tokens import BpeTokens, ByteTokens, Tokens, TokenizerError

PREFIX = "hf:"
CONFIG_MAX_BYTES = 1 << 20
#: real tokenizers are 2-35 MB (Gemma's is the largest common one)
TOKENIZER_MAX_BYTES = 128 << 20
#: config.json keys that record who wrote the file, not what the model computes (left out of its sha256)
CONFIG_NOISE = ("transformers_version", "_name_or_path")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt")
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
EXTRA = "pip install 'ziplab[hf]' (transformers and tokenizers)"


class HFLoadError(ZiplabError):
    """A model directory that cannot be loaded safely (missing, malformed, hostile, unsupported)."""


def require_hf() -> Any:
    """transformers, or a one-line error naming the extra that provides it."""
    try:
        import tokenizers  # noqa: F401
        import transformers
    except ImportError:
        raise HFLoadError(f"hf: models need the 'hf' extra: {EXTRA}") from None
    return transformers


def is_hf_spec(spec: object) -> bool:
    return isinstance(spec, str) and spec.startswith(PREFIX)


def hf_dir(spec: str) -> Path:
    """The directory an `hf:DIR` spec names (which must exist)."""
    path = Path(spec[len(PREFIX):] if is_hf_spec(spec) else spec).expanduser()
    if not path.is_dir():
        raise HFLoadError(f"{path}: no such model directory")
    return path


def _sha256_files(root: Path, names: list[str]) -> str:
    """sha256 over (name, length, content) of each file, in the given order."""
    h = hashlib.sha256()
    for name in names:
        path = root / name
        h.update(f"{name}|{path.stat().st_size}|".encode())
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
    return h.hexdigest()


def model_sha256(root: Path, config: dict, weights: list[str]) -> str:
    """sha256 of what decides the model's outputs: config.json as canonical JSON (sorted keys,
    without CONFIG_NOISE, so re-saving with another transformers version keeps it), then each
    weight file (name, length, content), in sorted order."""
    canon = json.dumps({k: v for k, v in config.items() if k not in CONFIG_NOISE}, sort_keys=True,
                       separators=(",", ":"), ensure_ascii=True).encode()
    h = hashlib.sha256(b"config.json|" + canon + b"|")
    h.update(bytes.fromhex(_sha256_files(root, weights)))
    return h.hexdigest()


def _weight_files(root: Path) -> list[str]:
    index = root / "model.safetensors.index.json"
    if index.is_file():
        try:
            spec = json.loads(index.read_text(encoding="utf-8")[:CONFIG_MAX_BYTES])
            names = sorted(set(spec["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise HFLoadError(f"{index}: not a safetensors index") from None
        for name in names:
            if not isinstance(name, str) or "/" in name or "\\" in name or not name.endswith(".safetensors"):
                raise HFLoadError(f"{index}: names a file outside the directory or not safetensors: {name!r}")
            if not (root / name).is_file():
                raise HFLoadError(f"{root}: weight shard {name} is missing")
        return names
    if (root / "model.safetensors").is_file():
        return ["model.safetensors"]
    pickles = [p.name for p in root.glob("*.bin")] + [p.name for p in root.glob("*.pt")]
    if pickles:
        raise HFLoadError(f"{root}: weights only as {pickles[0]} (a pickle, which can run code): ziplab loads "
                          "safetensors only (convert with save_pretrained(..., safe_serialization=True))")
    raise HFLoadError(f"{root}: no model.safetensors")


def _read_config(root: Path) -> dict:
    path = root / "config.json"
    if not path.is_file():
        raise HFLoadError(f"{root}: no config.json")
    if path.stat().st_size > CONFIG_MAX_BYTES:
        raise HFLoadError(f"{path}: larger than {CONFIG_MAX_BYTES} bytes")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise HFLoadError(f"{path}: not JSON ({exc})") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise HFLoadError(f"{path}: not a model config (no model_type)")
    if config.get("auto_map"):
        raise HFLoadError(f"{path}: the model needs its own code (auto_map), which ziplab never runs")
    return config


def _tensor_shapes(root: Path, names: list[str]) -> dict[str, tuple[tuple[int, ...], str]]:
    """name -> (shape, dtype) from the safetensors headers, without reading any weights."""
    from safetensors import safe_open

    shapes: dict[str, tuple[tuple[int, ...], str]] = {}
    for name in names:
        try:
            with safe_open(str(root / name), framework="np") as f:
                for key in f.keys():
                    sl = f.get_slice(key)
                    shapes[key] = (tuple(int(d) for d in sl.get_shape()), str(sl.get_dtype()))
        except Exception as exc:  # safetensors raises its own types for malformed headers
            raise HFLoadError(f"{root / name}: not a readable safetensors file: {str(exc).splitlines()[0][:200]}") from None
    bad = [k for k, (_, dt) in shapes.items() if dt not in FLOAT_DTYPES]
    if bad:
        raise HFLoadError(f"{root}: tensor {bad[0]} has dtype {shapes[bad[0]][1]}; ziplab loads float weights only")
    return shapes


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers' warnings (generation defaults, config notes) are not ziplab's output."""
    import transformers

    level = transformers.logging.get_verbosity()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(level)
        if bars:
            transformers.utils.logging.enable_progress_bar()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _check_shapes(transformers: Any, root: Path, config: Any, shapes: dict) -> None:
    """Build the model on the meta device (no memory) and compare every tensor it will load."""
    import torch

    try:
        with torch.device("meta"):
            skeleton = transformers.AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    except Exception as exc:
        raise HFLoadError(f"{root}: config.json does not describe a causal LM transformers can build: "
                          f"{_first_line(exc)}") from None
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    tied = set(getattr(skeleton, "_tied_weights_keys", None) or [])
    if isinstance(getattr(skeleton, "_tied_weights_keys", None), dict):
        tied = set(skeleton._tied_weights_keys)
    missing = [k for k in expected if k not in shapes and k not in tied]
    if missing:
        raise HFLoadError(f"{root}: the weights lack tensor {missing[0]} that the config needs")
    wrong = [k for k in expected if k in shapes and shapes[k][0] != expected[k]]
    if wrong:
        k = wrong[0]
        raise HFLoadError(f"{root}: tensor {k} has shape {shapes[k][0]}, the config says {expected[k]}")
    unexpected = [k for k in shapes if k not in expected]
    if unexpected:
        raise HFLoadError(f"{root}: the weights hold tensor {unexpected[0]} the config has no place for")
    from ..limits import default_limits

    weights = sum(4 * math.prod(shape) for shape in expected.values())  # float32 once loaded
    default_limits().check(2 * weights, f"the model in {root}")  # the weights and a transient copy


def _start_token(tokenizer: Any, config: Any) -> int:
    """BOS if the tokenizer or config has one, else EOS (GPT-2's habit), else id 0."""
    for value in (getattr(tokenizer, "bos_token_id", None), getattr(config, "bos_token_id", None),
                  getattr(tokenizer, "eos_token_id", None), getattr(config, "eos_token_id", None)):
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, int) and value >= 0:
            return value
    return 0


@dataclass
class HFModel:
    """A loaded, checked directory: module (eval, fp32, CPU), tokens, identity."""

    path: Path
    module: Any
    tokens: Tokens
    model_sha256: str
    tokenizer_sha256: str
    model_type: str
    context: int  # positions the model was built for (max_position_embeddings or n_positions)
    meta: dict  # a ziplab export's own record (config.json "ziplab"), else {}

    @property
    def name(self) -> str:
        return f"hf:{self.path}"

    def num_params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def embedding_params(self) -> int:
        """Input and (untied) output embeddings and any other lookup table (positions), Kaplan-style."""
        import torch.nn as nn

        seen: set[int] = set()
        total = 0
        tables = [m.weight for m in self.module.modules() if isinstance(m, nn.Embedding)]
        out = self.module.get_output_embeddings()
        if out is not None:
            tables.append(out.weight)
        for w in tables:
            if id(w) not in seen:
                seen.add(id(w))
                total += w.numel()
        return total

    def non_embedding_params(self) -> int:
        """An exported lab model counts as its checkpoint did (the export adds zero LayerNorm biases)."""
        lab = (self.meta.get("checkpoint_meta") or {}).get("non_embedding_params")
        if isinstance(lab, int) and lab > 0:
            return lab
        return self.num_params() - self.embedding_params()


def _context(config: Any) -> int:
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return 2048


def _load_tokens(transformers: Any, root: Path, config: Any, vocab: int) -> Tokens:
    """A byte-vocabulary export (config "ziplab" says so) codes bytes as ids; otherwise the
    directory's tokenizer, which must be a fast byte-level BPE."""
    meta = getattr(config, "ziplab", None)
    if isinstance(meta, dict) and meta.get("byte_vocab"):
        return ByteTokens()
    present = [n for n in TOKENIZER_FILES if (root / n).is_file()]
    big = [n for n in present if (root / n).stat().st_size > TOKENIZER_MAX_BYTES]
    if big:
        raise HFLoadError(f"{root}: {big[0]} is larger than {TOKENIZER_MAX_BYTES >> 20} MiB")
    if "tokenizer.json" not in present:
        raise HFLoadError(f"{root}: no tokenizer.json (ziplab needs a fast byte-level BPE tokenizer)")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(root), local_files_only=True, trust_remote_code=False)
    except Exception as exc:
        raise HFLoadError(f"{root}: cannot load the tokenizer: {_first_line(exc)}") from None
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise HFLoadError(f"{root}: the tokenizer is not a fast (tokenizers) tokenizer")
    try:
        tokens = BpeTokens(backend, _start_token(tokenizer, config), _sha256_files(root, present), vocab)
    except TokenizerError as exc:
        raise HFLoadError(f"{root}: {exc}") from None
    if tokens.vocab > vocab:
        raise HFLoadError(f"{root}: the tokenizer has {tokens.vocab} ids but the model predicts only {vocab}")
    return tokens


def directory_sha256(spec: str | Path) -> str:
    """A directory's `model_sha256` from its files alone, without building the model (so a sweep
    can tell a model it has measured before loading it)."""
    root = hf_dir(str(spec))
    return model_sha256(root, _read_config(root), _weight_files(root))


def load_hf(spec: str | Path) -> HFModel:
    """Load and check an `hf:DIR` (or a plain directory path)."""
    transformers = require_hf()
    import torch

    root = hf_dir(str(spec))
    raw = _read_config(root)
    weights = _weight_files(root)
    shapes = _tensor_shapes(root, weights)
    with _quiet_transformers():
        try:
            config = transformers.AutoConfig.from_pretrained(str(root), local_files_only=True, trust_remote_code=False)
        except Exception as exc:
            raise HFLoadError(f"{root}: config.json is not a config transformers knows: {_first_line(exc)}") from None
        _check_shapes(transformers, root, config, shapes)
        try:
            module, info = transformers.AutoModelForCausalLM.from_pretrained(
                str(root), config=config, local_files_only=True, trust_remote_code=False, use_safetensors=True,
                dtype=torch.float32, output_loading_info=True)
        except Exception as exc:
            raise HFLoadError(f"{root}: cannot load the model: {_first_line(exc)}") from None
    problems = [k for key in ("missing_keys", "unexpected_keys", "mismatched_keys") for k in (info.get(key) or [])]
    if problems:
        raise HFLoadError(f"{root}: the weights do not match the config ({problems[0]})")
    module = module.eval()
    for name, p in module.named_parameters():
        if not torch.isfinite(p).all():
            raise HFLoadError(f"{root}: tensor {name} holds NaN or infinite values")
    vocab = int(module.get_output_embeddings().weight.shape[0]) if module.get_output_embeddings() is not None \
        else int(config.vocab_size)
    with _quiet_transformers():
        tokens = _load_tokens(transformers, root, config, vocab)
    meta = raw.get("ziplab") if isinstance(raw.get("ziplab"), dict) else {}
    return HFModel(path=root, module=module, tokens=tokens,
                   model_sha256=model_sha256(root, raw, weights),
                   tokenizer_sha256=tokens.sha256, model_type=raw["model_type"], context=_context(config), meta=meta)
