"""`ctx`: an adaptive order-k context-count model drives the same range coder as `nn`.

No training and no torch: a classic statistical point on the bpb curve, and a check of the
lane-coding path that does not depend on neural numerics."""

from __future__ import annotations

from typing import Any

from .predictive import PredictiveCodec


class ContextCodec(PredictiveCodec):
    name = "ctx"
    summary = "adaptive order-k context counts + constriction range coding (level = order)"
    levels = (0, 6)
    default_level = 2
    default_lanes = 16

    def predictor_memory(self, params: dict, lanes: int) -> int:
        from ..models.context import ContextPredictor

        return ContextPredictor.memory(int(params["level"]), lanes)

    def build_predictor(self, params: dict, model: str | None = None) -> Any:
        from ..models.context import ContextPredictor

        return ContextPredictor(order=int(params["level"]))

CODEC = ContextCodec()
