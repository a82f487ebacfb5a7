"""Portable coding: files decode on any CPU kind.

- Golden files written by earlier versions (format 1: every classic codec and ctx; format 2: nn)
  decode to the recorded sha256 — on whatever CPU CI runs this time; format-1 nn is refused in
  one line. Never regenerate them to make a test pass: a format change adds new ones.
- Cross-kernel round trips in subprocesses: encoded under torch's scalar kernels, oneDNN/MKL
  limited to SSE4, numba compiled for a generic x86-64 (no FMA, no AVX) and one worker, then
  decoded natively with two workers, and the reverse, and again with every kernel limited to
  AVX2; the compressed bytes must be identical. Engine v2's int8 products run on oneDNN's int8
  GEMM natively (where the CPU has VNNI) and on the fp32 fallback in the limited runs.
- The deterministic arithmetic itself: accuracy of the hand-built transcendentals, thread-count
  independence, the exactness self-test refusing an inexact GEMM, and the cost of quantisation.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ziplab
from ziplab.errors import ZiplabError

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"
T1 = GOLDEN / "t1-golden.safetensors"


def _manifest() -> list[dict]:
    return [entry for name in sorted(GOLDEN.glob("*-manifest.json")) for entry in json.loads(name.read_text())]


@pytest.mark.parametrize("entry", _manifest(), ids=lambda e: e["file"])
def test_golden_file_decodes_to_its_recorded_original(entry):
    blob = (GOLDEN / entry["file"]).read_bytes()
    options = {"model": str(ROOT / entry["model"])} if entry.get("model", "shipped") not in ("shipped", "none") else {}
    if "expect_error" in entry:
        with pytest.raises(ZiplabError, match=entry["expect_error"]) as info:
            ziplab.decompress(blob, **options)
        assert "\n" not in str(info.value)
        return
    data = ziplab.decompress(blob, **options)
    assert len(data) == entry["size"] and hashlib.sha256(data).hexdigest() == entry["sha256"]


def test_golden_set_covers_every_codec():
    codecs = {e["codec"] for e in _manifest() if "expect_error" not in e}
    assert codecs == set(ziplab.codecs.names())


# ---- cross-kernel round trips --------------------------------------------------------------
#: the most portable kernels this x86 machine can be told to use: no SIMD in torch's own
#: kernels, SSE4 at most in oneDNN and MKL, a generic x86-64 target (no FMA/AVX) for numba
MINIMAL = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
           "NUMBA_CPU_NAME": "generic", "OMP_NUM_THREADS": "1"}
#: an AVX2-only machine (no AVX-512, no VNNI): oneDNN's int8 GEMM saturates there
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "NUMBA_CPU_NAME": "haswell", "OMP_NUM_THREADS": "1"}
KERNEL_VARS = (*MINIMAL, "NUMBA_CPU_FEATURES", "MKL_NUM_THREADS")

CASES = [  # (name, codec, level, options)
    ("nn-lstm", "nn", None, {"lanes": 8}),  # the shipped LSTM
    ("nn-transformer", "nn", None, {"lanes": 8, "model": str(T1)}),
    ("ctx3", "ctx", 3, {"lanes": 4, "workers": 2}),  # ctx (format 1) makes one substream per worker
    ("mix-none", "mix", 1, {"lanes": 4, "model": "none"}),
    ("mix-transformer", "mix", 1, {"lanes": 8, "model": str(T1)}),
]

SCRIPT = r"""
import hashlib, json, sys
from pathlib import Path
import ziplab
from tests.test_portable import CASES, payload
out, workers, other = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
data = payload()
for name, codec, level, options in CASES:
    options = {"workers": workers, **options}
    (out / (name + ".zl")).write_bytes(ziplab.compress(data, codec, level, **options))
if other != "-":
    for name, codec, level, options in CASES:
        model = {"model": options["model"]} if "model" in options else {}
        assert ziplab.decompress((Path(other) / (name + ".zl")).read_bytes(), workers=workers, **model) == data, name
from ziplab.models import load_model
from ziplab.models.portable.int8mm import IntMM
pred = load_model(None)
pred.start(4)
kernel = pred.kernel
for lin in pred.engine.linears():
    lin.use(IntMM())
print("kernel", kernel, all(lin.exact_at(4) for lin in pred.engine.linears()))
print("ok")
"""


def payload() -> bytes:
    """70 KB of English-like text with binary runs: above the size where substreams go to worker
    processes, so two workers really run in two processes."""
    words = b"the of and to in that it was for on with as his he be at by which had this from or her".split()
    rng = np.random.default_rng(11)
    text = b" ".join(words[i] for i in rng.integers(0, len(words), 12_000))
    return text[:60_000] + bytes(range(256)) * 8 + text[60_000:70_000]


def _run(env_extra: dict, out: Path, workers: int, other: Path | None) -> tuple[str, bool]:
    """Encode CASES into out (and decode other's files); returns the int8 kernel chosen there and
    whether oneDNN's int8 GEMM (torch._int_mm) is exact there."""
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_VARS}
    env.update(env_extra)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out.mkdir()
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(out), str(workers), str(other or "-")],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-3000:]
    kernel, int_mm_exact = res.stdout.split("kernel ")[1].split()[:2]
    return kernel, int_mm_exact == "True"


def has_int8_dot_products() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & set(flags))


def test_cross_kernel_round_trips_give_identical_bytes(tmp_path):
    native, minimal, avx2 = tmp_path / "native", tmp_path / "minimal", tmp_path / "avx2"
    kernel, int_mm_exact = _run({}, native, workers=1, other=None)
    assert int_mm_exact == has_int8_dot_products()  # VNNI/AMX: oneDNN's int8 GEMM is exact
    for env, out, workers, other in ((MINIMAL, minimal, 2, native), (AVX2, avx2, 1, minimal)):
        limited, int_mm_exact = _run(env, out, workers=workers, other=other)
        assert limited != "int_mm" and not int_mm_exact  # its int16 pair sums saturate without VNNI
    for name, codec, level, options in CASES:
        a, b = (native / f"{name}.zl").read_bytes(), (minimal / f"{name}.zl").read_bytes()
        assert a == b == (avx2 / f"{name}.zl").read_bytes(), name
        model = {"model": options["model"]} if "model" in options else {}
        assert ziplab.decompress(b, workers=2, **model) == payload()


# ---- the arithmetic ------------------------------------------------------------------------
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


def test_exactness_self_test_refuses_an_inexact_gemm():
    import torch

    from ziplab.models.portable.exactmm import ExactLinear, InexactArithmeticError

    rng = np.random.default_rng(0)
    lin = ExactLinear(rng.normal(size=(300, 40)))
    lin.self_test()
    assert np.abs(lin.q).max() == 127 and lin.limit * np.abs(lin.q).sum(axis=0).max() < 1 << 24
    lin.weight = torch.from_numpy(lin.q + np.float32(1e-3))  # what a bf16/TF32 math mode amounts to
    with pytest.raises(InexactArithmeticError):
        lin.self_test()


@pytest.mark.parametrize("spec", [None, str(T1)], ids=["shipped-lstm", "t1"])
def test_probabilities_do_not_depend_on_the_thread_count(spec):
    from ziplab.models import load_model
    from ziplab.models.portable import PortablePredictor

    assert PortablePredictor(load_model(spec).model, "x", threads=0).threads == 1  # at least one

    one, two = load_model(spec, threads=1), load_model(spec, threads=2)
    lanes = 128
    s1, s2 = one.start(lanes), two.start(lanes)
    prev = np.full(lanes, 256, dtype=np.int64)
    rng = np.random.default_rng(3)
    for _ in range(12):
        p1, _ = one.step(s1, prev)
        p2, _ = two.step(s2, prev)
        assert p1.tobytes() == p2.tobytes()
        prev = rng.integers(32, 127, lanes)


def test_quantised_shipped_model_costs_under_1_percent_of_cross_entropy():
    """On 32 KiB of the built-in corpus's held-out split (text the shipped model never saw):
    portable coding's ideal bits against the float model's cross-entropy over the same lanes."""
    from ziplab.corpora import load_corpus
    from ziplab.models import load_model
    from ziplab.models.train import heldout_bits

    data = np.frombuffer(load_corpus("stdlib").heldout()[:32768], dtype=np.uint8)
    lanes = 16
    pred = load_model(None)
    streams = data.reshape(lanes, -1)
    state, prev, bits = pred.start(lanes), np.full(lanes, 256, dtype=np.int64), 0.0
    for t in range(streams.shape[1]):
        probs, state = pred.step(state, prev)
        bits -= np.log2(probs[np.arange(lanes), streams[:, t]].astype(np.float64)).sum()
        prev = streams[:, t].astype(np.int64)
    ref = heldout_bits(pred.model, data, lanes=lanes)
    assert bits / ref < 1.01, bits / ref


# ---- the arithmetic at its edges (written against the kernels' surviving mutants) -----------
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
    from ziplab.models.portable.transformer import position_angles, attend_weights, layernorm_rows, exact_rope_frequencies

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


def test_self_test_refuses_a_limit_past_the_bound_even_where_fp32_gets_it_right():
    import torch

    from ziplab.models.portable import PortablePredictor
    from ziplab.models.portable.exactmm import ExactLinear, InexactArithmeticError, pin_exact_matmul

    def tiny_lstm():
        from ziplab.models.ladder import build_model, rung

        return build_model("lstm", rung("l0").config)

    lin = ExactLinear(np.ones((2, 1)))  # q = [[127], [127]]: the bound row sums 2 x 127 x limit
    lin.self_test()
    lin.limit = (1 << 24) // 254 + 1  # 16,777,462: past 2^24, yet even, so fp32 holds it exactly
    with pytest.raises(InexactArithmeticError):
        lin.self_test()
    lin = ExactLinear(np.ones((2, 1)))
    real_mm = torch.mm
    bound = 254 * lin.limit

    def loses_large_negatives(a, b, **kw):  # a GEMM inexact on one side of zero only
        out = real_mm(a, b, **kw)
        return out - (out < -0.9 * bound).float()

    def loses_large_positives(a, b, **kw):
        out = real_mm(a, b, **kw)
        return out + (out > 0.9 * bound).float()

    for inexact in (loses_large_negatives, loses_large_positives):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(torch, "mm", inexact)
            with pytest.raises(InexactArithmeticError):
                lin.self_test()  # the bound is tried with both signs
            with pytest.raises(InexactArithmeticError):  # and a v1 predictor runs it before coding
                PortablePredictor(tiny_lstm(), "x", engine="lstm-int8-v1")
    at_bound = ExactLinear(np.array([[1.0], [1 / 127]]))  # q = [[127], [1]]: column sum 128
    at_bound.limit = (1 << 24) // 128  # the bound row sums to exactly 2^24: not strictly below
    with pytest.raises(InexactArithmeticError):
        at_bound.self_test()
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")
        pin_exact_matmul()
        assert torch.get_float32_matmul_precision() == "highest"
    finally:
        torch.set_float32_matmul_precision(before)


def test_transformer_attention_limits_keep_every_product_below_2_24():
    from ziplab.models.ladder import LADDER, build_model
    from ziplab.models.portable.arith import EXACT
    from ziplab.models.portable.transformer import VALUE_LIMIT, PortableTransformer

    for size, r in LADDER.items():
        if r.family != "transformer" or size in ("t5", "t6"):
            continue
        eng = PortableTransformer(build_model(r.family, r.config))
        assert eng.qk_limit ** 2 * eng.hd < EXACT <= (eng.qk_limit + 1) ** 2 * eng.hd, size  # tight and safe
        assert (eng.weight_sum + eng.T // 2 + 1) * VALUE_LIMIT < EXACT, size


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
    from ziplab.models.portable.transformer import attend_weights

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
    from ziplab.models.portable.transformer import attend_out

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
