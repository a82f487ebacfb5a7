"""One exception family, so the CLI can turn any failure into a one-line message."""


class ZiplabError(Exception):
    """Base of every error ziplab raises on purpose (bad input, bad settings)."""


class FormatError(ZiplabError):
    """The bytes are not a .zl file this version understands (magic, version, header)."""


class TruncatedError(FormatError):
    """The file ends before the header or a block says it should."""


class UnknownCodecError(ZiplabError):
    """A codec name that is not in the registry."""


class CorruptDataError(ZiplabError):
    """A payload that its codec cannot decode (flipped bits, impossible tokens)."""


class ChecksumError(CorruptDataError):
    """Decoded bytes whose CRC32 differs from the one recorded at compression."""


class LimitError(FormatError):
    """A header that claims more than its payload could produce (decompression bombs)."""


class ModelMismatchError(ZiplabError):
    """A neural payload decoded with a model other than the one that encoded it."""


class ParameterError(ZiplabError):
    """Settings a codec or command does not accept (level out of range, bad option)."""
