"""`lm`: a language model of any vocabulary codes a file as token ids (LLMZip / ts_zip style).

`--model` names the model: ``hf:DIR`` (a local Hugging Face causal LM with a byte-level BPE),
a lab checkpoint or size. Each block is tokenized exactly (`lm.tokens`: a tokenizer whose round
trip is not exact for the block is refused before coding, with the reason), and the ids are
range-coded through constriction in lockstep lanes, as `nn` codes bytes.

Where the model runs decides where the file decodes (`lm.coding`): on the portable integer
engine (lab models, exported lab transformers) on any CPU; with float inference only where the
header's `environment` (machine, kernel level, library versions, dtype, threads) is this one's —
elsewhere decoding refuses in one line before loading the model. The payload and header are
documented in docs/lm.md.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import numpy as np

from ..hardware import restores_torch_state
from ..errors import CorruptDataError, FormatError, ModelMismatchError, ParameterError, ZiplabError
from ..limits import MemoryNeed
from .base import Codec, CodingOptions, CodingStats, Decoder, Encoder, Progress
from .lanes import MAX_LANES, decode_lanes, encode_lanes

#: a lane codes at least this many tokens (fewer lanes on small blocks: each starts cold)
MIN_LANE_TOKENS = 64
#: probe ids fed at the coding lane count: a hash of the probabilities catches a float engine
#: whose numerics moved even where the recorded environment looks the same
PROBE = b"ziplab lm probe: It was the best of times, it was the worst of times."
PROBE_STEPS = 6
MAX_VOCAB = 1 << 24
#: lanes x vocabulary float32 probabilities per step (a 150K vocabulary at 1024 lanes: 600 MB)


@restores_torch_state
def probe_fingerprint(predictor: Any, lanes: int, vocab: int, start: int) -> str:
    h = hashlib.sha256()
    ids = np.frombuffer(PROBE, dtype=np.uint8).astype(np.int64) % vocab
    state = predictor.start(lanes)
    prev = np.full(lanes, start, dtype=np.int64)
    for t in range(PROBE_STEPS):
        probs, state = predictor.step(state, prev)
        h.update(np.ascontiguousarray(probs, dtype=np.float32).tobytes())
        prev = np.resize(np.roll(ids, t), lanes)
    return h.hexdigest()[:32]


class LMCodec(Codec):
    name = "lm"
    summary = "any language model (hf:DIR, lab checkpoints) codes token ids; constriction range coding"
    format_version = 2
    model_driven = True
    block_size = 1 << 20
    default_lanes = 16
    #: a token stands for at most a few hundred bytes, and one payload byte holds at most ~365,000
    #: coded tokens (constriction's 24-bit quantisation): 2^27 decoded bytes per payload byte
    max_ratio = float(1 << 27)

    # ---- header params ------------------------------------------------------------------------
    def params_schema(self) -> dict[str, Any]:
        from .schema import Hex, Int, Text

        return {"lanes": Int(1, MAX_LANES), "model": Text(4096), "model_sha256": Hex(64),
                "tokenizer_sha256": Hex(64), "engine": Text(64), "vocab": Int(2, MAX_VOCAB),
                "start": Int(0, MAX_VOCAB - 1), "quant_sha256": Hex(64), "environment": Text(256),
                "fingerprint": Hex(32), "context": Int(2, 1 << 20), "keep": Int(1, 1 << 20),
                "lane_state": Int(1, 1 << 40)}

    def decode_memory(self, params: dict, block_size: int, original_size: int) -> MemoryNeed:
        """The block (its bytes, at most one token id per byte and the lanes' grid of them), each
        lane's probability rows and, where the header records it (the portable Llama engine),
        each lane's engine state (its key/value cache); the model's own weights are checked
        against the limit when its directory is read, before it is loaded."""
        n = min(block_size, original_size)
        lanes = params["lanes"]
        return MemoryNeed(shared=3 * n + 24 * n + (1 << 20),
                          predictor=lanes * params["vocab"] * 16 + lanes * params.get("lane_state", 0))

    def check_params(self, params: Any) -> None:
        from .schema import check

        base = {"lanes", "model", "model_sha256", "tokenizer_sha256", "engine", "vocab", "start"}
        portable = isinstance(params, dict) and "quant_sha256" in params
        extra = {"quant_sha256"} if portable else {"environment", "fingerprint", "context", "keep"}
        check(params, self.params_schema(), frozenset(base | extra))
        if portable and any(k in params for k in ("environment", "fingerprint", "context", "keep")):
            raise FormatError("header mixes the portable and the float engine's parameters")
        if not portable and "lane_state" in params:
            raise FormatError("header mixes the portable and the float engine's parameters")
        if params["start"] >= params["vocab"] and not portable:
            raise FormatError("header parameter 'start' is outside the vocabulary")
        if not portable and params["keep"] > params["context"]:
            raise FormatError("header parameter 'keep' exceeds 'context'")

    # ---- the model ----------------------------------------------------------------------------
    def _model(self, spec: str, engine: str | None = None) -> Any:
        from ..lm.coding import coding_model

        return coding_model(spec, engine)

    def _header(self, m: Any, lanes: int) -> dict:
        params: dict[str, Any] = {"lanes": lanes, "model": m.name, "model_sha256": m.model_sha256,
                                  "tokenizer_sha256": m.tokenizer_sha256, "engine": m.engine,
                                  "vocab": m.tokens.vocab, "start": m.tokens.start}
        if m.portable:
            params["quant_sha256"] = m.quant_sha256
            state = _lane_state(m)
            if state is not None:
                params["lane_state"] = state
        else:
            from ..lm.model import environment

            params.update(environment=environment(threads=m.predictor.threads), context=m.context, keep=m.keep,
                          fingerprint=probe_fingerprint(m.predictor, lanes, m.tokens.vocab, m.tokens.start))
        return params

    # ---- coding -------------------------------------------------------------------------------
    def open_encoder(self, level: int | None = None, options: CodingOptions = CodingOptions(),
                     progress: Progress | None = None, stats: CodingStats | None = None) -> Encoder:
        options.refuse(self.name, ("model", "lanes"))
        self.check_level(level)
        if not options.model:
            raise ParameterError("lm needs --model: hf:DIR (a local Hugging Face model) or a lab checkpoint")
        lanes = self.default_lanes if options.lanes is None else int(options.lanes)
        if not 1 <= lanes <= MAX_LANES:
            raise ParameterError(f"lanes must be between 1 and {MAX_LANES}")
        m = self._model(str(options.model))
        params = self._header(m, lanes)

        def encode(data: np.ndarray) -> bytes:
            raw = data.tobytes()
            try:
                ids = m.tokens.encode(raw)
            except ZiplabError as exc:
                raise ParameterError(f"lm: {exc}") from None
            tick = _scaled(progress, len(raw), len(ids))
            body = encode_lanes(m.predictor, ids, lanes, stats, tick, MIN_LANE_TOKENS, m.tokens.start)
            if tick is not None:
                tick(0, final=True)
            return struct.pack("<I", len(ids)) + body

        return Encoder(params, encode, stats=stats)

    def open_decoder(self, params: dict, options: CodingOptions = CodingOptions(),
                     progress: Progress | None = None) -> Decoder:
        options.refuse(self.name, ("model", "workers"), " when decoding")
        if "environment" in params:
            from ..lm.model import environment

            here = environment(threads=1)
            if here != params["environment"]:
                raise ModelMismatchError(
                    f"lm: this file was coded with float inference on [{params['environment']}]; this machine is "
                    f"[{here}]; float results differ between them, so it cannot be decoded here")
        m = self._checked_model(params, options)

        def decode(payload: bytes, size: int) -> np.ndarray:
            if len(payload) < 4:
                raise CorruptDataError("lm payload is truncated")
            (n,) = struct.unpack("<I", payload[:4])
            if n > size or (size and not n):
                raise CorruptDataError("lm payload claims an impossible token count")
            tick = _scaled(progress, size, n)
            ids = decode_lanes(m.predictor, payload[4:], n, params["lanes"], tick, MIN_LANE_TOKENS,
                               m.tokens.start, np.int64)
            if tick is not None:
                tick(0, final=True)
            try:
                raw = m.tokens.decode(ids)
            except ZiplabError as exc:
                raise CorruptDataError(f"lm payload decodes to invalid tokens: {exc}") from None
            if len(raw) != size:
                raise CorruptDataError(f"lm payload decodes to {len(raw)} bytes, not {size}")
            return np.frombuffer(raw, dtype=np.uint8)

        return Decoder(decode, progress, reports_progress=True)

    def _checked_model(self, params: dict, options: CodingOptions) -> Any:
        spec = options.model or params["model"]
        try:
            m = self._model(spec, params["engine"])  # a file keeps the engine that coded it
        except ZiplabError as exc:
            raise ModelMismatchError(f"lm: cannot load the model this file was coded with ({params['model']}): {exc}; "
                                     "pass --model to where it is") from None
        checks = [("model", m.model_sha256, params["model_sha256"]),
                  ("tokenizer", m.tokenizer_sha256, params["tokenizer_sha256"])]
        for what, have, want in checks:
            if have != want:
                raise ModelMismatchError(f"lm: wrong {what}: the file was coded with sha256 {want[:12]}…, "
                                         f"{spec} has {have[:12]}…")
        if m.engine != params["engine"]:
            raise ModelMismatchError(f"lm: the file was coded by engine {params['engine']!r}; this model runs on {m.engine!r}")
        if (m.tokens.vocab, m.tokens.start) != (params["vocab"], params["start"]):
            raise ModelMismatchError("lm: the model's vocabulary or start token differs from the encoder's")
        if m.portable:
            if m.quant_sha256 != params["quant_sha256"]:
                raise ModelMismatchError("lm: the quantised model differs from the encoder's")
            return m
        if (m.context, m.keep) != (params["context"], params["keep"]):
            raise ModelMismatchError("lm: the coding window differs from the encoder's")
        found = probe_fingerprint(m.predictor, params["lanes"], m.tokens.vocab, m.tokens.start)
        if found != params["fingerprint"]:
            raise ModelMismatchError("lm: the model's output on the probe input differs from the encoder's "
                                     "(float numerics differ here); decoding would give garbage")
        return m


def _lane_state(m: Any) -> int | None:
    """Bytes of engine state per lane, for engines that state it (the portable Llama engine)."""
    engine = getattr(m.predictor, "engine", None)
    return int(engine.state_bytes(1)) if hasattr(engine, "state_bytes") else None


def _scaled(progress: Progress | None, size: int, n_tokens: int):
    """Progress in bytes from a coder that counts tokens (pro rata; the remainder at the end)."""
    if progress is None:
        return None
    done = {"tokens": 0, "bytes": 0}

    def tick(k: int, final: bool = False) -> None:
        done["tokens"] += k
        target = size if final else (done["tokens"] * size // max(1, n_tokens))
        if target > done["bytes"]:
            progress(target - done["bytes"])
            done["bytes"] = target

    return tick


CODEC = LMCodec()
