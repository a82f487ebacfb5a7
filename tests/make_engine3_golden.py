"""Write the golden files of the LSTM's engine v3 (`lstm-int8x8-v3`: float32 arithmetic without
tables), once, from the repository root:

    PYTHONPATH=. python tests/make_engine3_golden.py [FILE ...]   # default: every file below

Their originals are those of the format-2 goldens (8,000 bytes of text, 6,256 bytes of mixed
data), so engines v1, v2 and v3 are pinned on the same bytes. Files already listed in
e3-manifest.json are kept as they are (never regenerate one to make a test pass); a
missing one is added. The files:

- e3-text-nn-shipped.zl, e3-mixed-nn-shipped.zl: `nn` with the shipped l4-gutenberg
- e3-mixed-mix-l2.zl: `mix` level 2 as shipped (l5-gutenberg-large on engine v3)
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"
MANIFEST = GOLDEN / "e3-manifest.json"
ENGINE = "lstm-int8x8-v3"
sys.path.insert(0, str(ROOT))

#: (file, codec, level, source golden)
FILES = [
    ("e3-text-nn-shipped.zl", "nn", None, "v2-text-nn-shipped.zl"),
    ("e3-mixed-nn-shipped.zl", "nn", None, "v2-mixed-nn-shipped.zl"),
    ("e3-mixed-mix-l2.zl", "mix", 2, "v2-mixed-mix-none.zl"),
]


def main() -> None:
    import ziplab
    from ziplab import container

    records = json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else []
    have = {r["file"] for r in records}
    wanted = set(sys.argv[1:]) or {f[0] for f in FILES}
    for name, codec, level, source in FILES:
        if name in have or name not in wanted:
            continue
        data = ziplab.decompress((GOLDEN / source).read_bytes())
        blob = ziplab.compress(data, codec, level, lanes=8 if codec == "nn" else 4)
        assert ziplab.decompress(blob) == data
        params = container.read_header(io.BytesIO(blob)).params
        engines = [params[k] for k in ("engine", "engine_2") if k in params]
        assert engines == [ENGINE], f"{name} was coded with {engines}, not {ENGINE}"
        (GOLDEN / name).write_bytes(blob)
        entry = {"file": name, "codec": codec, "model": "shipped", "size": len(data),
                 "sha256": hashlib.sha256(data).hexdigest(), "engine": ENGINE,
                 "written_by": f"ziplab {ziplab.__version__} (format {container.read_header(io.BytesIO(blob)).version}, engine {ENGINE})"}
        if level is not None:
            entry["level"] = level
        records.append(entry)
        print("wrote", name, len(blob), "bytes")
    MANIFEST.write_text(json.dumps(records, indent=1) + "\n")


if __name__ == "__main__":
    main()
