"""`mix`: context mixing over a pretrained neural model — adaptive context models learn this
file while the model brings what it knows of the language; a logistic mixer learns whom to
trust, bit by bit (engine: `mixing`). `--model none` is pure context mixing.

Format 4 cuts a block into substreams (two at every level; fewer for a small block), each coded
as a format-3 block of its own — its own tables, its own lanes, its own range coder — so that
forked copies of this process (threads where the platform does not fork) code them at once,
sharing the loaded model (`substream_forks`). The bytes depend on the header's counts only,
never on `-T`. Measured on 1 MiB of held-out text (l5, level 2, `benchmarks/results/mix.json`):
two substreams of 64 lanes compress *better* than one stream of 64 (the tables of a contiguous
half learn its statistics instead of those of 64 places at once) and code in about half the time
on two cores.

Levels and block layout: `mix_levels`; coding a stream and a block's substreams: `mix_stream`.

Levels (named below) trade memory, speed and neural models: each level of format 3 mixes the
shipped models its row names (`--model` replaces them with one model, or `none`). Payload:
constriction's u32 words; header params: level, lanes, mixer engine (format 3: `mixer`), model,
and for each neural model the same identity fields as `nn` (weights, engine and quantisation
digests; the second model's with the suffix `_2`), checked before any decoding work. Format 2
files (mixer engine 2, one model) keep decoding with their own level table.
"""

from __future__ import annotations

from typing import Any

from ..errors import ParameterError
from ..limits import MemoryNeed
from .base import Codec, CodingOptions, CodingStats, Decoder, Encoder, Progress
from .kernels import mixing
from .lanes import MAX_LANES, LaneLayout
from .mix_levels import (  # noqa: F401 - the level table, read as mix.NAME by benchmarks and tests
    FAST_MODEL,
    LANES_PER_SUBSTREAM,
    LEVELS,
    LEVELS_V2,
    MIXER,
    STRONG_MODEL,
    SUBSTREAM_MIN_BYTES,
    Level,
    block_substreams,
    level_table,
    mixer_of,
    stream_params,
    table_bits,
)
from .mix_stream import (
    Tables,
    decode_block,
    decode_substreams,
    encode_block,
    encode_substreams,
    threaded,
)
from .predictive import MAX_STREAMS as MAX_SUBSTREAMS

NONE = "none"


def _nn():
    from . import get

    return get("nn")



MODEL_KEYS = ("model", "model_sha256", "engine", "quant_sha256", "family", "size", "config")
SECOND = "_2"  # suffix of the second model's header fields


def model_fields(params: dict, j: int) -> dict | None:
    """Model j's identity fields under their `nn` names (None when the header has no model j)."""
    suffix = "" if j == 0 else SECOND
    if params.get("model") == NONE or f"model{suffix}" not in params:
        return None
    return {k: params[k + suffix] for k in MODEL_KEYS}


class MixCodec(Codec):
    name = "mix"
    summary = "context mixing (orders 0-6, word, match) + a neural model's prediction, SSE; constriction"
    format_version = 4
    older_versions = (2, 3)
    block_size = 16 << 20  # the context models learn across a whole block: big blocks compress better
    levels = (1, 3)
    default_level = 2
    #: the coder's probabilities are 16-bit, clamped to [1, 65535]: a bit costs >= 2.2e-5 bits,
    #: a byte >= 1.8e-4, so a payload byte holds at most ~45,000 bytes
    max_ratio = float(1 << 16)
    model_driven = True
    lane_threads = True  # format 2/3 (one stream per block): threads share each model's lanes

    # ---- the coding interface -----------------------------------------------------------
    def open_encoder(self, level: int | None = None, options: CodingOptions = CodingOptions(),
                     progress: Progress | None = None, stats: CodingStats | None = None) -> Encoder:
        """Each block in the level's substreams (`block_substreams`; no more than the lanes),
        coded at once by up to `workers` processes (default: one per CPU) — the bytes are the same
        at any count. `--engine` naming an older engine writes format 3 (one stream per block, 64
        lanes by default), which the ziplab versions that wrote that engine decode."""
        level = self.check_level(level)
        if options.lanes is not None and not 1 <= int(options.lanes) <= MAX_LANES:
            raise ParameterError(f"lanes must be between 1 and {MAX_LANES}")
        params: dict[str, Any] = {"level": level, "mixer": MIXER}
        specs = LEVELS[level].models if options.model is None else (str(options.model),)
        predictors = []
        if specs == (NONE,):
            if options.engine is not None:
                raise ParameterError("mix: --engine names a model's engine, and this level codes without a model")
            params["model"] = NONE
        nn = _nn()
        for j, spec in enumerate(s for s in specs if s != NONE):
            fields = nn.model_params(None, CodingOptions(model=spec, engine=options.engine))
            predictor = nn.build_predictor(fields)
            fields.update(nn.describe(predictor))
            params.update({k + (SECOND if j else ""): v for k, v in fields.items()})
            predictors.append(predictor)
        cpus = _cpus(options)
        if options.engine is not None and _older_engine(params):
            params["lanes"] = LANES_PER_SUBSTREAM if options.lanes is None else int(options.lanes)
            models, tables = threaded(predictors, cpus, params["lanes"]), Tables()
            return Encoder(params, lambda data: encode_block(data, params, models, stats, progress, tables, cpus > 1),
                           progress, stats, reports_progress=True, version=3)
        streams = LEVELS[level].substreams
        params["lanes"] = LANES_PER_SUBSTREAM * streams if options.lanes is None else int(options.lanes)
        params["substreams"] = min(streams, params["lanes"])  # --lanes 1: one stream of one lane
        pool: list[Tables] = []
        return Encoder(params, lambda data: encode_substreams(data, params, predictors, cpus, stats, progress, pool),
                       progress, stats, reports_progress=True)

    def open_decoder(self, params: dict, options: CodingOptions = CodingOptions(),
                     progress: Progress | None = None) -> Decoder:
        """`--model` stands in for the first model (a checkpoint moved since encoding); the second
        is found by its header name."""
        options.refuse(self.name, ("model", "workers"), " when decoding")
        predictors = []
        for j in range(2):
            fields = model_fields(params, j)
            if fields is not None:
                predictors.append(_nn().decoding_predictor(fields, options if j == 0 else CodingOptions()))
        cpus = _cpus(options)
        pool: list[Tables] = []
        if "substreams" in params:
            return Decoder(lambda payload, size: decode_substreams(payload, size, params, predictors, cpus, progress,
                                                                   pool),
                           progress, reports_progress=True)
        predictors = threaded(predictors, cpus, int(params["lanes"]))
        tables = Tables()
        return Decoder(lambda payload, size: decode_block(payload, size, params, predictors, progress, tables),
                       progress, reports_progress=True)

    def decode_memory(self, params: dict, block_size: int, original_size: int) -> MemoryNeed:
        """Tables sized by a substream (`table_bits`), the fixed SSE and match tables, the lanes'
        bytes, and the neural model with one state per lane: held by each process that codes
        (format 4; one process codes every substream in turn with one set), besides the block
        and its copy. Formats 2/3: one stream, its tables held once."""
        from ..models.budget import predictor_bytes

        n = min(block_size, original_size)
        streams = block_substreams(n, params)
        sub = stream_params(params)
        part = -(-n // streams)
        lay = LaneLayout.of(max(part, 1), sub["lanes"])
        models = [f for f in (model_fields(params, j) for j in range(2)) if f is not None]
        mixer = mixer_of(params)
        tables = mixing.state_bytes(lay.L, lay.T, table_bits(params["level"], part, mixer), mixer, len(models))
        predictor = sum(predictor_bytes(f["family"], f["config"], lay.L) for f in models)
        if "substreams" not in params:
            return MemoryNeed(shared=tables + n + (1 << 20), predictor=predictor)
        return MemoryNeed(shared=2 * n + (1 << 20), predictor=tables + predictor, streams=streams)

    # ---- header params ---------------------------------------------------------------------
    def params_schema(self) -> dict[str, Any]:
        from .schema import Int

        neural = {k: v for k, v in _nn().params_schema().items() if k in MODEL_KEYS}
        second = {k + SECOND: v for k, v in neural.items()}
        return {"level": Int(*self.levels), "lanes": Int(1, MAX_LANES), "mixer": Int(MIXER, MIXER),
                "substreams": Int(1, MAX_SUBSTREAMS), **neural, **second}

    def check_params(self, params: Any) -> None:
        """Level, lanes and model always; `mixer` in format 3 headers; with a model, all of its
        fields; a second model's fields all or none (format 3 only)."""
        from ..errors import FormatError
        from .nn import check_model_config
        from .schema import check

        given = params if isinstance(params, dict) else {}
        base = {"level", "lanes", "model"} | {k for k in ("mixer", "substreams") if k in given}
        check(params, self.params_schema(), required=frozenset(base))
        if "substreams" in params:
            if "mixer" not in params:
                raise FormatError("mix header names substreams without a mixer engine")
            if params["lanes"] < params["substreams"]:
                raise FormatError("header parameters give a substream fewer than one lane")
        models = 0 if params["model"] == NONE else 1
        if models:
            missing = [k for k in MODEL_KEYS if k not in params]
            if missing:
                raise FormatError(f"header parameter {missing[0]!r} is missing")
            second = [k + SECOND for k in MODEL_KEYS if k + SECOND in params]
            if second and (len(second) != len(MODEL_KEYS) or "mixer" not in params):
                raise FormatError("mix header carries part of a second model's fields")
            models += bool(second)
        if len(params) != len(base) + len(MODEL_KEYS) * models - (1 if models else 0):
            raise FormatError("mix header names no model but carries a model's fields")
        for j in range(models):
            fields = model_fields(params, j)
            check_model_config(fields["family"], fields["config"])


    def model_sharing(self, params: dict) -> str:
        """Format 4: substreams in forked copies of this process; formats 2/3: lane threads."""
        return "forks" if "substreams" in params else "threads"

    def check_version_params(self, version: int, params: dict) -> None:
        """Format 4 headers count substreams; those of formats 2 and 3 cannot."""
        from ..errors import FormatError

        if ("substreams" in params) != (version >= 4):
            raise FormatError(f"a format {version} mix header {'lacks' if version >= 4 else 'cannot carry'} "
                              "the substream count")


def _older_engine(params: dict) -> bool:
    """Whether the first model runs an engine older than its family's newest (format 3 then)."""
    from ..models.portable import engines

    return params["engine"] != engines(params["family"])[1]


def _cpus(options: CodingOptions) -> int:
    """Threads coding may use: `-T` (default one per CPU), at most the CPUs."""
    cpus = options.resolved_limits().cpus
    return min(options.workers or cpus, cpus)



CODEC = MixCodec()
