"""Write the golden files of `mix` format 4 (blocks in substreams), once, from the repository root:

    PYTHONPATH=. python tests/make_mix_golden.py [FILE ...]   # default: every file below

Files already listed in m4-mix-manifest.json are kept as they are (never regenerate one to make
a test pass); a missing one is added. The files:

- m4-text-mix-l2.zl: level 2 as shipped (l5-gutenberg-large), default lanes, on the first
  140,000 bytes of ../shared/corpora/gutenberg/dev.txt: two substreams of 64 lanes
- m4-mixed-mix-l1.zl: level 1 as shipped (l4-gutenberg), 8 lanes, on the 6,256 bytes of mixed
  data of the format-2 goldens: a small block, one substream
- m4-text-mix-l2-l4-large.zl: level 2 as shipped since 0.9.1 (l4-gutenberg-large), default
  lanes, on the same 140,000 bytes as m4-text-mix-l2.zl

The format-3 files below (v3-mix-manifest.json) were written by this script in ziplab 0.5;
ziplab writes format 3 now only with an older `--engine` (tests/test_engine_option.py). Their
originals are those of the format-2 mix goldens (8,000 bytes of text, 6,256 bytes of mixed data):

- v3-text-mix-none.zl: level 1, pure context mixing (engine 3's contexts, no model)
- v3-text-mix-t1.zl: level 1 with the t1 transformer (one model, neural SSE)
- v3-mixed-mix-l1.zl: level 1 as shipped (l4-gutenberg)
- v3-mixed-mix-l2.zl: level 2 as shipped (l5-gutenberg-large)
- v3-text-mix-l3.zl: level 3 as first shipped in 0.5 development (l5-gutenberg-large and
  l4-gutenberg: two models; level 3 now mixes l5 alone, and this file pins the two-model path)
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"
MANIFEST = GOLDEN / "m4-mix-manifest.json"
DEV = ROOT.parent / "shared" / "corpora" / "gutenberg" / "dev.txt"
T1 = "tests/data/golden/t1-golden.safetensors"
sys.path.insert(0, str(ROOT))

#: (file, level, model as the manifest records it ("shipped": the level's own), lanes (None: the
#: default), source: a golden whose original it codes, or DEV's first 140,000 bytes)
FILES = [
    ("m4-text-mix-l2.zl", 2, "shipped", None, "dev.txt"),
    ("m4-mixed-mix-l1.zl", 1, "shipped", 8, "v2-mixed-mix-none.zl"),
    ("m4-text-mix-l2-l4-large.zl", 2, "shipped", None, "dev.txt"),
]


def main() -> None:
    import ziplab
    from ziplab import container

    records = json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else []
    have = {r["file"] for r in records}
    wanted = set(sys.argv[1:]) or {f[0] for f in FILES}
    for name, level, model, lanes, source in FILES:
        if name in have or name not in wanted:
            continue
        data = DEV.read_bytes()[:140_000] if source == "dev.txt" else ziplab.decompress((GOLDEN / source).read_bytes())
        options = {} if model == "shipped" else {"model": model if model == "none" else str(ROOT / model)}
        blob = ziplab.compress(data, "mix", level, lanes=lanes, **options)
        assert ziplab.decompress(blob, **options) == data
        params = container.read_header(__import__("io").BytesIO(blob)).params
        (GOLDEN / name).write_bytes(blob)
        records.append({"file": name, "codec": "mix", "model": model, "level": level, "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "models": [params[k] for k in ("model", "model_2") if k in params],
                        "substreams": params["substreams"],
                        "written_by": f"ziplab {ziplab.__version__} (format 4, mixer engine 3)"})
        print("wrote", name, len(blob), "bytes")
    MANIFEST.write_text(json.dumps(records, indent=1) + "\n")


if __name__ == "__main__":
    main()
