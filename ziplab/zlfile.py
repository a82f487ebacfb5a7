""".zl files as file objects: `ziplab.open` in the modes of `gzip.open` and `lzma.open`, so
`tarfile`, `csv`, pandas and fsspec read and write them like any compressed file.

Writing codes each block as it fills and writes it at once (one streamed member,
docs/FORMAT-streaming.md): nothing larger than one block is held, the destination is never
sought, and the bytes do not depend on what the destination is.

    >>> import io, tarfile
    >>> buf = io.BytesIO()
    >>> with open(buf, "wb", codec="lzh", level=9) as f, tarfile.open(fileobj=f, mode="w|") as tar:
    ...     info = tarfile.TarInfo("hello.txt")
    ...     info.size = 12
    ...     tar.addfile(info, io.BytesIO(b"hello, world"))
    >>> buf.seek(0)
    0
    >>> with open(buf) as f, tarfile.open(fileobj=f, mode="r|") as tar:
    ...     [(m.name, tar.extractfile(m).read()) for m in tar]
    [('hello.txt', b'hello, world')]
"""

from __future__ import annotations

import builtins
import io
import os
import threading
from typing import BinaryIO, Union

from .codecs.base import CodingOptions
from .container import ZLReader
from .errors import ParameterError
from .stream import Compressor

#: what `open` accepts as `file`
PathOrFile = Union[str, bytes, "os.PathLike[str]", BinaryIO]
_MODES = {f"{kind}{form}": (kind, form == "t") for kind in "rwxa" for form in ("", "b", "t")}


class ZLWriter(io.BufferedIOBase):
    """A write-only binary file object that compresses into `dst` (a binary file object) with
    `compressor` as blocks fill; `close()` writes the last block and the end of the member, and
    closes `dst` only if `close_destination`. `flush()` flushes `dst` but cannot flush a
    part-filled block: a block is coded whole, so that the output does not depend on when flush
    was called. Writes from several threads are serialised (each lands whole, in call order).

        >>> from ziplab import decompress
        >>> out = io.BytesIO()
        >>> with ZLWriter(out, Compressor("store", block_size=4)) as w:
        ...     w.write(b"abcdef")
        6
        >>> decompress(out.getvalue())
        b'abcdef'
    """

    def __init__(self, dst: BinaryIO, compressor: Compressor, close_destination: bool = False) -> None:
        self._dst, self._compressor, self._close_destination = dst, compressor, close_destination
        self._lock = threading.RLock()
        self._finished = False

    @property
    def mode(self) -> str:
        return "wb"

    @property
    def name(self):
        return getattr(self._dst, "name", None)

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        """Compress `data` (any bytes-like), at most one block at a time; returns its length."""
        with self._lock:
            if self.closed:
                raise ValueError("write to closed file")
            view = memoryview(data).cast("B")
            step = self._compressor.block_size
            for start in range(0, len(view), step):
                out = self._compressor.compress(view[start:start + step])
                if out:
                    self._dst.write(out)
            return len(view)

    def flush(self) -> None:
        with self._lock:
            if self.closed:
                raise ValueError("flush of closed file")
            if not self._finished and hasattr(self._dst, "flush"):
                self._dst.flush()

    def close(self) -> None:
        """Finish the member (the last block and the end block) and flush the destination."""
        with self._lock:
            if self.closed:
                return
            try:
                if not self._finished:
                    self._dst.write(self._compressor.flush())
                    if hasattr(self._dst, "flush"):
                        self._dst.flush()
            finally:
                self._finished = True
                try:
                    if self._close_destination:
                        self._dst.close()
                finally:
                    super().close()


def open(file: PathOrFile, mode: str = "rb", *, codec: str | None = None,  # noqa: A001 - mirrors gzip.open
         level: int | None = None, block_size: int | None = None, model: str | None = None,
         lanes: int | None = None, workers: int | None = None, encoding: str | None = None,
         errors: str | None = None, newline: str | None = None) -> io.IOBase:
    """Open a .zl file (a path, or a binary file object, which is left open) like `gzip.open`.

    Modes: "r"/"rb" read (every member of a concatenated stream), "w"/"wb" write, "x"/"xb" write
    a file that must not exist, "a"/"ab" append a member (concatenated members decode as one);
    add "t" for text ("rt", "wt", "xt", "at"), which takes `encoding`, `errors` and `newline`.
    `codec`, `level`, `block_size` and `lanes` choose how to write (default: lzh at its default
    level); `model` and `workers` reach the codec when writing and when reading.

        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt.zl")
        >>> with open(path, "wt", encoding="utf-8") as f:
        ...     f.write("naïve café\\n" * 3)
        33
        >>> with open(path, "at", codec="store") as f:   # a second member
        ...     f.write("the end\\n")
        8
        >>> with open(path, "rt", encoding="utf-8") as f:
        ...     f.read().splitlines()[-2:]
        ['naïve café', 'the end']
    """
    if mode not in _MODES:
        raise ParameterError(f"invalid mode {mode!r} for ziplab.open (r, w, x or a, then b or t)")
    kind, text = _MODES[mode]
    if not text and (encoding, errors, newline) != (None, None, None):
        raise ParameterError("encoding, errors and newline are for text mode ('rt', 'wt', 'xt', 'at')")
    if kind == "r" and (codec, level, block_size, lanes) != (None, None, None, None):
        raise ParameterError("codec, level, block_size and lanes are for writing: a file's header says "
                             "how it was coded")
    owned = isinstance(file, (str, bytes, os.PathLike))
    if not owned and not hasattr(file, "read" if kind == "r" else "write"):
        raise TypeError(f"file must be a path or a binary file object, not {type(file).__name__}")
    # settings are checked (and a model loaded) before a file is created or truncated
    compressor = None if kind == "r" else Compressor(codec or "lzh", level, block_size=block_size, model=model,
                                                      lanes=lanes, workers=workers)
    raw = builtins.open(file, kind + "b") if owned else file
    try:
        if compressor is None:
            options = CodingOptions(model=model, workers=workers)
            binary: io.BufferedIOBase = io.BufferedReader(ZLReader(raw, close_source=owned, options=options))
        else:
            binary = ZLWriter(raw, compressor, close_destination=owned)
    except BaseException:
        if owned:
            raw.close()
        raise
    return io.TextIOWrapper(binary, encoding, errors, newline) if text else binary
