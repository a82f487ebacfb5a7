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
    ("mix-strongest", "mix", 3, {"lanes": 64}),  # format 3's strongest level with the shipped l5
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
from ziplab.models.portable.int8mm import IntMM, IntMMWeightsFirst, OneDnnQLinear
pred = load_model(None)
pred.start(8)
kernel = pred.kernel
exact = {}
for k in (IntMM, IntMMWeightsFirst, OneDnnQLinear):  # oneDNN's int8 products, rows left and right
    try:
        for lin in pred.engine.linears():
            lin.use(k())
        exact[k.name] = all(lin.exact_at(8) for lin in pred.engine.linears())
    except RuntimeError:  # this ISA has no such kernel
        exact[k.name] = None
print("kernel", kernel, json.dumps(exact, separators=(",", ":")))
print("ok")
"""


def payload() -> bytes:
    """70 KB of English-like text with binary runs: above the size where substreams go to worker
    processes, so two workers really run in two processes."""
    words = b"the of and to in that it was for on with as his he be at by which had this from or her".split()
    rng = np.random.default_rng(11)
    text = b" ".join(words[i] for i in rng.integers(0, len(words), 12_000))
    return text[:60_000] + bytes(range(256)) * 8 + text[60_000:70_000]


def _run(env_extra: dict, out: Path, workers: int, other: Path | None) -> tuple[str, dict]:
    """Encode CASES into out (and decode other's files); returns the int8 kernels the shipped
    LSTM (engine v4: 7-bit rows) chose there and whether each of oneDNN's int8 products is
    exact there for it (None: not offered)."""
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_VARS}
    env.update(env_extra)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out.mkdir()
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(out), str(workers), str(other or "-")],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-3000:]
    kernel, exact = res.stdout.split("kernel ")[1].split()[:2]
    return kernel, json.loads(exact)


def has_int8_dot_products() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & set(flags))


def test_cross_kernel_round_trips_give_identical_bytes(tmp_path):
    native, minimal, avx2 = tmp_path / "native", tmp_path / "minimal", tmp_path / "avx2"
    kernel, exact = _run({}, native, workers=1, other=None)
    assert exact["int_mm"] == has_int8_dot_products()  # VNNI/AMX: oneDNN's int8 GEMM is exact
    for env, out, workers, other in ((MINIMAL, minimal, 2, native), (AVX2, avx2, 1, minimal)):
        limited, exact = _run(env, out, workers=workers, other=other)
        # int8 rows on the left: vpmaddubsw's int16 pair sums saturate; never chosen
        assert exact["int_mm"] is False and "int_mm" not in limited.split("+")
        if env is AVX2:  # 7-bit rows on the right of the weights cannot saturate: exact, and used
            assert exact["int_mm_t"] is True and exact["qlinear"] is True, exact
    for name, codec, level, options in CASES:
        a, b = (native / f"{name}.zl").read_bytes(), (minimal / f"{name}.zl").read_bytes()
        assert a == b == (avx2 / f"{name}.zl").read_bytes(), name
        model = {"model": options["model"]} if "model" in options else {}
        assert ziplab.decompress(b, workers=2, **model) == payload()


# ---- the arithmetic ------------------------------------------------------------------------
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
    from ziplab.models.portable.attention import VALUE_LIMIT
    from ziplab.models.portable.transformer import PortableTransformer

    for size, r in LADDER.items():
        if r.family != "transformer" or size in ("t5", "t6"):
            continue
        eng = PortableTransformer(build_model(r.family, r.config))
        assert eng.qk_limit ** 2 * eng.hd < EXACT <= (eng.qk_limit + 1) ** 2 * eng.hd, size  # tight and safe
        assert (eng.weight_sum + eng.T // 2 + 1) * VALUE_LIMIT < EXACT, size
