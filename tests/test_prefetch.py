"""The cache hint the context-mixing kernels issue (`kernels.prefetch`): it compiles for every
array type the engine passes, changes no value, and an address outside the array is harmless."""

import numpy as np
from numba import njit

from ziplab.codecs.kernels.prefetch import prefetch


@njit(cache=False)
def _hinted_sum(a, flat_hints):
    total = 0
    for i in range(flat_hints.size):
        prefetch(a, flat_hints[i])
    for v in a.ravel():
        total += v
    return total


def test_hints_change_no_value_and_never_fault():
    for dtype in (np.uint32, np.int32, np.int64):
        a = np.arange(2 * 3 * 33, dtype=dtype).reshape(2, 3, 33)
        hints = np.array([0, 5, a.size - 1, a.size + 4096, 1 << 40, -(1 << 30)], dtype=np.int64)
        assert _hinted_sum(a, hints) == int(a.sum())
