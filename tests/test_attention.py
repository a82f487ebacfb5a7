"""The attention kernel (`portable.attention.attend_lanes`) computes exactly its definition:
float64 integer products, then `attend_weights` row by row, then the weighted sums and
`attend_out`. Transformer and Llama files depend on these bits; the kernel's layout (int16,
transposed keys, rows worked on together in blocks of lanes) must never show in them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ziplab.models.portable import attention as A
from ziplab.models.portable.arith import exp_rows, exp_rows_bits


def _inputs(rng, L, kv, g, hd, T, extreme=False):
    qk, ws = A.limits(hd, T)
    qq = rng.integers(-qk, qk + 1, (L, kv, g, hd))
    kq = rng.integers(-qk, qk + 1, (L, kv, T, hd))
    vq = rng.integers(-A.VALUE_LIMIT, A.VALUE_LIMIT + 1, (L, kv, T, hd))
    if extreme:  # the largest scores and values the limits allow, both signs
        qq[0], kq[0], vq[0] = qk, qk, A.VALUE_LIMIT
        qq[-1], kq[-1], vq[-1] = qk, -qk, -A.VALUE_LIMIT
    qs = rng.uniform(1e-5, 1e-2, (L, kv, g))
    ks = rng.uniform(1e-5, 1e-2, (L, kv, T))
    vs = rng.uniform(1e-5, 1e-2, (L, kv, T))
    return qq, kq, vq, qs, ks, vs, ws


def _reference(qq, kq, vq, qs, ks, vs, ws, filled):
    """The definition: exact float64 products around attend_weights and attend_out."""
    L, kv, g, hd = qq.shape
    scores = np.matmul(qq.astype(np.float64), kq[:, :, :filled].astype(np.float64).transpose(0, 1, 3, 2))
    wq, steps = np.zeros(scores.shape, dtype=np.float32), np.zeros((L, kv, g))
    A.attend_weights(scores.astype(np.float32), qs, ks, vs, float(ws), wq, steps)
    yacc = np.matmul(wq.astype(np.float64), vq[:, :, :filled].astype(np.float64)).astype(np.float32)
    y = np.zeros((L, kv * g * hd))
    A.attend_out(yacc, steps, y)
    return y, steps


def _kernel(qq, kq, vq, qs, ks, vs, ws, filled):
    L, kv, g, hd = qq.shape
    kt = np.ascontiguousarray(kq.transpose(0, 1, 3, 2)).astype(A.CACHE_DTYPE)
    b = {"qq": qq.astype(A.CACHE_DTYPE), "qs": qs, "ws": np.zeros((L, kv, g)), "y": np.zeros((L, kv * g * hd)),
         "scratch": A.Scratch(L, kv, g, hd, kq.shape[2])}
    A.attend(b, kt, ks, vq.astype(A.CACHE_DTYPE), vs, filled, float(ws))
    return b["y"], b["ws"]


@pytest.mark.parametrize("L, kv, g, hd, T", [
    (1, 1, 1, 4, 8),  # one lane, one head
    (3, 2, 3, 6, 10),  # grouped queries, a width that is not a multiple of four
    (40, 2, 3, 8, 128),  # 768 cells a lane: blocks of 21 lanes, the last one smaller
    (5, 5, 1, 32, 128),  # t5's heads
])
def test_kernel_gives_the_definitions_bits(L, kv, g, hd, T):
    rng = np.random.default_rng(L * 1000 + hd)
    inputs = _inputs(rng, L, kv, g, hd, T, extreme=True)
    for filled in sorted({1, 2, 3, T // 2, T - 1, T}):
        want_y, want_s = _reference(*inputs, filled)
        got_y, got_s = _kernel(*inputs, filled)
        assert np.array_equal(got_y.view(np.int64), want_y.view(np.int64)), filled
        assert np.array_equal(got_s.view(np.int64), want_s.view(np.int64)), filled


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), L=st.integers(1, 6), kv=st.integers(1, 3), g=st.integers(1, 3),
       hd=st.sampled_from([2, 4, 6, 16]), T=st.integers(1, 24), data=st.data())
def test_kernel_gives_the_definitions_bits_on_any_shape(seed, L, kv, g, hd, T, data):
    filled = data.draw(st.integers(1, T))
    inputs = _inputs(np.random.default_rng(seed), L, kv, g, hd, T)
    want_y, want_s = _reference(*inputs, filled)
    got_y, got_s = _kernel(*inputs, filled)
    assert np.array_equal(got_y.view(np.int64), want_y.view(np.int64))
    assert np.array_equal(got_s.view(np.int64), want_s.view(np.int64))


def test_exp_without_the_power_table_gives_det_exps_bits():
    rng = np.random.default_rng(0)
    edges = [0.0, -0.0, -700.0, 700.0, np.nextafter(-700.0, 0.0), np.nextafter(-700.0, -1.0), 709.0, 1e308,
             -1e308, 5e-324, -5e-324, -745.2, 1e-300]
    x = np.concatenate([rng.uniform(-800, 800, 200_000), rng.uniform(-40, 0, 200_000),
                        np.linspace(-701, 701, 100_001), edges])
    want, got, bits = np.empty_like(x), np.empty_like(x), np.empty(x.shape[0], dtype=np.int64)
    exp_rows(x, want)
    exp_rows_bits(x, got, bits)
    assert np.array_equal(got.view(np.int64), want.view(np.int64))


def test_cache_is_int16_and_the_limits_fit_it():
    for hd in (1, 8, 32, 64, 128, 256):
        qk, ws = A.limits(hd, 4096)
        assert qk <= np.iinfo(A.CACHE_DTYPE).max and A.VALUE_LIMIT <= np.iinfo(A.CACHE_DTYPE).max
        assert hd * qk * qk < A.EXACT and (ws + 4096 // 2 + 1) * A.VALUE_LIMIT < A.EXACT
