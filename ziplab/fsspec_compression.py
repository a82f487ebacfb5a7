""".zl as one of fsspec's `compression=` methods, so fsspec URLs (local, memory, s3, http...)
and what reads through fsspec (dask, Hugging Face datasets) read and write .zl files.

fsspec (2026.9) finds filesystems through entry points but compression methods only through
`fsspec.compression.register_compression` (fsspec issue #1187 asks for entry points), and
ziplab changes nothing on import, so registering is one explicit call:

    >>> import fsspec, ziplab.fsspec_compression
    >>> ziplab.fsspec_compression.register()
    >>> with fsspec.open("memory://doc/a.csv.zl", "wt", compression="ziplab") as f:
    ...     f.write("x,y\\n1,2\\n")
    8
    >>> with fsspec.open("memory://doc/a.csv.zl", "rt", compression="infer") as f:  # by the .zl suffix
    ...     f.read()
    'x,y\\n1,2\\n'

fsspec passes only the mode to a compression method, so fsspec writes with lzh at its default
level; choose another codec with `ziplab.open(fs.open(path, "wb"), "wb", codec=...)`.
"""

from __future__ import annotations

from typing import BinaryIO

from .zlfile import open as zl_open

NAME, SUFFIX = "ziplab", "zl"


def ziplab_file(infile: BinaryIO, mode: str = "rb", **kwargs) -> BinaryIO:
    """fsspec's compression callback: a binary .zl file object over `infile` (left open; fsspec
    closes it), reading for "r", writing a member for "w", appending one for "a"."""
    return zl_open(infile, mode[0] + "b", **kwargs)  # type: ignore[return-value]


def register(force: bool = False) -> None:
    """Make `compression="ziplab"` (and "infer" for names ending in .zl) work in fsspec. Calling
    it again is harmless; `force` takes the name or suffix over from another registration."""
    from fsspec.compression import compr, register_compression

    if compr.get(NAME) is ziplab_file and not force:
        return
    register_compression(NAME, ziplab_file, SUFFIX, force=force)
