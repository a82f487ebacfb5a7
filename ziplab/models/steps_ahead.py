"""A predictor's steps computed ahead on a second thread, where its inputs are known in advance.

An encoder knows every byte before it codes the first, so the neural models' distribution for
step t + 1 does not wait for step t to be coded: `StepsAhead` computes it on a thread of its
own while the caller codes step t (`mix` encoding: the context models on one core, the models'
step on the other). The steps are the same calls, in the same order, on the same inputs, so the
bytes are the same as one thread's; decoding cannot do this (step t + 1 needs the byte step t
decodes) and does not.

The numba kernels and torch's products release the GIL, so the two threads really overlap.
OpenMP's thread count belongs to each thread: the producer sets its own, or its products would
run on every core and race the coder.
"""

from __future__ import annotations

import queue
import sys
import threading
from typing import Callable

import numpy as np

#: slots in the ring: the consumer reads one while the producer fills the next; with a queue of
#: one finished step between them, three slots are never written while read
SLOTS = 3


class StepsAhead:
    """`compute(t, out)` fills `out` (a zeroed array like `template`, reused every third step)
    with step t's result, for t in range(steps), on a daemon thread; `get(t)` returns it (in
    order, each once); `close()` stops the thread, finished or not."""

    def __init__(self, compute: Callable[[int, np.ndarray], None], steps: int, template: np.ndarray,
                 torch_threads: int = 1) -> None:
        self.slots = [np.zeros_like(template) for _ in range(SLOTS)]  # what compute leaves alone stays as given
        self.ready: queue.Queue = queue.Queue(maxsize=1)
        self.stop = threading.Event()
        self.failed: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(compute, steps, torch_threads),
                                       name="ziplab-steps-ahead", daemon=True)
        self.thread.start()

    def _run(self, compute: Callable[[int, np.ndarray], None], steps: int, torch_threads: int) -> None:
        torch = sys.modules.get("torch")
        if torch is not None and torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)
        try:
            for t in range(steps):
                if self.stop.is_set():
                    return
                compute(t, self.slots[t % SLOTS])
                while not self._put(t):
                    if self.stop.is_set():
                        return
        except BaseException as exc:  # handed to the consumer, which raises it
            self.failed = exc
            while not self._put(-1) and not self.stop.is_set():
                pass

    def _put(self, t: int) -> bool:
        try:
            self.ready.put(t, timeout=0.1)
            return True
        except queue.Full:
            return False

    def get(self, t: int) -> np.ndarray:
        done = self.ready.get()
        if done < 0 and self.failed is not None:
            raise self.failed
        if done != t:
            raise RuntimeError(f"steps ahead out of order: wanted {t}, got {done}")
        return self.slots[t % SLOTS]

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
