"""Fetch a zipped corpus once into the user cache: resumable, verified, with a progress bar.

Layout under `corpora_cache_dir()`: `NAME.zip.part` while downloading (kept on failure so the
next run resumes it with an HTTP Range request), `NAME.zip` once complete, then the unzipped
member `NAME`, verified against the published digests, plus `NAME.verified` (a JSON stamp of
its size, mtime and digests, so later loads skip re-hashing unless the file changed). The zip
is deleted after a verified extraction to save disk.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import sys
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

import platformdirs

from .corpus import CorpusError

MIRROR_ENV = "ZIPLAB_MIRROR"
CACHE_ENV = "ZIPLAB_CACHE_DIR"
CHUNK = 1 << 20
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Download:
    """One zipped file and the digests (of the unzipped member) that prove we got the real one."""

    name: str
    archive: str
    member: str
    size: int | None
    digests: dict[str, str] = field(default_factory=dict)
    base_url: str = "http://mattmahoney.net/dc/"

    def url(self, mirror: str | None = None) -> str:
        """`mirror` (else $ZIPLAB_MIRROR, else the official site) is the folder holding the zip."""
        base = mirror or os.environ.get(MIRROR_ENV) or self.base_url
        return base.rstrip("/") + "/" + self.archive


def corpora_cache_dir(cache_dir: Path | None = None) -> Path:
    """$ZIPLAB_CACHE_DIR/corpora if set, else the platform's user cache dir for ziplab."""
    if cache_dir is not None:
        return Path(cache_dir)
    base = os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("ziplab")
    return Path(base) / "corpora"


def cached_path(spec: Download, cache_dir: Path | None = None) -> Path:
    return corpora_cache_dir(cache_dir) / spec.name


def is_cached(spec: Download, cache_dir: Path | None = None) -> bool:
    """Cheap check for listings: present with the right size (digests are checked on load)."""
    path = cached_path(spec, cache_dir)
    return path.is_file() and (spec.size is None or path.stat().st_size == spec.size)


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def read_stamp(target: Path) -> dict:
    """The stamp, or {} if it is missing, unreadable or describes another version of the file."""
    try:
        stamp = json.loads(_stamp_path(target).read_text())
        st = target.stat()
    except (OSError, ValueError):
        return {}
    if stamp.get("size") != st.st_size or stamp.get("mtime_ns") != st.st_mtime_ns:
        return {}
    return stamp


def write_stamp(target: Path, **extra: object) -> None:
    """Record facts about the file as it is now; a later change of size or mtime voids them."""
    st = target.stat()
    stamp = {**read_stamp(target), **extra, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    _stamp_path(target).write_text(json.dumps(stamp, indent=1, sort_keys=True))


def _hash_stream(stream: BinaryIO, algorithms: list[str], sink: BinaryIO | None = None) -> tuple[int, dict[str, str]]:
    hashers = {a: hashlib.new(a) for a in algorithms}
    total = 0
    while chunk := stream.read(CHUNK):
        total += len(chunk)
        for h in hashers.values():
            h.update(chunk)
        if sink is not None:
            sink.write(chunk)
    return total, {a: h.hexdigest() for a, h in hashers.items()}


def _mismatch(spec: Download, size: int, digests: dict[str, str]) -> str | None:
    """None when size and every known digest agree, else a phrase saying what differs."""
    if spec.size is not None and size != spec.size:
        return f"is {size:,} bytes, expected {spec.size:,}"
    for algo, want in spec.digests.items():
        if digests.get(algo) != want.lower():
            return f"has {algo} {digests.get(algo)}, expected {want}"
    return None


def check_cached(target: Path, spec: Download) -> str | None:
    """Verify a cached member: trust a matching stamp, otherwise hash it (and stamp it)."""
    size = target.stat().st_size
    if spec.size is not None and size != spec.size:
        return f"is {size:,} bytes, expected {spec.size:,}"
    if read_stamp(target).get("digests") == {a: d.lower() for a, d in spec.digests.items()}:
        return None
    with target.open("rb") as f:
        size, digests = _hash_stream(f, list(spec.digests))
    problem = _mismatch(spec, size, digests)
    if problem is None:
        write_stamp(target, digests=digests)
    return problem


def _progress(label: str, total: int | None, done: int, enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )
    task = bar.add_task(label, total=total, completed=done)
    return bar, task


def _by_hand(spec: Download, directory: Path) -> str:
    return f"download it yourself and place it at {directory / spec.archive} (or the unzipped file at {directory / spec.name})"


def http_download(url: str, part: Path, *, progress: bool = True, hint: str = "") -> None:
    """Append the rest of `url` to `part`, resuming from its current size when the server allows."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "ziplab", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the .part is already whole
            return
        raise CorpusError(f"cannot download {url}: HTTP {exc.code} {exc.reason}; {hint}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise CorpusError(f"cannot download {url} ({reason}); {hint}") from None
    with response:
        resumed = response.status == 206 and have > 0
        start = have if resumed else 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        bar, task = _progress(f"{part.name.removesuffix('.part')}", total, start, progress)
        try:
            with bar, part.open("ab" if resumed else "wb") as out:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    bar.update(task, advance=len(chunk))
        except (OSError, http.client.HTTPException) as exc:
            raise CorpusError(f"download of {url} interrupted ({exc}); run again to resume from {part}") from None
    if total is not None and part.stat().st_size < total:
        raise CorpusError(f"download of {url} ended early at {part.stat().st_size:,} of {total:,} bytes; run again to resume")


def _extract_verified(archive: Path, spec: Download, target: Path) -> str | None:
    """Unzip the member to target while hashing it; None on success, else what went wrong."""
    tmp = target.with_name(target.name + ".tmp")
    try:
        with zipfile.ZipFile(archive) as zf:
            if spec.member not in zf.namelist():
                return f"does not contain {spec.member!r}"
            with zf.open(spec.member) as src, tmp.open("wb") as sink:
                size, digests = _hash_stream(src, list(spec.digests), sink)
    except (zipfile.BadZipFile, EOFError) as exc:
        tmp.unlink(missing_ok=True)
        return f"is not a valid zip ({exc})"
    problem = _mismatch(spec, size, digests)
    if problem is not None:
        tmp.unlink(missing_ok=True)
        return f"unzips to a file that {problem}"
    tmp.replace(target)
    write_stamp(target, digests=digests)
    return None


def _note(message: str) -> None:
    print(f"ziplab: {message}", file=sys.stderr)


def fetch(
    spec: Download,
    *,
    cache_dir: Path | None = None,
    mirror: str | None = None,
    progress: bool = True,
    note: Callable[[str], None] = _note,
) -> Path:
    """Return the verified unzipped file, downloading, resuming or replacing it as needed.

    A cached file that fails verification is reported through `note` and fetched again; a
    fresh download that still fails raises CorpusError (the mirror serves a different file)."""
    directory = corpora_cache_dir(cache_dir)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / spec.name
    url = spec.url(mirror)
    if target.exists():
        problem = check_cached(target, spec)
        if problem is None:
            return target
        note(f"cached {target} {problem}; fetching it again")
        target.unlink()
    archive = directory / spec.archive
    part = archive.with_name(archive.name + ".part")
    problem = "was not checked"
    for _ in range(2):
        fresh = not archive.exists() and not part.exists()
        if not archive.exists():
            http_download(url, part, progress=progress, hint=_by_hand(spec, directory))
            part.replace(archive)
        problem = _extract_verified(archive, spec, target) or ""
        if not problem:
            archive.unlink(missing_ok=True)
            return target
        archive.unlink(missing_ok=True)
        if fresh:
            break
        note(f"{spec.archive} {problem}; downloading it again from scratch")
    raise CorpusError(f"{spec.archive} from {url} {problem}: the mirror may serve a different file")
