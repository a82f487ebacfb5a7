"""External models on the scaling plot: a family of checkpoints the lab did not train (say
Pythia or SmolLM sizes, as local Hugging Face directories) measured like the ladder.

Each model codes the same held-out slice for real with the `lm` codec, is decoded back and
compared, and becomes one row of results.json: x = its non-embedding parameters (counted from
the loaded model: input, output and position tables excluded), y = the coded file's bpb, with
the coder's cross-entropy beside it. Rows of one family label are fitted and drawn like a
ladder; `external: true` marks them, and `model_sha256` lets a rerun skip a model it has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

Progress = Callable[[str, Any], Callable[[int], None]]


def model_bytes(spec: str) -> int:
    """Bytes a decoder must hold besides the file: the weight files (hf:DIR) or the checkpoint."""
    from ..lm.hf import hf_dir, is_hf_spec

    if is_hf_spec(spec):
        root = hf_dir(spec)
        return sum(p.stat().st_size for p in root.glob("*.safetensors"))
    path = Path(str(spec))
    return path.stat().st_size if path.is_file() else 0


#: codes a slice for real and decodes it back: (model spec, data, lanes, progress) -> the coded
#: figures (cross_entropy_bpb, actual_bpb, compressed_bytes, encode/decode KB/s, verified_bytes)
Coder = Callable[[str, bytes, int, "Progress | None"], dict]


def measure_external(spec: str, data: bytes, lanes: int, coder: Coder, family: str | None = None,
                     progress: Progress | None = None) -> dict:
    """One external model's row (module docstring); `coder` is the sweep's own (`run.code_for_real`
    through `lm`), so the external rows are measured exactly like the ladder's."""
    from ..lm import load_lm

    model = load_lm(spec)
    coded = coder(spec, data, lanes, progress)
    weights = model_bytes(spec)
    return {
        "family": family or model.family, "size": spec, "external": True,
        "params": model.num_params(), "non_embedding_params": model.non_embedding_params(),
        "cross_entropy_bpb": coded["cross_entropy_bpb"], "actual_bpb": coded["actual_bpb"],
        "compressed_bytes": coded["compressed_bytes"], "model_bytes": weights,
        "adjusted_bpb": round(8 * (coded["compressed_bytes"] + weights) / len(data), 5),
        "encode_kbps": coded["encode_kbps"], "decode_kbps": coded["decode_kbps"],
        "verified_bytes": coded["verified_bytes"], "model_sha256": model.model_sha256,
        "tokenizer_sha256": model.tokenizer_sha256,
    }


def already_measured(results: dict, spec: str, family: str | None) -> bool:
    """Whether results hold this model's row (same files; the same family label, if one is given).
    A directory is identified by hashing its files, without loading the model."""
    from ..lm import is_hf_spec, load_lm
    from ..lm.hf import directory_sha256

    rows = [r for r in results.get("sizes", []) if r.get("external") and r.get("size") == spec]
    if not rows:
        return False
    sha = directory_sha256(spec) if is_hf_spec(spec) else load_lm(spec).model_sha256
    return any(r.get("model_sha256") == sha and (family is None or r.get("family") == family) for r in rows)
