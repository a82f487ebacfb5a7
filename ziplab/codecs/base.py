"""The contract between the container and a codec.

A codec turns one block (a numpy uint8 array) into a payload and back. The container owns
framing, checksums and limits; a codec owns only its bitstream. `encoder`/`decoder` are
factories so that expensive set-up (loading a model, checking its fingerprint) happens once
per file, before any block is touched.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import ParameterError

BlockEncoder = Callable[[np.ndarray], bytes]
BlockDecoder = Callable[[bytes, int], np.ndarray]


class Codec:
    name: str = ""
    summary: str = ""
    #: inclusive (min, max) level range, or None for codecs without levels
    levels: tuple[int, int] | None = None
    default_level: int | None = None
    #: upper bound on decoded bytes per payload byte; the container rejects headers beyond it
    max_ratio: float = float(1 << 20)
    #: default block size in bytes for this codec (the container may be told otherwise)
    block_size: int = 4 << 20
    #: the .zl format version this codec's files carry (bumped when its payload changes meaning)
    format_version: int = 1
    #: coded by a model at KB/s: takes model/lanes/workers options and reports progress through
    #: CodingStats while encoding (and a `progress` option while decoding)
    model_driven: bool = False

    def version_hint(self, version: int) -> str:
        """What to tell a user holding a file of another format version (", ..." or "")."""
        return ""

    def params(self, level: int | None = None, **options: Any) -> dict:
        """Settings recorded in the header: everything the decoder needs besides the payload."""
        if options:
            raise ParameterError(f"codec {self.name!r} takes no option {sorted(options)[0]!r}")
        return {"level": self.check_level(level)} if self.levels else {}

    def params_schema(self) -> dict[str, Any]:
        """What a header's params may hold for this codec (see `schema`)."""
        from .schema import Int

        return {"level": Int(*self.levels)} if self.levels else {}

    def check_params(self, params: Any) -> None:
        """Validate params read from a file before anything is built from them."""
        from .schema import check

        check(params, self.params_schema())

    def check_level(self, level: int | None) -> int | None:
        if self.levels is None:
            if level is not None:
                raise ParameterError(f"codec {self.name!r} has no levels")
            return None
        if level is None:
            return self.default_level
        lo, hi = self.levels
        if not lo <= int(level) <= hi:
            raise ParameterError(f"codec {self.name!r} takes levels {lo}..{hi}, not {level}")
        return int(level)

    # Classic codecs define encode_block(data, params) -> bytes and
    # decode_block(payload, size, params) -> ndarray; codecs with set-up override the factories.
    def encoder(self, params: dict, stats: Any = None, workers: int | None = None) -> BlockEncoder:
        """`stats` and `workers` concern predictive codecs; classic ones code in-process."""
        return lambda data: self.encode_block(data, params)  # type: ignore[attr-defined]

    def decoder(self, params: dict, workers: int | None = None, **options: Any) -> BlockDecoder:
        """`options` are the user's decode-time overrides (e.g. where to find a model)."""
        if options:
            raise ParameterError(f"codec {self.name!r} takes no option {sorted(options)[0]!r} when decoding")
        return lambda payload, size: self.decode_block(payload, size, params)  # type: ignore[attr-defined]
