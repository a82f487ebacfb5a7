"""Safe file handling for the CLI: atomic writes, no clobbering, progress on big inputs."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from ..errors import ZiplabError

PROGRESS_MIN_BYTES = 1 << 20  # lzh -9 codes ~1-2 MB/s: a bar from about a second of work


class OutputExistsError(ZiplabError):
    """An output file already exists and --force was not given."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _copy_metadata(tmp: str, like: Path | None) -> None:
    """The input's permission bits and times, as gzip and zstd keep them; a file made from
    standard input gets the usual 0666 & ~umask (mkstemp's 0600 would surprise)."""
    if like is None:
        os.chmod(tmp, 0o666 & ~_umask())
        return
    st = like.stat()
    os.chmod(tmp, stat.S_IMODE(st.st_mode))
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))


@contextlib.contextmanager
def atomic_output(path: Path, force: bool, like: Path | None = None) -> Iterator[BinaryIO]:
    """Write to a temp file beside `path`, renamed over it only if the block exits cleanly
    (exceptions and signals, which arrive as exceptions, remove it); the result takes the mode
    and times of `like`, the input."""
    if path.exists() and not force:
        raise OutputExistsError(f"{path} already exists (use -f/--force to overwrite)")
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        _copy_metadata(tmp, like)
        if path.exists() and not force:  # appeared while we worked
            raise OutputExistsError(f"{path} already exists (use -f/--force to overwrite)")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def open_input(name: str) -> Iterator[BinaryIO]:
    if name == "-":
        yield sys.stdin.buffer
        return
    path = Path(name)
    if path.is_dir():
        raise ZiplabError(f"{name} is a directory")
    with path.open("rb") as f:
        yield f


def input_size(name: str) -> int | None:
    try:
        return None if name == "-" else Path(name).stat().st_size
    except OSError:
        return None


@contextlib.contextmanager
def progress_bar(label: str, total: int | None, quiet: bool,
                 min_bytes: int = PROGRESS_MIN_BYTES) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on stderr for inputs large enough to make people wait, when stderr is a
    terminal (a pipe or log gets no bar, and no stray blank line)."""
    if quiet or total is None or total < min_bytes or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    columns = (f"{label}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
