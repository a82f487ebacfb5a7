"""What the grid benchmarks (grid_largest.py, grid_fresh.py) share: a grid folder's record and
the corpus it trained on, refused when the corpus is another one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def open_grid(grid: Path, corpus_path: str) -> tuple[dict, Any]:
    """(results.json, the corpus) of a grid folder; exits with one line if the corpus differs."""
    from ziplab.corpora import load_corpus

    results = json.loads((grid / "results.json").read_text())
    corpus = load_corpus(corpus_path)
    if corpus.sha256 != results["corpus_sha256"]:
        raise SystemExit(f"{corpus_path} is not the corpus the grid trained on")
    return results, corpus
