"""Write ziplab/models/shipped/index.json: every shipped model's file, its sha256, the command
that trained it, and what benchmarks/results/mix.json measured of it (each figure names the
section it came from), so `ziplab models` shows size, speed and bpb without hand-typed numbers.

    python benchmarks/ship_models.py [--section v4-full-dev.txt-500000 --section v3-full-dev.txt-500000]

Each model takes its figures from the first section that measured it (a model the newest plan
no longer runs, like the earlier nn default, keeps an older section's figures, named as such).

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


def label_models(label: str) -> list[str]:
    """The models a level row's label names: 'mix -2 (a + b)' -> [a, b] (exact names: l4-gutenberg is
    not l4-gutenberg-large)."""
    if "(" not in label:
        return []
    return label[label.index("(") + 1: label.rindex(")")].split(" + ")


def figures(rows: dict, name: str, section: str) -> dict:
    """This model's rows in a mix.json section: `nn` alone, and each mix level that names it."""
    out: dict = {"source": f"benchmarks/results/mix.json [{section}]"}
    for label, r in rows.items():
        spec = r.get("spec", {})
        if spec.get("codec") == "nn" and spec.get("models") == [name]:
            out["nn"] = {"bpb": round(r["bpb"], 4), "enc_kbs": round(r["enc_kbs"], 1), "dec_kbs": round(r["dec_kbs"], 1)}
        if spec.get("codec") == "mix" and set(spec) <= {"codec", "level", "n", "threads"} and name in label_models(label):
            out[f"mix-{spec['level']}"] = {"bpb": round(r["bpb"], 4), "enc_kbs": round(r["enc_kbs"], 1),
                                           "dec_kbs": round(r["dec_kbs"], 1), "row": label}
    return out


def measured(sections: list[tuple[str, dict]], name: str) -> dict:
    """The model's figures from the first section that has any (the first section's source if none)."""
    for key, sec in sections:
        got = figures(sec["rows"], name, key)
        if len(got) > 1:
            return got
    return figures(sections[0][1]["rows"], name, sections[0][0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--section", action="append",
                    help="mix.json sections, newest first (default: v4-full-dev.txt-500000, then v3-full-dev.txt-500000)")
    args = ap.parse_args()
    names = args.section or ["v4-full-dev.txt-500000", "v3-full-dev.txt-500000"]
    results = json.loads(MIX.read_text())
    sections = [(n, results[n]) for n in names]
    slices = {sec["slice"] for _, sec in sections}
    if len(slices) != 1:
        raise SystemExit(f"the sections measure different slices: {sorted(slices)}")
    index = {"slice": slices.pop(), "models": {}}
    for path in sorted(SHIPPED.glob("*.safetensors")):
        name = path.name[: -len(".safetensors")]
        meta = json.loads(path.with_suffix(".json").read_text())
        index["models"][name] = {
            "file": path.name, "bytes": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "size": meta["size"], "family": meta["family"], "num_params": meta["num_params"],
            "corpus": meta["corpus"], "bytes_seen": meta["bytes_seen"], "heldout_bpb": meta["final_heldout_bpb"],
            "command": meta["command"], "measured": measured(sections, name),
        }
    total = sum(m["bytes"] for m in index["models"].values())
    index["total_bytes"] = total
    (SHIPPED / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    print(f"wrote {SHIPPED / 'index.json'}: {len(index['models'])} models, {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
