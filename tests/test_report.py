"""Plot and report write readable files from a sweep's results dict."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ziplab.sweep.fit import fit_results, fits_to_json
from ziplab.sweep.plot import plot_curve
import ziplab
from ziplab.provenance import record as provenance_record
from ziplab.sweep.report import write_report


def sample_results() -> dict:
    sizes = []
    for fam, (E, A, alpha), count in (("transformer", (0.95, 40.0, 0.28), 4), ("lstm", (1.1, 30.0, 0.25), 2)):
        for i, n in enumerate(np.geomspace(2e4, 2e7, count)):
            bpb = float(E + A * n**-alpha)
            model_bytes = int(4 * n)
            sizes.append({
                "family": fam, "size": f"s{i}", "params": int(1.3 * n), "non_embedding_params": int(n),
                "train_bytes": 1_000_000, "train_seconds": 3.0 * (i + 1), "cross_entropy_bpb": bpb - 0.001,
                "actual_bpb": bpb, "compressed_bytes": int(bpb * 125_000), "model_bytes": model_bytes,
                "adjusted_bpb": (bpb * 125_000 + model_bytes) * 8 / 1_000_000, "encode_kbps": 40.0, "decode_kbps": 39.0,
            })
    return {"corpus": "stdlib", "corpus_sha256": "ab" * 32, "eval_bytes": 1_000_000,
            "command": "ziplab sweep --corpus stdlib --sizes xs,s", "sizes": sizes,
            "baselines": {"gzip -9": 2.1, "xz -9": 1.75, "zstd -19": 1.8}}


def test_plot_writes_a_png(tmp_path: Path) -> None:
    results = sample_results()
    path = plot_curve(results, fit_results(results), tmp_path / "sub" / "curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_plot_accepts_fits_read_back_from_json_and_no_points(tmp_path: Path) -> None:
    results = sample_results()
    fits = json.loads(json.dumps(fits_to_json(fit_results(results))))
    assert plot_curve(results, fits, tmp_path / "a.png").is_file()
    empty = {"corpus": "x", "sizes": [], "baselines": {"xz": 2.0}}
    assert plot_curve(empty, {}, tmp_path / "b.png").is_file()


def test_report_writes_all_files(tmp_path: Path) -> None:
    results = sample_results()
    fits = fit_results(results)
    plot = plot_curve(results, fits, tmp_path / "curve.png")
    paths = write_report(results, fits, tmp_path, plot=plot)
    assert json.loads(paths["results.json"].read_text()) == results
    rows = list(csv.DictReader(paths["results.csv"].open()))
    assert len(rows) == 6 and rows[0]["family"] == "transformer" and float(rows[0]["actual_bpb"]) > 0
    fit_json = json.loads(paths["fit.json"].read_text())
    assert fit_json["transformer"]["saturating"]["alpha"] > 0 and fit_json["lstm"]["saturating"] is None
    assert fit_json["provenance"]["ziplab_version"] == ziplab.__version__  # the fitting code's version
    assert plot_curve(results, fit_json, tmp_path / "again.png").is_file()  # read back, the record set aside
    md = paths["report.md"].read_text()
    for needle in ("ziplab sweep --corpus stdlib --sizes xs,s", "ab" * 32, "| xz -9 | 1.7500 |", "![bpb against model size](curve.png)",
                   "python:", "numpy:", "torch:", "cpu:", "E + A·N^-α", "lstm: 2 distinct size(s)"):
        assert needle in md, needle


def test_the_report_lists_the_provenance_record() -> None:
    from ziplab.sweep.report import markdown

    md = markdown({"corpus": "x"}, {}, provenance_record(), None)
    for needle in ("ziplab_version: ", "versions.numpy: ", "versions.torch: ", "cpu: ", "isa_flags: "):
        assert needle in md, needle
