"""The contract between the container and a codec.

A codec opens an `Encoder` for one file from (level, `CodingOptions`, one progress callback);
the encoder owns whatever it needs (a model, a fingerprint), exposes the header params it
chose and the coding stats, and turns each block (a numpy uint8 array) into a payload. A
`Decoder` is opened from a header's params the same way. The container owns framing,
checksums and limits; a codec owns only its bitstream.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any, Callable

import numpy as np

from ..errors import ParameterError
from ..limits import MemoryNeed

#: called with the number of input bytes coded since its last call (one channel for every codec)
Progress = Callable[[int], None]


@dataclass(frozen=True)
class CodingOptions:
    """What a user chooses besides the codec and level. `model`, `lanes` and `engine` change the
    bytes and are recorded in the header; `workers` (processes) never changes them."""

    model: str | None = None  # nn/mix: a size name, checkpoint path or "shipped"; mix also "none"
    lanes: int | None = None  # model-driven codecs: streams coded in lockstep
    workers: int | None = None  # processes to code in (model-driven codecs; the decoder's own choice)
    #: the resource policy (ziplab.limits.Limits; None: the machine's default): a policy every
    #: codec obeys, not an option one may refuse
    limits: Any = None
    #: nn/mix: the portable engine to write (default: the model family's newest); an older one
    #: writes files an older ziplab decodes. Recorded in the header, like `model`.
    engine: str | None = None

    def given(self) -> list[str]:
        return [f.name for f in fields(self) if f.name != "limits" and getattr(self, f.name) is not None]

    def resolved_limits(self) -> Any:
        from ..limits import default_limits

        return self.limits if self.limits is not None else default_limits()

    def refuse(self, codec: str, allowed: tuple[str, ...] = (), when: str = "") -> None:
        """One-line error for an option this codec does not take."""
        extra = [name for name in self.given() if name not in allowed]
        if extra:
            raise ParameterError(f"codec {codec!r} takes no option {extra[0]!r}{when}")


@dataclass
class CodingStats:
    """What one encode measured: ideal bits under the model (-log2 p of every coded symbol) and
    coding steps. Filled by model-driven codecs; others leave it at zero."""

    ideal_bits: float = 0.0
    steps: int = 0

    def add(self, other: "CodingStats") -> None:
        self.ideal_bits += other.ideal_bits
        self.steps += other.steps


class Encoder:
    """One file's encoder. `reports_progress`: the codec calls `progress` itself while coding
    (model-driven codecs, every few steps); otherwise it is called once per block. `version`: the
    format version it writes, when not the codec's newest (`format_version`)."""

    def __init__(self, params: dict, encode: Callable[[np.ndarray], bytes], progress: Progress | None = None,
                 stats: CodingStats | None = None, reports_progress: bool = False, version: int | None = None) -> None:
        self.params, self.stats, self.version = params, stats, version
        self._encode, self._progress, self._reports = encode, progress, reports_progress

    def encode(self, block: np.ndarray) -> bytes:
        payload = self._encode(block)
        if self._progress is not None and not self._reports:
            self._progress(len(block))
        return payload


class Decoder:
    """One file's decoder (see Encoder for `reports_progress`). `stored(n)` accounts for a block
    the container copies without decoding."""

    def __init__(self, decode: Callable[[bytes, int], np.ndarray], progress: Progress | None = None,
                 reports_progress: bool = False) -> None:
        self._decode, self._progress, self._reports = decode, progress, reports_progress

    def decode(self, payload: bytes, size: int) -> np.ndarray:
        out = self._decode(payload, size)
        if self._progress is not None and not self._reports:
            self._progress(size)
        return out

    def stored(self, size: int) -> None:
        if self._progress is not None:
            self._progress(size)


class Codec(ABC):
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
    #: earlier format versions this ziplab still decodes (files are never orphaned)
    older_versions: tuple[int, ...] = ()
    #: coded by a model at KB/s: takes model/lanes/workers and reports progress while coding
    model_driven: bool = False
    #: one process splits its model's lanes over threads (`-T`, default one per CPU) instead of
    #: worker processes: threads share the model, so memory does not limit their count
    lane_threads: bool = False

    def decode_memory(self, params: dict, block_size: int, original_size: int) -> MemoryNeed:
        """What decoding a member with these (validated) params needs, before anything is
        built: by default the compressed and decoded block and a copy (the classic coders)."""
        return MemoryNeed(shared=3 * min(block_size, original_size) + (1 << 20))

    def model_sharing(self, params: dict) -> str:
        """How decoding a member with these params holds its model (`info`): "forks" (forked
        copies of one process share it; threads where the platform does not fork), "threads",
        or "workers" (each worker process loads its own)."""
        return "threads" if self.lane_threads else "workers"

    def version_hint(self, version: int) -> str:
        """What to tell a user holding a file of another format version (", ..." or "")."""
        return ""

    # ---- the interface the container speaks ------------------------------------------------
    @abstractmethod
    def open_encoder(self, level: int | None = None, options: CodingOptions = CodingOptions(),
                     progress: Progress | None = None, stats: CodingStats | None = None) -> Encoder:
        """An encoder for one file: validates level and options, builds what coding needs."""

    @abstractmethod
    def open_decoder(self, params: dict, options: CodingOptions = CodingOptions(),
                     progress: Progress | None = None) -> Decoder:
        """A decoder for one file's params (validated by `check_params` when the header was read)."""

    # ---- header params -----------------------------------------------------------------------
    def params_schema(self) -> dict[str, Any]:
        """What a header's params may hold for this codec (see `schema`)."""
        from .schema import Int

        return {"level": Int(*self.levels)} if self.levels else {}

    def check_params(self, params: Any) -> None:
        """Validate params read from a file before anything is built from them."""
        from .schema import check

        check(params, self.params_schema())

    def check_version_params(self, version: int, params: dict) -> None:
        """Validate what params may hold in this format version (after `check_params`): by
        default every accepted version takes the same params."""

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



class BlockCodec(Codec):
    """A codec that is two pure functions of a block and the header params (store and the
    classic coders): params are the level, there is nothing to set up."""

    def open_encoder(self, level: int | None = None, options: CodingOptions = CodingOptions(),
                     progress: Progress | None = None, stats: CodingStats | None = None) -> Encoder:
        options.refuse(self.name)
        params = {"level": self.check_level(level)} if self.levels else {}
        return Encoder(params, lambda data: self.encode_block(data, params), progress, stats)

    def open_decoder(self, params: dict, options: CodingOptions = CodingOptions(),
                     progress: Progress | None = None) -> Decoder:
        """No options when decoding but a worker count, which a block codec has no use for."""
        options.refuse(self.name, ("workers",), " when decoding")
        return Decoder(lambda payload, size: self.decode_block(payload, size, params), progress)

    @abstractmethod
    def encode_block(self, data: np.ndarray, params: dict) -> bytes:
        """The payload of one block."""

    @abstractmethod
    def decode_block(self, payload: bytes, size: int, params: dict) -> np.ndarray:
        """One block back from its payload; raises CorruptDataError on a bad one."""
