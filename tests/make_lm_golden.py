"""Write the `lm` codec's golden files (run once, from the repository root, when the lm format
is new; never rerun to make a test pass: a format change adds new files).

    PYTHONPATH=. python tests/make_lm_golden.py            # the files of ziplab 0.3 (do not rerun)
    PYTHONPATH=. python tests/make_lm_golden.py --llama    # adds the portable Llama file, if missing

- tests/data/golden/lm-tiny/: a random Llama (~10K parameters) with a byte-level BPE, saved with
  save_pretrained (committed: random initialisation differs between torch versions);
- tests/data/golden/t1-hf/: t1-golden.safetensors exported with `ziplab export` (committed);
- v2-text-lm-t1.zl (lm on the portable engine, a lab checkpoint) in v2-lm-manifest.json, which the
  shared golden test decodes on any CPU;
- v2-text-lm-t1hf.zl (portable, through the export) and v2-text-lm-tiny-float.zl (float engine) in
  lm-hf-golden.json, decoded by tests/test_lm_codec.py (the float one only where its recorded
  environment is this machine's; elsewhere it must refuse in one line).
- `--llama`: v2-text-lm-tiny-llama.zl, lm-tiny on the portable Llama engine (`llama-int8x8-v1`),
  appended to lm-hf-golden.json (decoded on any CPU); the files above are left as they are.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"
sys.path.insert(0, str(ROOT))


def golden_text() -> bytes:
    """Text, every byte value, and UTF-8 beyond ASCII (3,000-odd bytes)."""
    text = b"It was the best of times, it was the worst of times, it was the age of wisdom. "
    return text * 30 + bytes(range(256)) + "naïve café, 東京, ünïcödé — done.\n".encode() * 4


def main() -> None:
    import ziplab
    from ziplab.lm.export import export_checkpoint
    from tests.hf_models import llama_dir

    data = golden_text()
    tiny, t1hf = GOLDEN / "lm-tiny", GOLDEN / "t1-hf"
    if not tiny.is_dir():  # committed models are kept: the files below must decode with them
        llama_dir(tiny)
        (tiny / "generation_config.json").unlink(missing_ok=True)
    if not t1hf.is_dir():
        export_checkpoint(str(GOLDEN / "t1-golden.safetensors"), t1hf)
    sha = hashlib.sha256(data).hexdigest()
    version = f"ziplab {ziplab.__version__} (format 2)"
    shared = [("v2-text-lm-t1.zl", "tests/data/golden/t1-golden.safetensors", 8)]
    own = [("v2-text-lm-t1hf.zl", "hf:tests/data/golden/t1-hf", 8), ("v2-text-lm-tiny-float.zl", "hf:tests/data/golden/lm-tiny", 4)]
    manifests = {"v2-lm-manifest.json": shared, "lm-hf-golden.json": own}
    for manifest, entries in manifests.items():
        records = []
        for name, model, lanes in entries:
            spec = model if model.startswith("hf:") else str(ROOT / model)
            if model.startswith("hf:"):
                spec = "hf:" + str(ROOT / model[3:])
            blob = ziplab.compress(data, "lm", model=spec, lanes=lanes)
            assert ziplab.decompress(blob) == data
            (GOLDEN / name).write_bytes(blob)
            header = ziplab.read_header(__import__("io").BytesIO(blob))
            records.append({"file": name, "codec": "lm", "model": model, "size": len(data), "sha256": sha,
                            "written_by": version, "engine": header.params["engine"],
                            **({"environment": header.params["environment"]} if "environment" in header.params else {})})
        (GOLDEN / manifest).write_text(json.dumps(records, indent=1) + "\n")
        print("wrote", manifest, [r["file"] for r in records])


def add_llama() -> None:
    import io

    import ziplab

    name, model, lanes = "v2-text-lm-tiny-llama.zl", "hf:tests/data/golden/lm-tiny", 4
    manifest = GOLDEN / "lm-hf-golden.json"
    records = json.loads(manifest.read_text())
    if (GOLDEN / name).exists() or any(r["file"] == name for r in records):
        print(name, "exists: kept")
        return
    data = golden_text()
    import os

    os.chdir(ROOT)  # the header names the model relative to the repository root
    blob = ziplab.compress(data, "lm", model=model, lanes=lanes)
    assert ziplab.decompress(blob) == data
    header = ziplab.read_header(io.BytesIO(blob))
    assert header.params["engine"] == "llama-int8x8-v1" and "environment" not in header.params
    (GOLDEN / name).write_bytes(blob)
    records.append({"file": name, "codec": "lm", "model": model, "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "written_by": f"ziplab {ziplab.__version__} (format 2)", "engine": header.params["engine"]})
    manifest.write_text(json.dumps(records, indent=1) + "\n")
    print("wrote", name)


if __name__ == "__main__":
    add_llama() if "--llama" in sys.argv[1:] else main()
