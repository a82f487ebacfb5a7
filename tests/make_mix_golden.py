"""Write the golden files of `mix` format 3 (mixer engine 3), once, from the repository root:

    PYTHONPATH=. python tests/make_mix_golden.py [FILE ...]   # default: every file below

Their originals are those of the format-2 mix goldens (decoded from them: 8,000 bytes of text,
6,256 bytes of mixed data), so both formats are pinned on the same bytes. Files already listed
in v3-mix-manifest.json are kept as they are (never regenerate one to make a test pass); a
missing one is added. The files:

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
MANIFEST = GOLDEN / "v3-mix-manifest.json"
T1 = "tests/data/golden/t1-golden.safetensors"
sys.path.insert(0, str(ROOT))

#: (file, level, model as the manifest records it ("shipped": the level's own), source golden)
FILES = [
    ("v3-text-mix-none.zl", 1, "none", "v2-text-mix-none.zl"),
    ("v3-text-mix-t1.zl", 1, T1, "v2-text-mix-none.zl"),
    ("v3-mixed-mix-l1.zl", 1, "shipped", "v2-mixed-mix-none.zl"),
    ("v3-mixed-mix-l2.zl", 2, "shipped", "v2-mixed-mix-none.zl"),
    ("v3-text-mix-l3.zl", 3, "shipped", "v2-text-mix-none.zl"),
]


def main() -> None:
    import ziplab
    from ziplab import container

    records = json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else []
    have = {r["file"] for r in records}
    wanted = set(sys.argv[1:]) or {f[0] for f in FILES}
    for name, level, model, source in FILES:
        if name in have or name not in wanted:
            continue
        data = ziplab.decompress((GOLDEN / source).read_bytes())
        options = {} if model == "shipped" else {"model": model if model == "none" else str(ROOT / model)}
        blob = ziplab.compress(data, "mix", level, lanes=4, **options)
        assert ziplab.decompress(blob, **options) == data
        params = container.read_header(__import__("io").BytesIO(blob)).params
        (GOLDEN / name).write_bytes(blob)
        records.append({"file": name, "codec": "mix", "model": model, "level": level, "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "models": [params[k] for k in ("model", "model_2") if k in params],
                        "written_by": f"ziplab {ziplab.__version__} (format 3, mixer engine 3)"})
        print("wrote", name, len(blob), "bytes")
    MANIFEST.write_text(json.dumps(records, indent=1) + "\n")


if __name__ == "__main__":
    main()
