"""The written record of a sweep: results.json, results.csv, fit.json and report.md in one folder.

Results schema (produced by the sweep runner):
  {"corpus", "corpus_sha256", "eval_bytes", "command",
   "sizes": [{"family", "size", "params", "non_embedding_params", "train_bytes", "train_seconds",
              "cross_entropy_bpb", "actual_bpb", "compressed_bytes", "model_bytes", "adjusted_bpb",
              "encode_kbps", "decode_kbps"}],
   "baselines": {name: bpb}}
Optional keys ("threads", and "environment" in folders written before the provenance record)
are kept as given. results.json and fit.json carry the provenance record (ziplab.provenance);
report.md records the exact command, the corpus and its fingerprint, and the software and
hardware it ran on, because a bpb number without them cannot be reproduced or compared.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Mapping

from ..provenance import lines as provenance_lines
from ..provenance import record as provenance_record
from ..provenance import stamp
from .fit import FamilyFit, as_family_fits, fits_to_json

SIZE_COLUMNS = [
    "family",
    "size",
    "params",
    "non_embedding_params",
    "train_bytes",
    "train_seconds",
    "cross_entropy_bpb",
    "actual_bpb",
    "compressed_bytes",
    "model_bytes",
    "adjusted_bpb",
    "encode_kbps",
    "decode_kbps",
]


#: report.md formats by column; bpb-like values take _fmt's default of four decimals
COLUMN_FORMATS = {"train_seconds": "{:,.0f}", "train_bytes_per_s": "{:,.0f}", "encode_kbps": "{:.1f}",
                  "decode_kbps": "{:.1f}"}


def _fmt(value: Any, spec: str | None = None) -> str:
    if value is None:
        return "–"
    if spec is not None and isinstance(value, (int, float)):
        return spec.format(value)
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    specs = [COLUMN_FORMATS.get(h) for h in header]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(v, f) for v, f in zip(row, specs)) + " |" for row in rows]
    return lines


def _fit_lines(fits: Mapping[str, FamilyFit]) -> list[str]:
    if not fits:
        return ["No fits (no sizes with measured bpb)."]
    rows = []
    for fam, f in fits.items():
        s, p = f.saturating, f.power_law
        rows.append([
            fam,
            f.n_points,
            s.E if s else None,
            s.A if s else None,
            s.alpha if s else None,
            str(s.ci["alpha"]) if s and s.ci else None,
            s.r2 if s else None,
            p.A if p else None,
            p.alpha if p else None,
            p.r2 if p else None,
        ])
    lines = _table(["family", "points", "E", "A", "α", "α 95% CI", "R²", "power-law A", "power-law α", "power-law R²"], rows)
    notes = [f"- {fam}: {f.note}" for fam, f in fits.items() if f.note]
    return lines + ([""] + notes if notes else [])


def markdown(results: Mapping[str, Any], fits: Mapping[str, FamilyFit], env: Mapping[str, Any], plot: str | None) -> str:
    """report.md's text: sizes, baselines, fits, command, corpus, environment."""
    sizes = results.get("sizes", [])
    cols = ["family", "size", "non_embedding_params", "params", "train_seconds", "train_bytes_per_s",
            "cross_entropy_bpb",
            "actual_bpb", "model_bytes", "adjusted_bpb", "encode_kbps", "decode_kbps"]
    out = [f"# ziplab sweep: {results.get('corpus', '?')}", ""]
    if plot:
        out += [f"![bpb against model size]({plot})", ""]
    out += ["## Sizes", ""] + _table(cols, [[r.get(c) for c in cols] for r in sizes]) + [""]
    if any(r.get("mix") for r in sizes):
        out += ["## Each model inside `mix` (context mixing + the model)", ""]
        out += _table(["family", "size", "nn bpb", "mix bpb", "mix encode KB/s", "mix decode KB/s"],
                      [[r["family"], r["size"], r.get("actual_bpb"), r["mix"]["actual_bpb"], r["mix"]["encode_kbps"],
                        r["mix"]["decode_kbps"]] for r in sizes if r.get("mix")]) + [""]
    baselines = results.get("baselines") or {}
    out += ["## Classic coders", ""]
    out += _table(["coder", "bpb"], [[k, v] for k, v in sorted(baselines.items(), key=lambda kv: kv[1])]) if baselines else ["None measured."]
    out += ["", "## Fit: bpb(N) = E + A·N^-α (and pure power law A·N^-α), N = non-embedding parameters", ""]
    out += _fit_lines(fits)
    commands = results.get("commands") or [results.get("command") or "(command not recorded)"]
    out += ["", "## Reproduce", "", "```", *commands, "```", ""]
    out += ["## Corpus", "", f"- name: {results.get('corpus', '?')}", f"- sha256 (train + held-out splits): `{results.get('corpus_sha256', '?')}`"]
    if results.get("eval_bytes") is not None:
        out.append(f"- evaluated on {_fmt(results['eval_bytes'])} held-out bytes")
    out += ["", "## Environment", ""] + provenance_lines(env)
    if results.get("threads") is not None:
        out.append(f"- threads (sweep): {results['threads']}")
    return "\n".join(out) + "\n"


def write_csv(results: Mapping[str, Any], path: Path) -> None:
    """One row per size; columns beyond the schema are appended so nothing is dropped."""
    sizes = list(results.get("sizes", []))
    extra = sorted({k for r in sizes for k in r} - set(SIZE_COLUMNS))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SIZE_COLUMNS + extra, restval="")
        writer.writeheader()
        writer.writerows(sizes)


def write_report(
    results: Mapping[str, Any],
    fits: Mapping[str, Any],
    out_dir: str | Path,
    *,
    plot: str | Path | None = None,
    env: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write the four files (and link `plot`, a PNG already in out_dir, from report.md)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fam_fits = as_family_fits(fits)
    env = dict(env) if env is not None else dict(results.get("provenance") or results.get("environment")
                                                 or provenance_record())
    paths = {name: out / name for name in ("results.json", "results.csv", "fit.json", "report.md")}
    paths["results.json"].write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    write_csv(results, paths["results.csv"])
    paths["fit.json"].write_text(json.dumps(stamp(fits_to_json(fam_fits)), indent=2) + "\n")
    plot_ref = None
    if plot is not None:
        plot_path = Path(plot)
        plot_ref = plot_path.name if plot_path.parent.resolve() == out.resolve() else str(plot_path)
    paths["report.md"].write_text(markdown(results, fam_fits, env, plot_ref))
    return paths
