"""Codecs whose bits come from a byte predictor (nn, ctx): a block in substreams, each in lanes.

A block is cut into S contiguous substreams (coded in parallel by up to S worker processes,
`workers`), and each substream into L lanes that advance in lockstep (`lanes`). How many
processes run is the caller's choice at encode and at decode time; the bytes depend only on S
and L.

Payload: u8 S | S x u32 substream byte lengths | substreams (constriction's u32 words).
"""

from __future__ import annotations

import json
import struct
from abc import abstractmethod
from typing import Any, Callable

import numpy as np

from ..errors import CorruptDataError, ModelMismatchError, ParameterError
from ..limits import MemoryNeed
from ..models.predictor import Predictor
from .base import Codec, CodingOptions, CodingStats, Decoder, Encoder, Progress
from .lanes import MAX_LANES, LaneLayout, decode_lanes, encode_lanes, expect_work, fingerprint, lane_count
from .substream_forks import forking, run_forked
from .substream_threads import run_threads
from .workers import run_jobs, worker_progress

#: below this a block is coded in-process even when workers are asked for
PARALLEL_MIN_BYTES = 1 << 16
MAX_STREAMS = 64


def substream_sizes(n: int, workers: int) -> list[int]:
    base, extra = divmod(n, workers)
    return [base + (i < extra) for i in range(workers)]


def pack_substreams(parts: list[bytes]) -> bytes:
    return bytes([len(parts)]) + b"".join(struct.pack("<I", len(p)) for p in parts) + b"".join(parts)


def unpack_substreams(payload: bytes, workers: int, what: str = "neural") -> list[bytes]:
    if not payload or payload[0] != workers:
        raise CorruptDataError(f"{what} payload has the wrong number of substreams")
    head = 1 + 4 * workers
    if len(payload) < head:
        raise CorruptDataError(f"{what} payload is truncated")
    lengths = struct.unpack(f"<{workers}I", payload[1:head])
    if head + sum(lengths) != len(payload):
        raise CorruptDataError(f"{what} substream lengths do not add up to the payload")
    parts, pos = [], head
    for length in lengths:
        parts.append(payload[pos:pos + length])
        pos += length
    return parts


class PredictiveCodec(Codec):
    """A codec whose bits come from a predictor. Subclasses say which header params name the
    predictor (`model_params`), how to build it from them (`build_predictor`), and what else
    about it the header records (`describe`)."""

    default_lanes = 64
    model_driven = True
    #: constriction quantises every distribution to 24-bit precision and leaves every byte at
    #: least one unit, so a byte costs >= -log2(1 - 255 / 2^24) ~ 2.2e-5 bits: one payload byte
    #: holds at most ~365,000 coded bytes. 2^19 is that bound, rounded up.
    max_ratio = float(1 << 19)
    block_size = 1 << 20
    #: record a hash of the predictor's output on a probe input, checked before decoding (ctx);
    #: the portable neural path records the hash of its quantised model instead
    fingerprinted = True
    #: header key of the substream count. ctx (format 1) calls it "workers" and makes one per
    #: worker; nn (format 2) records "substreams", at least `min_substreams`, so that files coded
    #: with one or two workers are the same bytes
    streams_key = "workers"
    min_substreams = 1
    #: a predictor whose steps keep every buffer they write in the step's own state, so threads
    #: can share it: substreams then go to threads of this process instead of worker processes
    steps_share_nothing = False

    # ---- what subclasses define ---------------------------------------------------------------
    def model_params(self, level: int | None, options: CodingOptions) -> dict:
        """Header params that say which predictor to build (known before building it)."""
        options.refuse(self.name, ("lanes", "workers"))
        return {"level": level} if self.levels else {}

    @abstractmethod
    def build_predictor(self, params: dict, model: str | None = None) -> Predictor:
        """The predictor `params` name; `model` is a decode-time override of where it lives."""

    def describe(self, predictor: Predictor) -> dict:
        return {}

    def predictor_memory(self, params: dict, lanes: int) -> int:
        """Bytes of the predictor `params` name, coding `lanes` lanes (from the header alone)."""
        return 0

    def decode_memory(self, params: dict, block_size: int, original_size: int) -> MemoryNeed:
        """The block's bytes (the lanes' grid, the joined substreams, the returned copy) held
        once, and one predictor for a substream's lanes per process that decodes."""
        n = min(block_size, original_size)
        streams = self.streams(params)
        lanes = lane_count(max(1, -(-n // streams)), self.lanes_per_stream(params))
        return MemoryNeed(shared=3 * n + (1 << 20), predictor=self.predictor_memory(params, lanes), streams=streams)

    def decoding_predictor(self, params: dict, options: CodingOptions) -> Predictor:
        """The predictor a file's params name, checked to be the one that encoded it."""
        predictor = self.build_predictor(params, options.model)
        if self.fingerprinted:
            self.check_fingerprint(predictor, params)
        return predictor

    # ---- the coding interface -----------------------------------------------------------------
    def open_encoder(self, level: int | None = None, options: CodingOptions = CodingOptions(),
                     progress: Progress | None = None, stats: CodingStats | None = None) -> Encoder:
        """`workers` given: that many substreams (at least `min_substreams`) and processes. Not
        given: the default substreams, coded by one process per substream, at most one per CPU
        (as decoding does) — the bytes do not depend on the machine."""
        lanes = self.default_lanes if options.lanes is None else int(options.lanes)
        workers = 1 if options.workers is None else int(options.workers)
        if not 1 <= lanes <= MAX_LANES:
            raise ParameterError(f"lanes must be between 1 and {MAX_LANES}")
        if not 1 <= workers <= MAX_STREAMS:
            raise ParameterError(f"workers must be between 1 and {MAX_STREAMS}")
        params: dict[str, Any] = {"lanes": lanes, self.streams_key: max(self.min_substreams, workers)}
        if self.fingerprinted:
            params["threads"] = 1
        params.update(self.model_params(self.check_level(level), options))
        predictor = self.build_predictor(params)
        params.update(self.describe(predictor))
        if self.fingerprinted:
            params["fingerprint"] = fingerprint(predictor, self.lanes_per_stream(params))
        per, streams = self.lanes_per_stream(params), self.streams(params)
        procs = _processes(options.workers, streams, options.resolved_limits().cpus)

        def encode(data: np.ndarray) -> bytes:
            chunks = split_substreams(data, streams)
            parallel = procs > 1 and len(data) >= PARALLEL_MIN_BYTES
            shared = self._shared_model(predictor, [len(c) for c in chunks], per) if parallel else None
            if shared is not None:
                coded = shared([lambda report, c=c: _encode_part(predictor, c, per, report) for c in chunks],
                               procs, progress)
                if stats is not None:
                    for _, part in coded:
                        stats.add(part)
                return pack_substreams([payload for payload, _ in coded])
            if parallel:  # pragma: no mutate block (process plumbing)
                mine, others = _share(streams, procs)
                expect_work(predictor, sum(len(chunks[i]) for i in mine))  # every substream it codes
                jobs = [(self.name, params, chunks[i].tobytes()) for i in others]
                ours, done = run_jobs(procs - 1, _encode_job, jobs, progress,
                                      lambda report: [encode_lanes(predictor, chunks[i], per, stats, report)
                                                      for i in mine])
                parts = dict(zip(mine, ours))
                for i, (payload, part) in zip(others, done):
                    parts[i] = payload
                    if stats is not None:
                        stats.add(part)
                return pack_substreams([parts[i] for i in range(streams)])
            expect_work(predictor, len(data))
            return pack_substreams([encode_lanes(predictor, c, per, stats, progress) for c in chunks])

        return Encoder(params, encode, stats=stats)  # encode() reports progress itself

    def open_decoder(self, params: dict, options: CodingOptions = CodingOptions(),
                     progress: Progress | None = None) -> Decoder:
        """Worker processes: by default one per substream, at most one per CPU — never a count
        read from the file. This process codes its share too (`_share`)."""
        options.refuse(self.name, ("model", "workers"), " when decoding")
        predictor = self.decoding_predictor(params, options)
        per, streams = self.lanes_per_stream(params), self.streams(params)
        procs = _processes(options.workers, streams, options.resolved_limits().cpus)

        def decode(payload: bytes, size: int) -> np.ndarray:
            parts = unpack_substreams(payload, streams)
            sizes = substream_sizes(size, streams)
            parallel = procs > 1 and size >= PARALLEL_MIN_BYTES
            shared = self._shared_model(predictor, sizes, per) if parallel else None
            if shared is not None:
                return np.concatenate(shared([lambda report, p=p, n=n: decode_lanes(predictor, p, n, per, report)
                                              for p, n in zip(parts, sizes)], procs, progress))
            if parallel:  # pragma: no mutate block (process plumbing)
                mine, others = _share(streams, procs)
                expect_work(predictor, sum(sizes[i] for i in mine))
                jobs = [(self.name, params, options.model, parts[i], sizes[i]) for i in others]
                ours, theirs = run_jobs(procs - 1, _decode_job, jobs, progress,
                                        lambda report: [decode_lanes(predictor, parts[i], sizes[i], per, report)
                                                        for i in mine])
                got = {**dict(zip(mine, ours)), **dict(zip(others, theirs))}
                outs = [got[i] for i in range(streams)]
            else:
                expect_work(predictor, size)
                outs = [decode_lanes(predictor, p, s, per, progress) for p, s in zip(parts, sizes)]
            return np.concatenate(outs)  # one part per substream, and there is at least one

        return Decoder(decode, progress, reports_progress=True)

    def _shared_model(self, predictor: Predictor, sizes: list[int], lanes: int) -> Callable | None:
        """How this block's substreams share `predictor` instead of worker processes that load
        their own: forked copies of this process where the platform forks (`substream_forks`),
        else threads (`substream_threads`); None for worker processes. Sharing needs a codec
        whose steps share no buffer, and one lane count for every substream, whose kernel choice
        is made here, once, before the substreams start."""
        if not self.steps_share_nothing:
            return None
        counts = {LaneLayout.of(n, lanes).L for n in sizes}
        if len(counts) != 1:
            return None
        expect_work(predictor, sum(sizes))
        predictor.start(counts.pop())
        return run_forked if forking() else run_threads

    def model_sharing(self, params: dict) -> str:
        return "forks" if self.steps_share_nothing else super().model_sharing(params)

    # ---- header params ------------------------------------------------------------------------
    def params_schema(self) -> dict[str, Any]:
        from .schema import Hex, Int

        schema: dict[str, Any] = {"lanes": Int(1, MAX_LANES), self.streams_key: Int(self.min_substreams, MAX_STREAMS)}
        if self.fingerprinted:
            schema.update(threads=Int(1, 1), fingerprint=Hex(32))
        return {**super().params_schema(), **schema}

    def check_params(self, params: Any) -> None:
        super().check_params(params)
        if params["lanes"] < self.streams(params):
            from ..errors import FormatError

            raise FormatError("header parameters give a substream fewer than one lane")

    def streams(self, params: dict) -> int:
        return int(params[self.streams_key])

    def lanes_per_stream(self, params: dict) -> int:
        return max(1, params["lanes"] // self.streams(params))

    def check_fingerprint(self, predictor: Predictor, params: dict) -> None:
        found = fingerprint(predictor, self.lanes_per_stream(params))
        if found != params.get("fingerprint"):
            raise ModelMismatchError(
                f"{self.name}: the model's output on the probe input differs from the encoder's "
                "(different model, weights, library version or numerics); decoding would give garbage")


def _processes(workers: int | None, streams: int, cpus: int) -> int:
    """Processes that code a block: as asked, else one per CPU; never more than the substreams."""
    return max(1, min(int(workers or cpus), streams))


def _share(streams: int, procs: int) -> tuple[list[int], list[int]]:
    """(substreams this process codes, substreams for the procs - 1 workers): every procs-th is
    ours, so the calling process works instead of waiting and one fewer process starts."""
    mine = list(range(0, streams, procs))
    return mine, [i for i in range(streams) if i % procs]


def _encode_part(predictor: Predictor, chunk: np.ndarray, lanes: int,
                 report: Callable[[int], None] | None) -> tuple[bytes, CodingStats]:
    """One substream's payload and its own stats (returned, so that they cross a process)."""
    part = CodingStats()
    return encode_lanes(predictor, chunk, lanes, part, report), part


def split_substreams(data: np.ndarray, workers: int) -> list[np.ndarray]:
    """The block's contiguous substreams (`substream_sizes`), as views."""
    bounds = np.cumsum([0] + substream_sizes(len(data), workers))
    return [data[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


# --- worker processes: each builds its own predictor once and runs single-threaded -----------

# pragma: no mutate start
# (process plumbing: a mutant here hangs worker pools until the campaign's timeout; the
# multi-process round trips in test_hardening and test_portable cover it)
def _codec(name: str) -> PredictiveCodec:
    from . import get

    codec = get(name)
    assert isinstance(codec, PredictiveCodec)
    return codec


#: in a worker process: the one predictor it has loaded, kept across the blocks of a file
_resident: dict[str, Predictor] = {}


def _worker_predictor(name: str, params: dict, model: str | None) -> Predictor:
    key = json.dumps([name, params, model], sort_keys=True, default=str)
    if key not in _resident:
        _resident.clear()
        _resident[key] = _codec(name).decoding_predictor(params, CodingOptions(model=model))
    return _resident[key]


def _encode_job(job: tuple[str, dict, bytes]) -> tuple[bytes, CodingStats]:
    name, params, raw = job
    stats = CodingStats()
    payload = encode_lanes(_worker_predictor(name, params, None), np.frombuffer(raw, dtype=np.uint8),
                           _codec(name).lanes_per_stream(params), stats, worker_progress)
    return payload, stats


def _decode_job(job: tuple[str, dict, str | None, bytes, int]) -> np.ndarray:
    name, params, model, payload, size = job
    return decode_lanes(_worker_predictor(name, params, model), payload, size, _codec(name).lanes_per_stream(params),
                        worker_progress)
# pragma: no mutate end
