"""Engines v3 and v4's float32 arithmetic (`ziplab.models.portable.arith32`; v4 quantises the
product rows to ±63 instead of ±127, nothing else differs).

- Every compiled kernel gives the bits of its definition, computed here op by op with numpy's
  float32 ufuncs (each correctly rounded, none fused): at the clamps, on zero rows and on
  random rows. The compiled loops are vectorised; the reference is not.
- tanh and exp are accurate enough to be the functions the models were trained with.
- A digest of the kernels' outputs on fixed inputs is recorded per engine: their files depend
  on those bits, so a change there is a new engine, never an update of the constant.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from ziplab.models.portable import arith32 as A

f32 = np.float32


def _tanh_ref(x: np.ndarray) -> np.ndarray:
    v = np.minimum(np.maximum(x.astype(f32), -A.TANH_CLAMP), A.TANH_CLAMP)
    u = v * v
    p = A.TP0 + u * (A.TP1 + u * (A.TP2 + u * (A.TP3 + u * A.TP4)))
    q = A.ONE + u * (A.TQ1 + u * (A.TQ2 + u * (A.TQ3 + u * A.TQ4)))
    return np.minimum(np.maximum((v * p) / q, -A.ONE), A.ONE)


def _exp_ref(d: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # -3e38 * log2(e) is -inf, clamped like any other
        y = np.maximum(d.astype(f32) * A.LOG2E32, A.EXP2_MIN)
    n = np.trunc(y).astype(np.int32)
    f = y - n.astype(f32)
    frac = A.E0 + f * (A.E1 + f * (A.E2 + f * (A.E3 + f * (A.E4 + f * (A.E5 + f * A.E6)))))
    return frac * ((n + 127) << 23).astype(np.int32).view(f32)


def _sum8_ref(x: np.ndarray) -> np.float32:
    s = np.zeros(8, dtype=f32)
    for row in x.reshape(-1, 8):
        s = s + row
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))


def _quantise_ref(x: np.ndarray, qmax: np.float32 = A.ACT_MAX) -> tuple[np.ndarray, np.ndarray]:
    m = np.abs(x).max(axis=1)
    step = np.where(m > 0, m / qmax, A.ONE).astype(f32)
    v = np.floor(x * (A.ONE / step)[:, None] + A.HALF)
    return np.clip(v, -qmax, qmax).astype(np.int8), step


def _softmax_ref(logits: np.ndarray, keep: np.float32, add: np.float32) -> np.ndarray:
    out = np.empty_like(logits)
    for r, row in enumerate(logits):
        e = _exp_ref(row - row.max())
        out[r] = e * (keep / _sum8_ref(e)) + add
    return out


def _cell_ref(acc, rs, cs, base, rows, gain, c):
    H = c.shape[1]
    z = acc.astype(f32) * rs[:, None] * cs[None, :] + base[rows]
    t = _tanh_ref(z * gain[None, :])
    i, f, g, o = (t[:, k * H:(k + 1) * H] for k in range(4))
    cn = (A.HALF + A.HALF * f) * c + (A.HALF + A.HALF * i) * g
    return cn, (A.HALF + A.HALF * o) * _tanh_ref(cn)


def _edges() -> np.ndarray:
    rng = np.random.default_rng(5)
    fixed = [0.0, -0.0, 1e-30, -1e-30, 1e-7, 0.5, 1.0, 8.999, 9.0, 9.001, 20.0, 1e6, 3e38]
    return np.concatenate([fixed, np.negative(fixed), rng.normal(size=3000) * 4]).astype(f32)


def test_tanh_and_sigmoid_give_their_definitions_bits():
    x = _edges()
    out = np.empty_like(x)
    for k, v in enumerate(x):
        out[k] = A.tanh32(v)
    assert out.tobytes() == _tanh_ref(x).tobytes()
    assert np.array([A.sigmoid32(v) for v in x], dtype=f32).tobytes() == (A.HALF + A.HALF * _tanh_ref(A.HALF * x)).tobytes()


def test_exp_gives_its_definitions_bits_down_to_the_clamp():
    d = -np.abs(_edges())
    d = np.concatenate([d, np.linspace(-130, 0, 5001, dtype=f32)])
    out, bits = np.empty_like(d), np.empty(d.shape, dtype=np.int32)
    A.exp_rows32(d, out, bits)
    assert out.tobytes() == _exp_ref(d).tobytes()


def test_tanh_and_exp_are_accurate():
    x = np.linspace(-12, 12, 200001, dtype=f32)
    assert np.abs(_tanh_ref(x).astype(np.float64) - np.tanh(x.astype(np.float64))).max() < 4e-7
    d = np.linspace(-80, 0, 200001, dtype=f32)
    out, bits = np.empty_like(d), np.empty(d.shape, dtype=np.int32)
    A.exp_rows32(d, out, bits)
    rel = out.astype(np.float64) / np.exp(d.astype(np.float64)) - 1
    # the polynomial's error, plus y = d * log2(e) rounded to float32 (half an ulp of |y|) and
    # log2(e) itself rounded to float32: both grow with |d|
    assert (np.abs(rel) < 4e-7 + 8e-8 * np.abs(d)).all()


def test_sums_and_maxima_follow_their_defined_order():
    rng = np.random.default_rng(1)
    for scale in (1e-3, 1.0, 1e6):
        x = (rng.normal(size=256) * scale).astype(f32)
        assert A.sum8(x) == _sum8_ref(x)
        assert A.max8(x) == x.max()
    x = np.zeros(256, dtype=f32)
    x[255] = 1.0
    assert A.max8(x) == 1.0 and A.max8(-x) == 0.0


@pytest.mark.parametrize("qmax", [None, A.ACT_MAX7], ids=["int8-v3", "7bit-v4"])
@pytest.mark.parametrize("rows", ["random", "zero", "tiny", "one hot"])
def test_quantisers_give_their_definitions_bits(rows, qmax):
    """v3's rows (the default range, ±127) and v4's (±63)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 40)).astype(f32)
    if rows == "zero":
        x[:3] = 0
    elif rows == "tiny":
        x *= f32(1e-30)
    elif rows == "one hot":
        x[:] = 0
        x[np.arange(6), np.arange(6) * 5] = np.linspace(-3, 3, 6)
    q, step = np.zeros((6, 40), dtype=np.int8), np.zeros(6, dtype=f32)
    extra = () if qmax is None else (qmax,)
    A.quantise_rows32(x, q, step, *extra)
    want_q, want_step = _quantise_ref(x, *extra)
    assert q.tobytes() == want_q.tobytes() and step.tobytes() == want_step.tobytes()
    assert np.abs(q).max() == (qmax or A.ACT_MAX)  # every row but a zero one reaches the range's end
    a, b = np.ascontiguousarray(x[:, :15]), np.ascontiguousarray(x[:, 15:])
    q2, step2 = np.zeros_like(q), np.zeros_like(step)
    A.quantise_pair32(a, b, q2, step2, *extra)
    assert q2.tobytes() == q.tobytes() and step2.tobytes() == step.tobytes()


def test_softmax_gives_its_definitions_bits_wherever_the_maximum_sits():
    rng = np.random.default_rng(3)
    logits = (rng.normal(size=(6, 256)) * 6).astype(f32)
    logits[1, 0], logits[2, 255], logits[3, 7] = 60.0, 60.0, -60.0
    logits[4] = 0.0
    logits[5, ::2] = -200.0  # exponentials at the clamp
    keep, add = f32(1.0 - 2.0**-20), f32(2.0**-28)
    probs, e, bits = np.zeros_like(logits), np.zeros(256, dtype=f32), np.zeros(256, dtype=np.int32)
    A.softmax32(logits, probs, keep, add, e, bits)
    assert probs.tobytes() == _softmax_ref(logits, keep, add).tobytes()
    assert np.abs(probs.astype(np.float64).sum(axis=1) - 1).max() < 1e-5


def test_cell_gives_its_definitions_bits():
    rng = np.random.default_rng(4)
    L, H = 5, 24
    acc = rng.integers(-3_000_000, 3_000_000, (L, 4 * H)).astype(np.int32)
    rs, cs = rng.uniform(1e-4, 1e-2, L).astype(f32), rng.uniform(1e-5, 1e-3, 4 * H).astype(f32)
    base, rows = rng.normal(size=(257, 4 * H)).astype(f32), rng.integers(0, 257, L)
    gain = np.full(4 * H, 0.5, dtype=f32)
    gain[2 * H:3 * H] = 1.0
    c = (rng.normal(size=(L, H)) * 3).astype(f32)
    want_c, want_h = _cell_ref(acc, rs, cs, base, rows, gain, c)
    h = np.zeros((L, H), dtype=f32)
    A.lstm_cell32(acc, rs, cs, base, rows, gain, c, h, np.zeros(4 * H, dtype=f32))
    assert c.tobytes() == want_c.tobytes() and h.tobytes() == want_h.tobytes()


def _digest(qmax: np.float32 | None = None) -> str:
    """v3's kernels on fixed inputs (the default row range); with `qmax`, v4's 7-bit rows."""
    rng = np.random.default_rng(6)
    h = hashlib.sha256()
    x = _edges()
    h.update(np.array([A.tanh32(v) for v in x], dtype=f32).tobytes())
    d = np.linspace(-130, 0, 4001, dtype=f32)
    e, bits = np.empty_like(d), np.empty(d.shape, dtype=np.int32)
    A.exp_rows32(d, e, bits)
    h.update(e.tobytes())
    logits = (rng.normal(size=(4, 256)) * 8).astype(f32)
    probs, e2, b2 = np.zeros_like(logits), np.zeros(256, dtype=f32), np.zeros(256, dtype=np.int32)
    A.softmax32(logits, probs, f32(1.0 - 2.0**-20), f32(2.0**-28), e2, b2)
    q, step = np.zeros((4, 256), dtype=np.int8), np.zeros(4, dtype=f32)
    A.quantise_rows32(logits, q, step, *(() if qmax is None else (qmax,)))
    h.update(probs.tobytes() + q.tobytes() + step.tobytes())
    return h.hexdigest()


#: engine v3's bits on fixed inputs: a change here is a new engine (and new golden files)
ARITH32_DIGEST = "56c86da2fcec4ce81c4c53e86f360617ee8101a00656c4bedecbff54f156f9dd"


#: engine v4's: the same kernels, rows quantised to ±63
ARITH32_V4_DIGEST = "6e1c82ae667d94065909ba28f182b3bdee022ed0862f9b9f69cc25bfbf350efd"


def test_engine_v3_arithmetic_gives_its_recorded_bits():
    assert _digest() == ARITH32_DIGEST


def test_engine_v4_arithmetic_gives_its_recorded_bits():
    assert _digest(A.ACT_MAX7) == ARITH32_V4_DIGEST
