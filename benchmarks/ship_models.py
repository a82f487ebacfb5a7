"""Write ziplab/models/shipped/index.json: every shipped model's file, its sha256, the command
that trained it, and what benchmarks/results/mix.json measured of it (each figure names the
section it came from), so `ziplab models` shows size, speed and bpb without hand-typed numbers.

    python benchmarks/ship_models.py [--section v3-full-dev.txt-500000]

Run after `benchmarks/mix.py` (the full plan); a test checks each file against its sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "ziplab" / "models" / "shipped"
MIX = Path(__file__).resolve().parent / "results" / "mix.json"


def figures(rows: dict, name: str, section: str) -> dict:
    """This model's rows in a mix.json section: `nn` alone, and each mix level that names it."""
    out: dict = {"source": f"benchmarks/results/mix.json [{section}]"}
    for label, r in rows.items():
        spec = r.get("spec", {})
        if spec.get("codec") == "nn" and spec.get("models") == [name]:
            out["nn"] = {"bpb": round(r["bpb"], 4), "enc_kbs": round(r["enc_kbs"], 1), "dec_kbs": round(r["dec_kbs"], 1)}
        if spec.get("codec") == "mix" and set(spec) <= {"codec", "level", "n"} and name in label:
            out[f"mix-{spec['level']}"] = {"bpb": round(r["bpb"], 4), "enc_kbs": round(r["enc_kbs"], 1),
                                           "dec_kbs": round(r["dec_kbs"], 1), "row": label}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--section", default="v3-full-dev.txt-500000")
    args = ap.parse_args()
    section = json.loads(MIX.read_text())[args.section]
    index = {"slice": section["slice"], "models": {}}
    for path in sorted(SHIPPED.glob("*.safetensors")):
        name = path.name[: -len(".safetensors")]
        meta = json.loads(path.with_suffix(".json").read_text())
        index["models"][name] = {
            "file": path.name, "bytes": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "size": meta["size"], "family": meta["family"], "num_params": meta["num_params"],
            "corpus": meta["corpus"], "bytes_seen": meta["bytes_seen"], "heldout_bpb": meta["final_heldout_bpb"],
            "command": meta["command"], "measured": figures(section["rows"], name, args.section),
        }
    total = sum(m["bytes"] for m in index["models"].values())
    index["total_bytes"] = total
    (SHIPPED / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    print(f"wrote {SHIPPED / 'index.json'}: {len(index['models'])} models, {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
