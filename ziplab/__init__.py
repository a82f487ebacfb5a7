"""ziplab: compression as intelligence.

    >>> import ziplab
    >>> blob = ziplab.compress(b"hello hello hello", codec="lzh", level=9)
    >>> ziplab.decompress(blob)
    b'hello hello hello'

The rest of the `lzma`-style surface: `ziplab.open` (file objects, binary and text, reading and
writing), `ziplab.Compressor` / `ziplab.Decompressor` (incremental), `compress_file` /
`decompress_file` (file to file); see docs/python.md.
"""

from .errors import (
    ChecksumError,
    CorruptDataError,
    FormatError,
    LimitError,
    ModelMismatchError,
    ParameterError,
    TruncatedError,
    UnknownCodecError,
    ZiplabError,
)

__version__ = "0.9.1"

__all__ = [
    "ChecksumError", "CorruptDataError", "FormatError", "LimitError", "ModelMismatchError",
    "ParameterError", "TruncatedError", "UnknownCodecError", "ZiplabError",
    "compress", "decompress", "compress_file", "decompress_file", "open", "read_header",
    "Compressor", "Decompressor", "CodingOptions", "CodingStats", "__version__",
]


def __getattr__(name: str):
    # The container (and with it numpy) is imported on first use, keeping `import ziplab` light.
    if name in ("compress", "decompress", "compress_file", "decompress_file", "read_header"):
        from . import container

        return getattr(container, name)
    if name == "open":
        from . import zlfile

        return zlfile.open
    if name in ("Compressor", "Decompressor"):
        from . import stream

        return getattr(stream, name)
    if name in ("CodingOptions", "CodingStats"):
        from .codecs import base

        return getattr(base, name)
    raise AttributeError(name)
