"""`nn`: a trained byte-level model (transformer or LSTM) drives a range coder.

Coding runs the portable engine (`models.portable`): the probabilities are a pure function of
the checkpoint's weights, the input and the lane count, identical on every CPU kind, so a file
decodes on any machine that has the same checkpoint. The header names the model, the sha256 of
its float weights, the engine and the sha256 of the quantised model it derives from them; a
decoder with another model or engine says so before any decoding work.

nn files of .zl format 1 (ziplab 0.1) were coded with float/bf16 numerics that only the CPU
kind which wrote them reproduces; they get a one-line error naming their version.
"""

from __future__ import annotations

from typing import Any

from ..errors import ModelMismatchError, ParameterError, ZiplabError
from .base import CodingOptions
from .predictive import PredictiveCodec

SHIPPED = "shipped"


def check_model_config(family: str, config: dict) -> None:
    """A header's model config, within the bounds the engine codes with (else a FormatError)."""
    from ..errors import FormatError
    from ..models.budget import ModelConfigError, check_config

    try:
        check_config(family, config)
    except ModelConfigError as exc:
        raise FormatError(f"header names an impossible model: {exc}") from None
    if config.get("family", family) != family:
        raise FormatError(f"header names a {family} model whose config says {config.get('family')!r}")


class NeuralCodec(PredictiveCodec):
    name = "nn"
    summary = "neural byte predictor (transformer/LSTM), portable int8 engine + constriction range coding"
    format_version = 2
    fingerprinted = False
    streams_key = "substreams"
    min_substreams = 2
    #: the portable engines keep every buffer a step writes in the step's state: substreams are
    #: coded by forked copies of this process (Linux) or threads, sharing one model, not by worker
    #: processes that load their own (`substream_forks`, `substream_threads`)
    steps_share_nothing = True
    #: 128 lockstep lanes: faster coding than 64 (bigger matmuls), at a cost of 0.03% bpb on a
    #: 1 MiB block and 0.13% on 256 KiB (each lane starts cold); recorded in every header
    default_lanes = 128

    def version_hint(self, version: int) -> str:
        if version == 1:
            return (" (format 1 nn files hold ziplab 0.1's float numerics, which only ziplab 0.1 on the "
                    "CPU kind that wrote them can reproduce)")
        return ""

    def params_schema(self) -> dict[str, Any]:
        from .schema import Flat, Hex, Text

        return {**super().params_schema(), "model": Text(4096), "model_sha256": Hex(64), "engine": Text(64),
                "quant_sha256": Hex(64), "family": Text(16, choices=("lstm", "transformer")),
                "size": Text(16, optional=True), "config": Flat(32)}

    def check_params(self, params: Any) -> None:
        """The schema, then the model config within the bounds the engine codes exactly with."""
        super().check_params(params)
        check_model_config(params["family"], params["config"])

    def predictor_memory(self, params: dict, lanes: int) -> int:
        from ..models.budget import predictor_bytes

        return predictor_bytes(params["family"], params["config"], lanes)

    def model_params(self, level: int | None, options: CodingOptions) -> dict:
        """The header's model: the shipped default by its name (since 0.9.1; files before wrote
        "shipped", which `decoding_predictor` resolves by the weights' sha256), else the spec."""
        from ..models.checkpoint import SHIPPED_DEFAULT

        spec = options.model
        params = {"model": SHIPPED_DEFAULT if spec is None or spec == SHIPPED else str(spec)}
        if options.engine is not None:
            params["engine"] = self.chosen_engine(params["model"], options.engine)
        return params

    def chosen_engine(self, spec: str, engine: str) -> str:
        """A user's --engine, if the model's family has it (else a one-line ParameterError):
        checked before the model is built, which would otherwise fall back to the newest."""
        from ..lm.hf import is_hf_spec
        from ..models.checkpoint import read_meta, resolve
        from ..models.portable import engines

        family = "transformer" if is_hf_spec(spec) else read_meta(resolve(None if spec == SHIPPED else spec))["family"]
        known = engines(family)[0]
        if engine not in known:
            raise ParameterError(f"{self.name}: the {family} model has no engine {engine!r} (it has {', '.join(known)})")
        return engine

    def build_predictor(self, params: dict, model: str | None = None) -> Any:
        """The header's engine when decoding (a file keeps the engine that coded it); the newest
        when encoding. An hf:DIR spec is an exported lab transformer: the same weights, so the
        same bytes."""
        from ..lm.hf import is_hf_spec
        from ..models.checkpoint import load_model

        spec = model or params["model"]
        if is_hf_spec(spec):
            from ..lm.coding import portable_engine

            predictor, _ = portable_engine(spec, params.get("engine"), byte_models_only=True)
            if predictor is None:
                raise ParameterError(f"nn: {spec} is not a byte-level lab model; code it with -m lm")
            return predictor
        return load_model(None if spec == SHIPPED else spec, threads=1, engine=params.get("engine"))

    def describe(self, predictor: Any) -> dict:
        meta = getattr(predictor, "meta", {})
        return {
            "model_sha256": predictor.weights_sha256,
            "engine": predictor.engine_name,
            "quant_sha256": predictor.quant_sha256,
            "family": meta.get("family"),
            "size": meta.get("size"),
            "config": predictor.config,
        }

    def decoding_predictor(self, params: dict, options: CodingOptions) -> Any:
        """The predictor a file's header names, or a one-line error saying why it cannot be had:
        another model (weights sha256), another engine, or another quantisation."""
        try:
            if options.model is None and params.get("model") == SHIPPED:
                predictor = self.shipped_predictor(params)
            else:
                predictor = self.build_predictor(params, options.model)
        except ZiplabError as exc:
            raise ModelMismatchError(
                f"{self.name}: cannot load the model this file was encoded with ({params.get('model')}): {exc}; "
                "pass --model PATH to the matching checkpoint") from None
        if predictor.weights_sha256 != params.get("model_sha256"):
            raise ModelMismatchError(
                f"{self.name}: wrong model: the file was encoded with weights {str(params.get('model_sha256'))[:12]}…, "
                f"but {getattr(predictor, 'path', params.get('model'))} has {predictor.weights_sha256[:12]}…")
        if predictor.engine_name != params.get("engine"):
            raise ModelMismatchError(
                f"{self.name}: the file was coded by engine {params.get('engine')!r}; this ziplab has {predictor.engine_name!r}")
        if predictor.quant_sha256 != params.get("quant_sha256"):
            raise ModelMismatchError(
                f"{self.name}: the quantised model differs from the encoder's (same weights, different quantisation): "
                "the file cannot be decoded by this version")
        return predictor

    def shipped_predictor(self, params: dict) -> Any:
        """A file written before 0.9.1 with the default model says "shipped", meaning whichever
        model was the default then: the shipped model whose weights the header's sha256 names,
        the current default tried first (the first one loaded if none matches, for the error)."""
        from ..models.checkpoint import SHIPPED_DEFAULT, shipped_names

        first = None
        for name in [SHIPPED_DEFAULT, *[n for n in shipped_names() if n != SHIPPED_DEFAULT]]:
            predictor = self.build_predictor(params, name)
            if predictor.weights_sha256 == params.get("model_sha256"):
                return predictor
            first = first or predictor
        return first


CODEC = NeuralCodec()
