"""A predictor's lanes split over threads: one step of L lanes runs as k steps of about L/k
lanes each, at once, on k cores — for codecs whose block is one stream (`mix`), where worker
processes cannot split the work.

The probabilities do not depend on the split. The portable engines compute every lane alone:
each product row is quantised with its own scale and multiplied exactly (int32), and the
cells, norms, attention and softmax run per row; no arithmetic mixes two lanes. So a lane's
probabilities are the same in a batch of 64 or of 32 (tests/test_lane_threads.py checks it
bit for bit, both families), and the bytes are the same at any thread count. The numba kernels
release the GIL and torch's products run one intra-op thread each, so the threads really run
in parallel.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .predictor import check_prev

#: lanes each thread needs before a second one pays. Every part of a split step reads all the
#: model's weights again, and a step's products are bound by those reads at a few dozen lanes:
#: measured with l5 in `mix` (1 MiB of dev.txt, Intel Xeon, 2 cores), 64 lanes on two threads
#: coded no faster than on one (28 s either way, 40% more CPU), 256 lanes on two 1.37x faster
#: than on one (20.7 s against 28.3 s; 256 lanes cost 0.5% bpb against 64)
MIN_LANES_PER_THREAD = 128


def thread_count(wanted: int, lanes: int) -> int:
    """Threads for `lanes` lanes: as wanted, but each thread gets MIN_LANES_PER_THREAD lanes."""
    return max(1, min(int(wanted), lanes // MIN_LANES_PER_THREAD))


def lane_bounds(lanes: int, threads: int) -> list[tuple[int, int]]:
    """Contiguous lane ranges, the first ones one lane longer when `lanes` does not divide."""
    base, extra = divmod(lanes, threads)
    out, a = [], 0
    for i in range(threads):
        b = a + base + (i < extra)
        out.append((a, b))
        a = b
    return out


@dataclass
class SplitState:
    lanes: int
    bounds: list[tuple[int, int]]
    parts: list[Any]


class LaneThreads:
    """Wraps a predictor (start/step over lanes); everything else is the predictor's own."""

    def __init__(self, predictor: Any, threads: int) -> None:
        if threads < 2:
            raise ValueError("LaneThreads needs at least two threads")
        self.predictor = predictor
        self.threads = int(threads)
        self._pool: ThreadPoolExecutor | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.predictor, name)

    def start(self, lanes: int) -> SplitState:
        threads = min(self.threads, int(lanes))  # the caller chose the count (`thread_count`)
        bounds = lane_bounds(int(lanes), threads)
        if self._pool is None and threads > 1:
            self._pool = ThreadPoolExecutor(max_workers=self.threads - 1, thread_name_prefix="ziplab-lanes")
        return SplitState(int(lanes), bounds, [self.predictor.start(b - a) for a, b in bounds])

    def step(self, state: SplitState, prev: np.ndarray) -> tuple[np.ndarray, SplitState]:
        """Every part but the first on the pool, the first on this thread; probabilities stacked
        in lane order."""
        prev = check_prev(prev, state.lanes)
        jobs = [(part, prev[a:b]) for part, (a, b) in zip(state.parts, state.bounds)]
        futures = [self._pool.submit(self._step, part, p) for part, p in jobs[1:]] if self._pool else []
        results = [self.predictor.step(*jobs[0])] + [f.result() for f in futures]
        state.parts = [s for _, s in results]
        return np.concatenate([probs for probs, _ in results]), state

    def _step(self, part: Any, prev: np.ndarray) -> tuple[np.ndarray, Any]:
        """A step on a pool thread. Torch's thread count (OpenMP's) is each thread's own: a new
        thread would run its products on every core, racing the other threads."""
        torch = sys.modules.get("torch")
        if torch is not None and torch.get_num_threads() != self.predictor.threads:
            torch.set_num_threads(self.predictor.threads)
        return self.predictor.step(part, prev)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
