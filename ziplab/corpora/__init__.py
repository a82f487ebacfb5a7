"""Corpora: named or local text collections with deterministic train / held-out splits.

`load_corpus(spec)` takes a registered name (`stdlib`, built in; `enwik8`, `enwik9`, `text8`,
downloaded once into the user cache and verified) or a local path (a folder with train.txt
and dev.txt/test.txt, or a single file whose last 10% is held out). Every Corpus has
`.train()`, `.heldout()` and a `.sha256` fingerprint of both splits."""

from __future__ import annotations

from .corpus import Corpus, CorpusError, split_fingerprint
from .download import Download, corpora_cache_dir, fetch
from .local import file_corpus, folder_corpus
from .registry import REGISTRY, Entry, corpus_names, load_corpus
from .standard import STANDARD, download_corpus, split_ranges
from .stdlib import stdlib_corpus

__all__ = [
    "Corpus",
    "CorpusError",
    "Download",
    "Entry",
    "REGISTRY",
    "STANDARD",
    "corpora_cache_dir",
    "corpus_names",
    "download_corpus",
    "fetch",
    "file_corpus",
    "folder_corpus",
    "load_corpus",
    "split_fingerprint",
    "split_ranges",
    "stdlib_corpus",
]
