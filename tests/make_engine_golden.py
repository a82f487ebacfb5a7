"""Write the golden files of the LSTM's float32 engines, once, from the repository root:

    PYTHONPATH=. python tests/make_engine_golden.py ENGINE [FILE ...]   # default: every file below

ENGINE is `lstm-int8x8-v3` (float32 arithmetic without tables; files e3-*, ziplab 0.6) or
`lstm-int8x7-v4` (v3 with 7-bit product rows; files e4-*, ziplab 0.7). Their originals are those
of the format-2 goldens (8,000 bytes of text, 6,256 bytes of mixed data), so every engine is
pinned on the same bytes. Files already listed in the engine's manifest are kept as they are
(never regenerate one to make a test pass); a missing one is added. The files, for prefix eN:

- eN-text-nn-shipped.zl, eN-mixed-nn-shipped.zl: `nn` with the shipped l4-gutenberg
- eN-mixed-mix-l2.zl: `mix` level 2 as shipped (l5-gutenberg-large on the engine)
- e4-text-nn-l4-large.zl: `nn` with the model shipped as its default since 0.9.1,
  l4-gutenberg-large (each file's header names its model; the manifest records it too)
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"
#: engine -> the prefix of its files and manifest
PREFIXES = {"lstm-int8x8-v3": "e3", "lstm-int8x7-v4": "e4"}
sys.path.insert(0, str(ROOT))

#: (file without its prefix, codec, level, source golden)
FILES = [
    ("text-nn-shipped.zl", "nn", None, "v2-text-nn-shipped.zl"),
    ("mixed-nn-shipped.zl", "nn", None, "v2-mixed-nn-shipped.zl"),
    ("mixed-mix-l2.zl", "mix", 2, "v2-mixed-mix-none.zl"),
    ("text-nn-l4-large.zl", "nn", None, "v2-text-nn-shipped.zl"),
]


def main() -> None:
    import ziplab
    from ziplab import container

    engine, wanted = sys.argv[1], set(sys.argv[2:])
    prefix = PREFIXES[engine]
    manifest = GOLDEN / f"{prefix}-manifest.json"
    records = json.loads(manifest.read_text()) if manifest.is_file() else []
    have = {r["file"] for r in records}
    for stem, codec, level, source in FILES:
        name = f"{prefix}-{stem}"
        if name in have or (wanted and name not in wanted):
            continue
        data = ziplab.decompress((GOLDEN / source).read_bytes())
        blob = ziplab.compress(data, codec, level, lanes=8 if codec == "nn" else 4, engine=engine)
        assert ziplab.decompress(blob) == data
        params = container.read_header(io.BytesIO(blob)).params
        engines = [params[k] for k in ("engine", "engine_2") if k in params]
        assert engines == [engine], f"{name} was coded with {engines}, not {engine}"
        (GOLDEN / name).write_bytes(blob)
        entry = {"file": name, "codec": codec, "model": "shipped", "size": len(data),
                 "sha256": hashlib.sha256(data).hexdigest(), "engine": engine,
                 "written_by": f"ziplab {ziplab.__version__} (format {container.read_header(io.BytesIO(blob)).version}, engine {engine})"}
        if level is not None:
            entry["level"] = level
        if "l4-large" in stem:  # files since 0.9.1 record the model the default meant
            entry["models"] = [params[k] for k in ("model", "model_2") if k in params]
        records.append(entry)
        print("wrote", name, len(blob), "bytes")
    manifest.write_text(json.dumps(records, indent=1) + "\n")


if __name__ == "__main__":
    main()
