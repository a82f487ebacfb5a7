"""Portable inference: the predictor the `nn` codec codes with, bit-identical on every machine.

A trained float model is quantised on load (int8 weights per output column, per-lane dynamic
input scales) by a computation that itself uses only reproducible arithmetic, so the same
checkpoint gives the same quantised model — and the same probabilities, byte after byte — on
any CPU kind, SIMD level, BLAS, thread count, and whether the model was trained on a CPU or a
GPU. See `arith` for the two rules that make that true.

Engines (recorded in every header; an old one keeps its meaning forever):
v1 (`*-int8-v1`) multiplies int8 weights by integer rows up to an fp32-exact bound on the fp32
GEMM (`exactmm`); v2 (`*-int8x8-v2`, the transformer's default) quantises each row to int8 and
multiplies int8 x int8 -> int32 on the fastest exact kernel (`int8mm`); the LSTM's v3
(`lstm-int8x8-v3`) keeps v2's products and does the rest in float32 without tables
(`arith32`); its v4 (`lstm-int8x7-v4`, its default) is v3 with 7-bit rows, which CPUs without
VNNI also multiply exactly on their int8 instructions. Every product path is self-tested at the
coding shape when coding starts, so a machine or a host setting that makes them inexact is
refused before a byte is coded.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from ...hardware import restores_torch_state
from ..predictor import BOS, check_prev, sha256_arrays


def engines(family: str) -> tuple[dict[str, Any], str]:
    """(engine name -> its dense product, the default engine) for a model family."""
    if family == "lstm":
        from . import lstm

        return lstm.ENGINES, lstm.ENGINE
    if family == "transformer":
        from . import transformer

        return transformer.ENGINES, transformer.ENGINE
    if family == "llama":
        from . import llama

        return llama.ENGINES, llama.ENGINE
    raise ValueError(f"no portable engine for family {family!r}")


def build_engine(model: Any, engine: str | None = None):
    """The family's engine by name; None, or a name this family does not have, gives the default
    (a decoder then compares names and says which engine the file needs)."""
    known, default = engines(model.family)
    name = engine if engine in known else default
    if model.family == "lstm":
        from .lstm import PortableLSTM

        return PortableLSTM(model, name)
    from .transformer import PortableTransformer

    return PortableTransformer(model, name)


class PortablePredictor:
    """The Predictor protocol over a portable engine. `threads` sets torch's GEMM threads (speed
    only: the results do not depend on it); `engine` names the engine (default: the newest)."""

    @restores_torch_state  # building runs the self-test, which pins torch's settings: not the caller's
    def __init__(self, model: Any, name: str, threads: int = 1, engine: str | None = None) -> None:
        self._setup(build_engine(model, engine), name, threads, model.cfg.to_dict())
        self._model = model.eval()
        self._weights_sha: str | None = None
        self._sizes = (model.num_params(), model.non_embedding_params())

    @classmethod
    @restores_torch_state
    def from_engine(cls, engine: Any, name: str, config: dict, sizes: tuple[int, int], load_float: Any = None,
                    threads: int = 1) -> "PortablePredictor":
        """Around an engine built elsewhere (a Hugging Face Llama: `llama.PortableLlama`); its
        identity is the directory's, so `load_float` gives the float module only on demand."""
        self = cls.__new__(cls)
        self._setup(engine, name, threads, config)
        self._model = None
        self.load_float = load_float
        self._weights_sha = None
        self._sizes = (int(sizes[0]), int(sizes[1]))
        return self

    @classmethod
    @restores_torch_state
    def from_cache(cls, arrays: dict[str, np.ndarray], info: dict, name: str, threads: int = 1) -> "PortablePredictor":
        """From a quantised-model cache entry (`cache`): neither the torch model nor torch needed."""
        family = info["family"]
        if family == "lstm":
            from .lstm import PortableLSTM as Engine
        else:
            from .transformer import PortableTransformer as Engine  # type: ignore[assignment]
        self = cls.__new__(cls)
        self._setup(Engine.from_arrays(arrays, info["dims"], info["engine"]), name, threads, info["config"])
        self._model = None
        self._weights_sha = info["weights_sha256"]
        self._sizes = (int(info["num_params"]), int(info["non_embedding_params"]))
        return self

    def _setup(self, engine: Any, name: str, threads: int, config: dict) -> None:
        from .cache import quant_sha256
        from .int8mm import Int8Linear
        from .kernel_choice import KernelChoice

        self.name = name
        self.threads = max(1, int(threads))
        self.config = config
        self.engine = engine
        self.engine_name = engine.engine
        self.kernels = KernelChoice() if all(isinstance(lin, Int8Linear) for lin in engine.linears()) else None
        if self.kernels is not None:
            self.kernels.threads = self.threads
        self.kernel = "fp32"
        self.path: Any = None
        self.load_float: Any = None  # () -> the float module, for a predictor built from the cache
        self.check_products(8)
        self.quant_sha256 = quant_sha256(engine.arrays(), self.engine_name)

    def cache_info(self, family: str) -> dict:
        """What a cache entry records beside the engine's arrays."""
        return {"engine": self.engine_name, "family": family, "dims": self.engine.dims(), "config": self.config,
                "weights_sha256": self.weights_sha256, "quant_sha256": self.quant_sha256,
                "num_params": self._sizes[0], "non_embedding_params": self._sizes[1]}

    @property
    def model(self) -> Any:
        """The float torch module (built on first use by `load_float`, which whoever made this
        predictor from the cache sets: the checkpoint's reader, so this module imports none)."""
        if self._model is None:
            if self.load_float is None:
                raise ValueError("this predictor has no float model to load")
            self._model = self.load_float()
        return self._model

    @property
    def weights_sha256(self) -> str:
        """Hash of the float weights as stored in the checkpoint (identifies the model file's content)."""
        if self._weights_sha is None:
            self._weights_sha = sha256_arrays({k: v.detach().cpu().numpy() for k, v in self.model.state_dict().items()})
        return self._weights_sha

    def num_params(self) -> int:
        return self._sizes[0]

    def non_embedding_params(self) -> int:
        return self._sizes[1]

    def expect(self, nbytes: int) -> None:
        """How many bytes this process is about to code: with the products' multiply-adds per
        byte, decides whether torch's kernels are worth importing (`kernel_choice.TORCH_MIN_MACS`).
        Speed only."""
        if self.kernels is not None:
            per_byte = sum(lin.k * lin.n for lin in self.engine.linears())
            self.kernels.work = max(self.kernels.work, int(nbytes) * per_byte)

    def check_products(self, lanes: int) -> None:
        """Every product path at the coding shape (dense rows = lanes; batched attention), exact
        or InexactArithmeticError; v2 also picks its kernel here. One product per matrix: cheap."""
        linears = self.engine.linears()
        if self.kernels is not None:
            self.kernel = self.kernels.start(linears, lanes, step=lambda: self._step_seconds(lanes))
        else:
            for layer in linears:
                layer.self_test(lanes)
        if hasattr(self.engine, "attention_exact_at"):
            self.engine.self_test(lanes)

    def _step_seconds(self, lanes: int, steps: int = 4, rounds: int = 3) -> float:
        """Best of `rounds` of `steps` engine steps from a fresh state, after one untimed step:
        how the kernel choice compares close candidates inside whole steps. Speed only."""
        state = self.engine.start(lanes)
        prev = np.full(lanes, BOS, dtype=np.int64)
        self.engine.step(state, prev)
        best = float("inf")
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(steps):
                self.engine.step(state, prev)
            best = min(best, time.perf_counter() - t0)
        return best

    def start(self, lanes: int) -> Any:
        self.check_products(int(lanes))  # may import torch (its kernels): set its threads after
        torch = sys.modules.get("torch")
        if torch is not None and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        return self.engine.start(int(lanes))

    def step(self, state: Any, prev: np.ndarray) -> tuple[np.ndarray, Any]:
        prev = check_prev(prev, state.lanes)
        return self.engine.step(state, prev).copy(), state
