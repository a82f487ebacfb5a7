"""Named corpora and the one entry point, `load_corpus`, that also accepts local paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .corpus import Corpus, CorpusError
from .download import cached_path, is_cached
from .local import file_corpus, folder_corpus
from .standard import STANDARD, standard_corpus
from .stdlib import stdlib_corpus, stdlib_size


@dataclass(frozen=True)
class Entry:
    """What `ziplab corpora` lists: enough to describe a corpus without loading it."""

    name: str
    description: str
    size: Callable[[], int | None]
    status: Callable[[], str]
    where: Callable[[], str]


def _entries() -> dict[str, Entry]:
    entries = {
        "stdlib": Entry(
            "stdlib",
            "Python standard-library sources (offline); ~5% of files held out",
            stdlib_size,
            lambda: "built in",
            lambda: "(in memory)",
        )
    }
    for name, std in STANDARD.items():
        entries[name] = Entry(
            name,
            std.description,
            lambda s=std: s.spec.size,
            lambda s=std: "cached" if is_cached(s.spec) else "download",
            lambda s=std: str(cached_path(s.spec)),
        )
    return entries


REGISTRY: dict[str, Entry] = _entries()


def corpus_names() -> list[str]:
    return list(REGISTRY)


def load_corpus(
    spec: str | Path,
    *,
    download: bool = True,
    mirror: str | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> Corpus:
    """A registered name (downloaded on first use unless download=False), a folder or a file.

    Registered names win over same-named paths; write `./enwik8` to mean a local folder."""
    name = str(spec)
    if name == "stdlib":
        return stdlib_corpus()
    if name in STANDARD:
        if not download and not is_cached(STANDARD[name].spec, cache_dir):
            raise CorpusError(f"{name} is not downloaded yet: run `ziplab corpora fetch {name}`")
        return standard_corpus(name, cache_dir=cache_dir, mirror=mirror, progress=progress)
    path = Path(spec).expanduser()
    if path.is_dir():
        return folder_corpus(path)
    if path.is_file():
        return file_corpus(path)
    names = ", ".join(REGISTRY)
    raise CorpusError(f"no corpus named {name!r}: give one of {names}, a folder or a file")
