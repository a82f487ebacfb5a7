"""The VNNI tiles (`portable.vnni`): exact int8 x int8 -> int32 products without torch, only
where the CPU has AVX-512 VNNI and numba targets it; where they run, a medium-sized input is
coded without importing torch, to the same bytes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ziplab.models.portable import vnni

needs_vnni = pytest.mark.skipif(not vnni.supported(), reason="no AVX-512 VNNI here")
ROOT = Path(__file__).resolve().parents[1]


def _product(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    out = np.zeros((x.shape[0], q.shape[1]), dtype=np.int32)
    vnni.mm(vnni.prepare(q), x, out)
    return out.astype(np.int64)


@needs_vnni
# tiles of 4 rows x 1-4 blocks of 16 columns, K in groups of 4: every remainder of each
@pytest.mark.parametrize("M, K, N", [(1, 1, 1), (3, 5, 7), (64, 448, 1792), (65, 224, 9), (2, 130, 17), (17, 64, 8),
                                     (5, 36, 48), (9, 101, 200), (6, 160, 33), (64, 161, 640)])
def test_tiles_give_the_exact_products(M, K, N):
    rng = np.random.default_rng(M * 7 + K)
    q = rng.integers(-127, 128, (K, N)).astype(np.int8)
    x = rng.integers(-127, 128, (M, K)).astype(np.int8)
    x[0], q[:, 0] = 127, -127  # the extremes, both signs
    x[-1] = -128
    assert np.array_equal(_product(x, q), x.astype(np.int64) @ q.astype(np.int64))


@needs_vnni
def test_the_shifted_sums_may_wrap_the_result_may_not():
    """x + 128 up to 255 against weights of 127 passes 2^31 in the accumulator long before the
    true product does; int32 wraps modulo 2^32, so the difference is still exact."""
    K = 70_000
    x = np.full((2, K), 127, dtype=np.int8)
    x[1] = -127
    q = np.full((K, 8), 127, dtype=np.int8)
    assert 255 * 127 * K > 2**31 - 1 > 127 * 127 * K
    assert np.array_equal(_product(x, q), x.astype(np.int64) @ q.astype(np.int64))


def test_limited_kernels_never_see_it(monkeypatch):
    """A run that names numba's target CPU (the benchmarks' AVX2-limited runs) gets no VNNI tiles."""
    monkeypatch.setenv("NUMBA_CPU_NAME", "haswell")
    assert not vnni.supported()
    monkeypatch.delenv("NUMBA_CPU_NAME")
    monkeypatch.setenv("NUMBA_CPU_FEATURES", "+avx2")
    assert not vnni.supported()


@needs_vnni
def test_a_medium_input_is_coded_without_torch_to_the_same_bytes():
    import ziplab

    data = (ROOT / "README.md").read_bytes()[:48_000]  # past TORCH_MIN_MACS for the shipped LSTM
    want = ziplab.compress(data, "nn")  # this process: torch's kernels; and the quantised model cached
    script = ("import sys, ziplab; data = sys.stdin.buffer.read(); z = ziplab.compress(data, 'nn'); "
              "sys.stdout.buffer.write(bytes([int('torch' in sys.modules)]) + z)")
    out = subprocess.run([sys.executable, "-c", script], input=data, capture_output=True, timeout=300,
                         cwd=ROOT, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout[0] == 0  # torch never imported
    assert out.stdout[1:] == want
