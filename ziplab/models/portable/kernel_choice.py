"""Which exact int8 kernel (`int8mm.KERNELS`) each product runs on, chosen when coding starts.

Which kernel runs is chosen at the coding shape: those that pass the self-test, then the
fastest, with close calls settled inside whole steps. The choice changes the speed, never the
bytes. Torch's kernels are candidates only when torch is loaded anyway or the work is worth
importing it (`TORCH_MIN_MACS`).
"""

from __future__ import annotations

import itertools
import sys
import time
from typing import Callable

import numpy as np

from . import int8mm
from .exactmm import InexactArithmeticError
from .int8mm import Int8Linear


def _time(linears: list[Int8Linear], lanes: int, reps: int = 5) -> float:
    # rows of ones, not zeros: the compiled loop skips zero inputs, and zero rows made it look
    # faster than the VNNI tiles it is 20x slower than on real rows
    xs = [np.ones((lanes, lin.k), dtype=np.int8) for lin in linears]
    outs = [np.empty((lanes, lin.n), dtype=np.int32) for lin in linears]
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for lin, x, out in zip(linears, xs, outs):
            lin.mm(x, out)
        best = min(best, time.perf_counter() - t0)
    return best


#: work (int8 multiply-adds this process will do) from which importing torch for its kernels is
#: worth it: torch loads in ~1-2 s, and the compiled loop does ~10-15 G multiply-adds/s where
#: oneDNN's int8 GEMM does 5-10x that, so from ~2^34 (the loop's ~1.5 s) torch pays for itself.
#: The shipped LSTM reaches it at ~28 KB, a 1.6M-parameter transformer at ~10 KB; below it (a
#: small file's start-up) the compiled loop runs and torch is never imported
TORCH_MIN_MACS = 1 << 34
#: where the VNNI tiles run (`VnniTiles`) no work is worth importing torch for: they multiply
#: at oneDNN's speed or faster at the engines' shapes (benchmarks/vnni_probe.py, 0.9.1), so
#: torch's kernels only compete there once torch is loaded anyway. (0.9's tiles, at ~60% of
#: oneDNN's speed, set the bar at 2^40 multiply-adds.)


class KernelChoice:
    """Per predictor: which kernel its products run on at each lane count, chosen when coding
    starts by exactness at that shape, then speed. Torch's kernels are candidates once torch is
    loaded anyway, or the work (bytes this process will code) is worth importing it."""

    def __init__(self, kernels=None) -> None:
        self.kernels = [k() for k in (int8mm.KERNELS if kernels is None else kernels)]
        self.chosen: dict[tuple[int, bool], object] = {}
        self.work = 0  # multiply-adds this process expects to do (`TORCH_MIN_MACS`)
        self.threads = 1  # torch threads the products will run with (the predictor's)

    def candidates(self) -> tuple[bool, list]:
        """Torch's kernels when torch is loaded or worth loading (never where a `fast` compiled
        kernel runs, which competes with them once torch is loaded), else the compiled kernels."""
        fast = [k for k in self.kernels if getattr(k, "fast", False) and k.available([])]
        wants_torch = "torch" in sys.modules or (not fast and self.work >= TORCH_MIN_MACS)
        found = [k for k in self.kernels
                 if k in fast or (not getattr(k, "fast", False) and k.torch == wants_torch)]
        return wants_torch, found or self.kernels

    def start(self, linears: list[Int8Linear], lanes: int, step: Callable[[], float] | None = None) -> str:
        """Pick (once per lane count) and re-check (every time) each product's kernel; returns
        their names, e.g. "int_mm" or "qlinear+int_mm" (each product may run on its own).
        `step` (seconds of a few of the engine's steps with the kernels in use) settles close
        calls between torch's kernels inside whole steps (`_by_steps`)."""
        wants_torch, kernels = self.candidates()
        chosen = self.chosen.get((lanes, wants_torch))
        if chosen is not None:
            for lin, kernel in zip(linears, chosen):
                lin.use(kernel)
            if all(lin.exact_at(lanes) for lin in linears):
                return kernel_names(chosen)
        if any(k.torch for k in kernels):
            import torch

            from .exactmm import pin_exact_matmul

            pin_exact_matmul()
            # timed with the threads coding will use: an idle second thread racing a busy core
            # made oneDNN's int8 GEMM look 80x slower than it runs, and the fp32 path was chosen
            torch.set_num_threads(self.threads)
        timings = [_exact_timings(lin, kernels, lanes) for lin in linears]
        chosen = [ranked[0][1] for ranked in timings]
        for lin, kernel in zip(linears, chosen):
            lin.use(kernel)
        if step is not None and wants_torch:
            chosen = _by_steps(linears, timings, step)
        self.chosen[(lanes, wants_torch)] = chosen
        return kernel_names(chosen)


def kernel_names(kernels: list) -> str:
    """The distinct kernels' names in product order, joined by '+'."""
    return "+".join(dict.fromkeys(k.name for k in kernels))


def _exact_timings(lin: Int8Linear, kernels: list, lanes: int) -> list[tuple[float, object]]:
    """(seconds, kernel) of every kernel whose products at [lanes, K] pass the self-test,
    fastest first, timed alone (or InexactArithmeticError when none passes)."""
    found = []
    for kernel in kernels:
        if not kernel.available([lin]):
            continue
        try:
            lin.use(kernel)
            exact = lin.exact_at(lanes)
        except RuntimeError:  # a kernel this build or CPU cannot run at all (oneDNN refuses some ISAs)
            continue
        if exact:
            found.append((_time([lin], lanes), kernel))
    if not found:
        raise InexactArithmeticError(
            f"int8 matrix products on this machine are not exact on any kernel ({', '.join(k.name for k in kernels)}); "
            "is a reduced-precision math mode set?")
    return sorted(found, key=lambda pair: pair[0])


#: kernels within this factor of a product's fastest, timed alone, are tried again inside whole
#: steps (at most the two fastest per product, at most MAX_STEP_TRIALS assignments): timed
#: alone, the products' ranking was not the step's. With every library limited to AVX2, l4's
#: `int_mm_t` and `qlinear` came within 2% of each other alone and the pick flipped between
#: runs, while a step with `int_mm_t` throughout was 4-8% faster (769 against 801-889 us at 64
#: lanes); natively l5 stepped fastest with `qlinear` on both wide layers (633 against 710 us
#: with `int_mm`), which the products alone did not always show
STEP_MARGIN = 1.5
MAX_STEP_TRIALS = 8


def _by_steps(linears: list[Int8Linear], timings: list[list[tuple[float, object]]],
              step: Callable[[], float]) -> list:
    """The assignment of close candidates (`STEP_MARGIN`) whose steps run fastest; left in use."""
    options = [[kernel for t, kernel in ranked if t <= ranked[0][0] * STEP_MARGIN][:2] for ranked in timings]
    trials = list(itertools.islice(itertools.product(*options), MAX_STEP_TRIALS))
    best, best_t = trials[0], float("inf")
    if len(trials) > 1:
        for trial in trials:
            for lin, kernel in zip(linears, trial):
                lin.use(kernel)
            t = step()
            if t < best_t:
                best, best_t = trial, t
    for lin, kernel in zip(linears, best):
        lin.use(kernel)
    return list(best)
