"""The portable engine's arithmetic, function by function: hand-built transcendentals and tables,
the digest of their bits at edge points (which pins them on every machine), quantisation, softmax,
GELU and attention kernels at their edges, and the vectorised kernels against their scalar
definitions. The engine as a whole (golden files, cross-kernel runs, self-tests) is in
test_portable.py.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest


def test_hand_built_transcendentals_are_accurate():
    from ziplab.models.portable.arith import det_erf, det_exp, det_sigmoid, det_sincos, det_tanh

    for x in np.linspace(-60, 60, 2001):
        assert det_exp(x) == pytest.approx(math.exp(x), rel=1e-14)
        assert det_tanh(x) == pytest.approx(math.tanh(x), rel=1e-12, abs=1e-15)
        assert det_sigmoid(x) == pytest.approx(1 / (1 + math.exp(-x)), rel=1e-12)
    for x in np.linspace(-7, 7, 1401):
        assert det_erf(x) == pytest.approx(math.erf(x), rel=1e-13, abs=1e-15)
    for x in np.linspace(0, 2 * math.pi, 1001)[:-1]:
        s, c = det_sincos(x)
        assert s == pytest.approx(math.sin(x), abs=1e-14) and c == pytest.approx(math.cos(x), abs=1e-14)


def test_lookup_tables_track_the_functions():
    from ziplab.models.portable.arith import SIGMOID_TABLE, lut_sigmoid, lut_tanh
    from ziplab.models.portable.transformer import PHI_TABLE, gelu_rows

    from ziplab.models.portable.arith import SIG_RANGE, SIG_RES
    from ziplab.models.portable.transformer import GELU_RANGE, GELU_RES

    assert SIGMOID_TABLE.shape == (2 * SIG_RANGE * SIG_RES + 1,) and PHI_TABLE.shape == (2 * GELU_RANGE * GELU_RES + 1,)
    xs = np.linspace(-20, 20, 40_001)
    assert max(abs(lut_sigmoid(x, SIGMOID_TABLE) - 1 / (1 + math.exp(-x))) for x in xs) < 3e-7
    assert max(abs(lut_tanh(x, SIGMOID_TABLE) - math.tanh(x)) for x in xs) < 1e-6
    g = xs[None, :].copy()
    gelu_rows(g)
    want = np.array([0.5 * x * (1 + math.erf(x / math.sqrt(2))) for x in xs])
    assert np.abs(g[0] - want).max() < 1e-6


def _edge_points() -> np.ndarray:
    """Every branch of the deterministic functions: exp's clamps (at and past +-700), tanh's series
    (|x| < 0.01), erf's series / continued fraction / saturation (2.5, 6), the sigmoid table's
    ends and its first cell, and a dense sweep."""
    special = [-800.0, -700.0000001, -700.0, -699.9, 0.0, 1e-300, -1e-300, 0.004, -0.009, 0.0099, 0.01,
               2.4999, 2.5, 2.5001, 4.0, 5.9999, 6.0, 6.5, 699.9, 700.0, 700.5, 800.0,
               -16.002, -16.0, -15.999, -15.9961, 15.999, 16.0]
    return np.concatenate([special, np.linspace(-40, 40, 4001), np.linspace(-0.02, 0.02, 401),
                           np.linspace(2.4, 6.1, 371)])


def _arith_digest() -> str:
    from ziplab.models.portable.arith import (SIGMOID_TABLE, det_erf, det_exp, det_sigmoid, det_sincos, det_tanh,
                                              lut_sigmoid, lut_tanh)
    from ziplab.models.portable.transformer import gelu_rows

    h = hashlib.sha256()
    xs = _edge_points()
    for fn in (det_exp, det_sigmoid, det_tanh, det_erf):
        h.update(np.array([fn(x) for x in xs]).tobytes())
    for fn in (lut_sigmoid, lut_tanh):
        h.update(np.array([fn(x, SIGMOID_TABLE) for x in xs]).tobytes())
    angles = np.linspace(0, 2 * math.pi, 2001)[:-1]
    h.update(np.array([det_sincos(a) for a in angles]).tobytes())
    g = np.linspace(-9, 9, 9001)[None, :].copy()
    gelu_rows(g)
    h.update(g.tobytes())
    h.update(_kernel_outputs())
    return h.hexdigest()


def _kernel_outputs() -> bytes:
    """The step kernels on fixed inputs: rotary angles over many positions (and their
    frequencies), layer norm, quantisation, softmax and attention weights."""
    from ziplab.models.portable.arith import quantize_rows, softmax_probs
    from ziplab.models.portable.attention import attend_weights
    from ziplab.models.portable.transformer import position_angles, layernorm_rows, exact_rope_frequencies

    out = []
    inv_freq = exact_rope_frequencies(32, 10000.0)
    out.append(inv_freq)
    cos, sin = np.zeros(16), np.zeros(16)
    for pos in range(0, 20000, 7):
        position_angles(float(pos), inv_freq, cos, sin)
        out += [cos.copy(), sin.copy()]
    rng = np.random.default_rng(11)
    x = rng.normal(size=(8, 48)) * np.geomspace(1e-3, 1e3, 48)
    ln = np.zeros_like(x)
    layernorm_rows(x, ln)
    q, scales = np.zeros((8, 48), dtype=np.float32), np.zeros(8)
    quantize_rows(x, 1000, q, 0, scales)
    probs = np.zeros((8, 256), dtype=np.float32)
    logits = rng.normal(size=(8, 256)) * 6
    logits[1, 1], logits[2, 255], logits[3, 0] = 40.0, 40.0, 40.0  # the maximum first, second and last
    softmax_probs(logits, probs, 1e-6)
    scores = rng.integers(-40000, 40000, size=(2, 1, 2, 30)).astype(np.float32)
    wq, ws = np.zeros((2, 1, 2, 30), dtype=np.float32), np.zeros((2, 1, 2))
    attend_weights(scores, rng.uniform(1e-4, 1e-3, (2, 1, 2)), rng.uniform(1e-4, 1e-3, (2, 1, 30)),
                    rng.uniform(0.5, 2.0, (2, 1, 30)), 8131, wq, ws)
    out += [ln, q, scales, probs, wq, ws]
    return b"".join(np.ascontiguousarray(a).tobytes() for a in out)


#: the bits of the deterministic functions on _edge_points and of the step kernels on fixed
#: inputs, as every ziplab since format 2 computes them. If this changes, files written before the change may no longer decode: a change here is a
#: format change (new golden files, a new engine name), never an update of this constant.
ARITH_DIGEST = "b2429e14952349ffee21c61fc3f79db60742485d4749aba094ebd7df19b0f82f"


def test_deterministic_arithmetic_gives_its_recorded_bits():
    assert _arith_digest() == ARITH_DIGEST


def test_quantisation_edges():
    from ziplab.models.portable.arith import EXACT, input_limit, quantize_columns

    q, scale = quantize_columns(np.array([[0.0, 2.0], [0.0, -1.0]]))
    assert q[:, 0].tolist() == [0, 0] and scale[0] == 1.0  # a zero column: zeros, unit scale
    assert q[:, 1].tolist() == [127, -64] and scale[1] == 2.0 / 127
    assert input_limit(np.array([[1.0]], dtype=np.float32)) == EXACT - 1  # products stay strictly below 2^24
    assert input_limit(np.array([[1.0], [2.0]], dtype=np.float32)) == (EXACT - 1) // 3 == 5592405
    assert input_limit(np.zeros((2, 2), dtype=np.float32)) == EXACT - 1


def test_softmax_does_not_depend_on_where_the_logits_sit():
    from ziplab.models.portable.arith import softmax_probs

    rng = np.random.default_rng(0)
    base = rng.normal(size=(3, 256)) * 4
    for shift in (0.0, 500.0, -500.0):
        probs = np.zeros((3, 256), dtype=np.float32)
        softmax_probs(base + shift, probs, 0.0)
        want = np.exp(base - base.max(axis=1, keepdims=True))
        assert np.allclose(probs, want / want.sum(axis=1, keepdims=True), rtol=1e-6, atol=1e-12), shift


def test_gelu_is_exactly_zero_at_and_below_the_table_and_angles_reduce_into_range():
    from ziplab.models.portable.arith import TWO_PI
    from ziplab.models.portable.transformer import GELU_RANGE, position_angles, gelu_rows

    g = np.array([[-GELU_RANGE, -GELU_RANGE - 0.0005, -GELU_RANGE - 3.0]])
    gelu_rows(g)
    assert g.tolist() == [[0.0, 0.0, 0.0]]
    cos, sin = np.zeros(2), np.zeros(2)
    a = np.nextafter(17 * TWO_PI, 0.0)  # a / 2pi rounds up to 17: a - 17 * 2pi is -1.4e-14
    assert a - math.floor(a / TWO_PI) * TWO_PI < 0
    position_angles(1.0, np.array([a, 0.0]), cos, sin)
    assert sin.tolist() == [0.0, 0.0] and cos.tolist() == [1.0, 1.0]  # clamped to 0, not a negative angle


def test_attention_weights_do_not_depend_on_where_the_scores_sit():
    from ziplab.models.portable.attention import attend_weights

    base = np.array([2.0, 1.0, -1.0, 0.0])
    want = np.exp(base) / np.exp(base).sum() * 1000
    for shift in (0.0, 400.0, -400.0):
        scores = (base + shift).astype(np.float32).reshape(1, 1, 1, 4)
        wq, ws = np.zeros((1, 1, 1, 4), dtype=np.float32), np.zeros((1, 1, 1))
        attend_weights(scores, np.ones((1, 1, 1)), np.ones((1, 1, 4)), np.ones((1, 1, 4)), 1000, wq, ws)
        assert np.abs(wq[0, 0, 0] - want).max() <= 0.5 + 1e-9, shift
        assert ws[0, 0, 0] == pytest.approx(1 / 1000)


def test_gelu_just_inside_the_table_is_interpolated():
    from ziplab.models.portable.transformer import GELU_RANGE, GELU_RES, PHI_TABLE, gelu_rows

    v = -GELU_RANGE + 0.5 / GELU_RES  # half a cell in: Phi(-8) ~ 6e-16, not 0
    g = np.array([[v]])
    gelu_rows(g)
    assert g[0, 0] == v * (PHI_TABLE[0] + 0.5 * (PHI_TABLE[1] - PHI_TABLE[0])) and g[0, 0] < 0


def test_gelu_in_the_tables_last_cell_reads_its_last_entry():
    from ziplab.models.portable.transformer import GELU_RANGE, GELU_RES, gelu_rows

    v = GELU_RANGE - 0.5 / GELU_RES
    g = np.array([[v]])
    gelu_rows(g)
    assert g[0, 0] == pytest.approx(v * 0.5 * (1 + math.erf(v / math.sqrt(2))), abs=1e-9)


def test_attention_output_keeps_the_heads_in_order():
    from ziplab.models.portable.attention import attend_out

    yacc = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4)  # one lane, one kv head, 3 query heads
    out = np.zeros((1, 12))
    attend_out(yacc, np.array([[[1.0, 2.0, 3.0]]]), out)
    assert out[0].tolist() == [0, 1, 2, 3, 8, 10, 12, 14, 24, 27, 30, 33]


def test_vectorised_kernels_give_the_scalar_bits():
    """The branch-free row kernels (written so the compiler vectorises them) return exactly the
    bits of the scalar definitions, at the clamps and the table's ends too."""
    import math

    from ziplab.models.portable import arith

    rng = np.random.default_rng(7)
    edges = [0.0, -0.0, 16.0, -16.0, 15.999999999, -15.999999999, 1e300, -1e300, 1 / 256, -1 / 512, 5e-324]
    x = np.concatenate([edges, rng.normal(size=5000) * 9, rng.normal(size=500) * 1e-6])
    got = np.empty_like(x)
    arith.lut_sigmoid_rows(x, got)
    want = np.array([arith.lut_sigmoid(v, arith.SIGMOID_TABLE) for v in x])
    assert np.array_equal(got.view(np.int64), want.view(np.int64))

    shifted = -np.abs(np.concatenate([edges, rng.normal(size=5000) * 300, [699.9999, 700.0, 700.0001, 1e5]]))
    got = np.empty_like(shifted)
    arith.exp_rows(shifted, got)
    want = np.array([arith.det_exp(v) for v in shifted])
    assert np.array_equal(got.view(np.int64), want.view(np.int64))

    from ziplab.models.portable.transformer import GELU_RANGE, GELU_RES, PHI_TABLE, gelu_rows

    def scalar_gelu(v):  # the definition: 0 below the table, v above it, interpolated inside
        u = (v + GELU_RANGE) * GELU_RES
        if u <= 0.0:
            return 0.0
        if u >= 2 * GELU_RANGE * GELU_RES:
            return v
        i = int(u)
        return v * (PHI_TABLE[i] + (u - i) * (PHI_TABLE[i + 1] - PHI_TABLE[i]))

    g = np.concatenate([edges, [GELU_RANGE, -GELU_RANGE, GELU_RANGE - 1e-12], rng.normal(size=3000) * 4])[None, :]
    want = np.array([scalar_gelu(v) for v in g[0]])
    gelu_rows(g)
    assert np.array_equal(g[0].view(np.int64), want.view(np.int64))

    def scalar_quantize(row, limit):  # the definition: max |x|, step, round half up, clamp
        m = max(abs(v) for v in row)
        s = m / limit if m > 0.0 else 1.0
        inv = 1.0 / s
        return [min(max(math.floor(v * inv + 0.5), -limit), limit) for v in row], s

    rows = rng.normal(size=(6, 300)) * rng.random((6, 1)) * 50
    rows[1] = 0.0
    rows[2] = -0.0
    rows[3, 17] = -1e300
    for limit, dtype in ((127, np.int8), (30000, np.float32)):
        out, scales = np.zeros(rows.shape, dtype=dtype), np.zeros(len(rows))
        arith.quantize_rows(rows, limit, out, 0, scales)
        for r, row in enumerate(rows):
            q, s = scalar_quantize(row, limit)
            assert out[r].tolist() == q and scales[r] == s
