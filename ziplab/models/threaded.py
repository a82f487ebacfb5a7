"""A predictor's lanes stepped by several threads at once, with the same bits as one.

Every lane of a portable predictor is computed from its own row alone: inputs are quantised per
row, products are exact integers whatever the kernel, and the rest is row-wise arithmetic. So
lanes [0, L) stepped as groups [0, a), [a, b), ... give the probability rows of one batch of L,
bit for bit — the groups just run in threads (numba kernels and torch's products release the
GIL). A codec that cannot split its work among processes (`mix`, whose context tables every
lane updates in order) uses this to put more than one core on the model. The bytes never depend
on the thread count; tests check it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .predictor import check_prev

#: a group gets at least this many lanes: smaller products waste the matrix units
MIN_GROUP_LANES = 8


def lane_groups(lanes: int, threads: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) groups, as even as can be, at most `threads` of them."""
    count = max(1, min(int(threads), lanes // MIN_GROUP_LANES))
    base, extra = divmod(lanes, count)
    groups, start = [], 0
    for i in range(count):
        stop = start + base + (i < extra)
        groups.append((start, stop))
        start = stop
    return groups


@dataclass
class SplitState:
    lanes: int
    groups: list[tuple[int, int]]
    states: list[Any]
    probs: np.ndarray | None = field(default=None)


class SplitLanes:
    """Wraps a predictor whose lanes are independent (the portable engines): `step` runs each
    lane group in its own thread and joins the rows. Not for predictors whose lanes share state."""

    def __init__(self, predictor: Any, threads: int) -> None:
        self.predictor = predictor
        self.threads = max(1, int(threads))
        self._pool: ThreadPoolExecutor | None = None

    def __getattr__(self, name: str) -> Any:  # name, config, engine_name, expect, ... of the wrapped one
        if name == "predictor":
            raise AttributeError(name)
        return getattr(self.predictor, name)

    def start(self, lanes: int) -> SplitState:
        groups = lane_groups(int(lanes), self.threads)
        if len(groups) > 1 and self._pool is None:
            self._pool = ThreadPoolExecutor(len(groups) - 1, thread_name_prefix="ziplab-lanes")
        return SplitState(int(lanes), groups, [self.predictor.start(b - a) for a, b in groups])

    def step(self, state: SplitState, prev: np.ndarray) -> tuple[np.ndarray, SplitState]:
        prev = check_prev(prev, state.lanes)
        groups = state.groups
        if len(groups) == 1:
            probs, state.states[0] = self.predictor.step(state.states[0], prev)
            return probs, state
        futures = [self._pool.submit(self.predictor.step, st, prev[a:b])  # type: ignore[union-attr]
                   for (a, b), st in zip(groups[1:], state.states[1:])]
        first, state.states[0] = self.predictor.step(state.states[0], prev[groups[0][0]:groups[0][1]])
        if state.probs is None:
            state.probs = np.empty((state.lanes, first.shape[1]), dtype=first.dtype)
        state.probs[groups[0][0]:groups[0][1]] = first
        for i, ((a, b), fut) in enumerate(zip(groups[1:], futures), start=1):
            rows, state.states[i] = fut.result()
            state.probs[a:b] = rows
        return state.probs.copy(), state

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
