"""Engine v2's products: int8 x int8 -> int32, exact on every kernel that is allowed to run.

- The fp32 fallback cuts K so each chunk's partial sums stay below 2^24, and gives the exact
  integers even where one chunk would not.
- A kernel that is not exact at the coding shape (a saturating vpmaddubsw int8 GEMM, emulated
  here) is never chosen; if none is exact, coding is refused.
- Every product path is checked again when coding starts: a host that makes products inexact
  after the model was loaded is caught with a one-line error before a byte is coded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ziplab.models.portable.arith import EXACT
from ziplab.models.portable.exactmm import InexactArithmeticError
from ziplab.models.portable.int8mm import (ACT_MAX, ACT_MAX7, Fp32Chunks, Int8Linear, Int8x7Linear, IntMM,
                                          IntMMWeightsFirst, NumbaInt8, OneDnnQLinear, VnniTiles, k_chunks)
from ziplab.models.portable.kernel_choice import KernelChoice
from ziplab.models.portable import vnni

#: VnniTiles where this CPU runs it (AVX-512 VNNI), a skipped case elsewhere
VNNI = pytest.param(VnniTiles, marks=pytest.mark.skipif(not vnni.supported(), reason="no AVX-512 VNNI here"))

T1 = Path(__file__).resolve().parent / "data" / "golden" / "t1-golden.safetensors"


def _exact(x: np.ndarray, lin: Int8Linear) -> np.ndarray:
    return x.astype(np.int64) @ lin.q.astype(np.int64)


def _run(lin: Int8Linear, kernel, x: np.ndarray) -> np.ndarray:
    lin.use(kernel)
    return lin.mm(x.astype(np.int8), np.empty((len(x), lin.n), dtype=np.int32))


def test_chunks_keep_every_partial_sum_below_2_24_and_cover_k():
    q = np.full((3000, 4), 127, dtype=np.int8)  # one chunk would reach 127 * 127 * 3000 > 2^24
    chunks = k_chunks(q)
    assert chunks[0][0] == 0 and chunks[-1][1] == 3000 and len(chunks) == 3
    assert all(a == b0 for (_, a), (b0, _) in zip(chunks, chunks[1:]))  # contiguous
    assert all(ACT_MAX * np.abs(q[a:b].astype(np.int64)).sum(axis=0).max() < EXACT for a, b in chunks)
    assert all(ACT_MAX * np.abs(q[a:b + 1].astype(np.int64)).sum(axis=0).max() >= EXACT for a, b in chunks[:-1])
    assert k_chunks(np.ones((5, 2), dtype=np.int8)) == [(0, 5)]


@pytest.mark.parametrize("kernel", [Fp32Chunks, NumbaInt8, IntMM, VNNI])
def test_kernels_give_the_exact_integers_past_one_chunk(kernel):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(2500, 24))
    w[:, 3] = 1.0  # a column of 127s: the fp32 path needs three chunks for it
    lin = Int8Linear(w)
    x = np.concatenate([np.full((2, 2500), ACT_MAX), -np.full((1, 2500), ACT_MAX),
                        rng.integers(-ACT_MAX, ACT_MAX + 1, (13, 2500))])
    got = _run(lin, kernel(), x)
    assert np.abs(_exact(x, lin)).max() > EXACT  # the sums really pass fp32's exact range
    assert np.array_equal(got.astype(np.int64), _exact(x, lin))
    assert lin.exact_at(16) and lin.exact_at(3)


def test_quantised_linear_is_offered_only_where_its_fp32_result_is_exact():
    """qlinear returns the int32 sum as fp32: K <= 1040 keeps 127 * 127 * K below 2^24."""
    from ziplab.models.portable.int8mm import QLINEAR_MAX_K

    assert QLINEAR_MAX_K == 1040 and 127 * 127 * QLINEAR_MAX_K < EXACT <= 127 * 127 * (QLINEAR_MAX_K + 1)
    rng = np.random.default_rng(3)
    narrow, wide = Int8Linear(rng.normal(size=(QLINEAR_MAX_K, 8))), Int8Linear(rng.normal(size=(QLINEAR_MAX_K + 1, 8)))
    assert OneDnnQLinear.available([narrow]) and not OneDnnQLinear.available([wide])
    narrow.use(OneDnnQLinear())
    if not narrow.exact_at(4):
        pytest.skip("this machine's oneDNN int8 products are not exact (no VNNI)")
    x = np.stack([np.full(QLINEAR_MAX_K, ACT_MAX), -np.full(QLINEAR_MAX_K, ACT_MAX)])
    assert np.array_equal(_run(narrow, OneDnnQLinear(), x).astype(np.int64), _exact(x, narrow))


def test_each_product_gets_its_own_kernel():
    rng = np.random.default_rng(4)
    lins = [Int8Linear(rng.normal(size=(k, n))) for k, n in ((64, 32), (1100, 16))]  # the second: too wide for qlinear
    choice = KernelChoice()
    names = choice.start(lins, 8)
    assert names == "+".join(dict.fromkeys(lin.kernel.name for lin in lins))
    assert lins[1].kernel.name != "qlinear" and all(lin.exact_at(8) for lin in lins)


def _saturating_int_mm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None,
                       shift: int = 128) -> torch.Tensor:
    """What oneDNN's int8 GEMM computes without VNNI: (a + shift) as u8 times b, pairs of
    products summed in int16 with saturation, then the shift * column-sum compensation
    subtracted (shift 128 for `_int_mm`'s s8 left operand; the zero point for qlinear)."""
    u = a.to(torch.int64) + shift
    w = b.to(torch.int64)
    K = u.shape[1] + (u.shape[1] & 1)
    u = torch.nn.functional.pad(u, (0, K - u.shape[1]))
    w = torch.nn.functional.pad(w, (0, 0, 0, K - w.shape[0]))
    pairs = (u[:, 0::2, None] * w[None, 0::2] + u[:, 1::2, None] * w[None, 1::2]).clamp(-32768, 32767)
    res = (pairs.sum(dim=1) - shift * w.sum(dim=0)).to(torch.int32)
    if out is not None:
        out.copy_(res)
        return out
    return res


def _saturating_onednn(monkeypatch) -> None:
    """oneDNN's int8 kernels as they compute without VNNI (`_saturating_int_mm`): `_int_mm`
    shifts its left operand by 128 (rows for IntMM, weights for IntMMWeightsFirst), the
    quantised linear its rows by their zero point (limit + 1). Such a CPU has no VNNI tiles either."""
    monkeypatch.setattr(VnniTiles, "available", staticmethod(lambda linears: False))
    monkeypatch.setattr(torch, "_int_mm", _saturating_int_mm)
    monkeypatch.setattr(OneDnnQLinear, "name", "qlinear-saturating")  # a new name: weights prepared anew
    monkeypatch.setattr(OneDnnQLinear, "prepare",
                        lambda self, q, limit: (torch.from_numpy(np.asarray(q, dtype=np.int8)), limit + 1))
    monkeypatch.setattr(OneDnnQLinear, "mm", lambda self, w, x, out: _saturating_int_mm(
        torch.from_numpy(x), w[0], out=torch.from_numpy(out), shift=w[1]))


def test_a_saturating_int8_gemm_is_never_chosen(monkeypatch):
    rng = np.random.default_rng(1)
    lin = Int8Linear(rng.normal(size=(64, 32)))
    a = torch.from_numpy(rng.integers(-ACT_MAX, ACT_MAX + 1, (8, 64)).astype(np.int8))
    b = torch.from_numpy(rng.integers(-64, 65, (64, 32)).astype(np.int8))  # within +-64 the pairs never saturate
    assert torch.equal(_saturating_int_mm(a, b).long(), a.long() @ b.long())  # the emulation is right
    _saturating_onednn(monkeypatch)
    for kernel in (IntMM(), IntMMWeightsFirst(), OneDnnQLinear()):
        lin.use(kernel)
        assert not lin.exact_at(8)
    choice = KernelChoice()
    assert choice.start([lin], 8) in ("fp32", "numpy")
    assert lin.kernel.name in ("fp32", "numpy") and lin.exact_at(8)


def test_seven_bit_rows_are_exact_on_a_saturating_int8_gemm_with_the_weights_first(monkeypatch):
    """Engine v4's point: rows within ±63 on the right of weights shifted to [1, 255] (or shifted
    to [1, 127] themselves) never fill an int16 pair sum: those kernels are exact, and chosen."""
    lin = Int8x7Linear(np.random.default_rng(1).normal(size=(64, 32)))
    assert lin.limit == ACT_MAX7 == 63 and lin.test_rows(np.random.default_rng(0), 8).max() == 63
    _saturating_onednn(monkeypatch)
    exact = {}
    for kernel in (IntMM(), IntMMWeightsFirst(), OneDnnQLinear()):
        lin.use(kernel)
        exact[kernel.name] = lin.exact_at(8)
    assert exact == {"int_mm": False, "int_mm_t": True, "qlinear-saturating": True}
    assert KernelChoice().start([lin], 8) in ("int_mm_t", "qlinear-saturating", "fp32", "numba")
    assert lin.exact_at(8)


def _no_exact_kernel(monkeypatch) -> None:
    """Every kernel wrong on rows past ±32 (int8 and 7-bit rows both reach it): what a GEMM
    that rounds its inputs or its sums does."""
    def off_past_32(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return out.add_((x.abs().amax() > 32).to(out.dtype))

    # _int_mm: off wherever both operands pass ±32 (rows and weights, whichever is on the left)
    monkeypatch.setattr(torch, "_int_mm", lambda a, b, out=None: off_past_32(
        torch.stack([a.abs().amax(), b.abs().amax()]).min(), _saturating_int_mm(a, b, out)))
    real_qlinear = OneDnnQLinear.mm
    monkeypatch.setattr(OneDnnQLinear, "name", "qlinear-inexact")
    monkeypatch.setattr(OneDnnQLinear, "mm", lambda self, w, x, out: (
        real_qlinear(self, w, x, out), np.add(out, np.abs(x).max() > 32, out=out)))
    real_mm = torch.mm
    monkeypatch.setattr(torch, "mm", lambda a, b, **kw: real_mm(a, b, **kw) + (a.abs().amax() > 32).float())
    real_loop = NumbaInt8.mm

    def loop_inexact(self, w, x, out):
        real_loop(self, w, x, out)
        out += np.abs(x).max() > 32

    monkeypatch.setattr(NumbaInt8, "mm", loop_inexact)
    real_tiles = VnniTiles.mm

    def tiles_inexact(self, w, x, out):
        real_tiles(self, w, x, out)
        out += np.abs(x).max() > 32

    monkeypatch.setattr(VnniTiles, "mm", tiles_inexact)


def test_no_exact_kernel_refuses_to_code(monkeypatch):
    lin = Int8Linear(np.random.default_rng(2).normal(size=(40, 16)))
    _no_exact_kernel(monkeypatch)
    with pytest.raises(InexactArithmeticError, match="not exact on any kernel"):
        KernelChoice().start([lin], 4)


def _loaded(spec):
    from ziplab.models import load_model

    return load_model(spec)


@pytest.mark.parametrize("spec", [None, str(T1)], ids=["shipped-lstm", "t1"])
def test_products_are_checked_again_when_coding_starts(spec, monkeypatch):
    """A host that, after loading, makes fp32 GEMMs and int8 GEMMs inexact (what a reduced-precision
    math mode does to products past bf16's 8 bits) gets InexactArithmeticError from start()."""
    pred = _loaded(spec)
    assert pred.kernels is not None  # an int8 x int8 engine (v2 or newer)
    pred.start(4)
    _no_exact_kernel(monkeypatch)
    with pytest.raises(InexactArithmeticError) as info:
        pred.start(4)
    assert "\n" not in str(info.value)


def test_attention_products_are_checked_at_the_coding_shape(monkeypatch):
    from ziplab.models.portable import attention

    pred = _loaded(str(T1))
    pred.start(3)
    real = attention.lane_scores

    def inexact_past_16_lanes(qq, kt, filled, out):  # wrong only in batches of more than 16 lanes
        real(qq, kt, filled, out)
        if qq.shape[0] > 16:
            out += 1

    monkeypatch.setattr(attention, "lane_scores", inexact_past_16_lanes)
    pred.start(16)
    with pytest.raises(InexactArithmeticError, match="attention"):
        pred.start(17)


def test_every_lane_count_gets_a_checked_kernel_and_the_same_probabilities():
    """The kernel may differ by lane count (speed); the probabilities may not."""
    pred = _loaded(None)
    rows = {}
    for lanes in (1, 5, 128):
        st = pred.start(lanes)
        prev = np.full(lanes, 256, dtype=np.int64)
        for b in b"The ":
            probs, st = pred.step(st, prev)
            prev = np.full(lanes, b, dtype=np.int64)
        rows[lanes] = probs[0].tobytes()
        assert all(probs[i].tobytes() == rows[lanes] for i in range(lanes))
    assert {lanes for lanes, _ in pred.kernels.chosen} >= {1, 5, 128}
    assert rows[1] == rows[5] == rows[128]


@pytest.mark.parametrize("spec", [str(T1), None], ids=["t1", "shipped-lstm"])
@pytest.mark.parametrize("kernel", [IntMM, OneDnnQLinear, Fp32Chunks, NumbaInt8, VNNI])
def test_probabilities_do_not_depend_on_the_kernel(kernel, spec, monkeypatch):
    pred = _loaded(spec)
    base = _steps(pred)
    monkeypatch.setattr("ziplab.models.portable.int8mm.KERNELS", (kernel,))
    from ziplab.models.portable import PortablePredictor

    try:
        forced = PortablePredictor(pred.model, "x", engine=pred.engine_name)
    except InexactArithmeticError:
        assert kernel in (IntMM, OneDnnQLinear)
        pytest.skip("this machine's oneDNN int8 products are not exact (no VNNI): other kernels run instead")
    assert forced.kernel == kernel.name
    assert _steps(forced) == base


def _steps(pred) -> bytes:
    lanes = 6
    st = pred.start(lanes)
    prev = np.full(lanes, 256, dtype=np.int64)
    out = []
    for t in range(20):
        probs, st = pred.step(st, prev)
        out.append(probs.tobytes())
        prev = (np.arange(lanes) * 7 + t * 13) % 256
    return b"".join(out)


def test_golden_files_cover_every_engine_and_keep_the_one_that_coded_them():
    """Each engine of each family has golden files (v1: format-2 goldens from before v2), and a
    file decodes with the engine its header names, never the newest."""
    import io
    import json

    import ziplab
    from ziplab import container
    from ziplab.models.portable import engines

    golden = T1.parent
    seen = set()
    for manifest in golden.glob("*-manifest.json"):
        for entry in json.loads(manifest.read_text()):
            if entry["codec"] in ("nn", "mix") and entry.get("model") != "none" and "expect_error" not in entry:
                seen.add(container.read_header(io.BytesIO((golden / entry["file"]).read_bytes())).params["engine"])
    assert seen == set(engines("lstm")[0]) | set(engines("transformer")[0])
    blob = (golden / "v2-text-nn-shipped.zl").read_bytes()
    pred = ziplab.codecs.get("nn").decoding_predictor(container.read_header(io.BytesIO(blob)).params,
                                                      ziplab.codecs.base.CodingOptions())
    assert pred.engine_name == "lstm-int8-v1" and pred.kernels is None


def test_a_kernel_that_cannot_run_here_is_passed_over(monkeypatch):
    def refuse(self, q, limit):
        raise RuntimeError("onednn: this ISA is not supported")

    monkeypatch.setattr(OneDnnQLinear, "name", "qlinear-refused")
    monkeypatch.setattr(OneDnnQLinear, "prepare", refuse)
    lin = Int8Linear(np.random.default_rng(5).normal(size=(64, 32)))
    choice = KernelChoice()
    assert "qlinear" not in choice.start([lin], 8) and lin.exact_at(8)


@pytest.mark.parametrize("kernel", [IntMM, IntMMWeightsFirst, OneDnnQLinear, Fp32Chunks, NumbaInt8, VNNI])
def test_products_hold_the_exact_integers_whatever_array_holds_them(kernel):
    """`products` may hand back the kernel's own float32 result (qlinear) instead of filling
    `out`: the same integers, exactly, so engines v3/v4 convert either to the same float32."""
    rng = np.random.default_rng(8)
    lin = Int8x7Linear(rng.normal(size=(96, 40)))
    x = lin.test_rows(rng, 16).astype(np.int8)
    try:
        lin.use(kernel())
        got = lin.products(np.ascontiguousarray(x), np.empty((16, 40), dtype=np.int32))
    except RuntimeError:
        pytest.skip(f"{kernel.name} does not run here")
    assert got.dtype in (np.int32, np.float32) and got.flags.c_contiguous and got.shape == (16, 40)
    if lin.exact_at(16):
        assert np.array_equal(got.astype(np.int64), _exact(x, lin))
        assert np.array_equal(got.astype(np.float32), _exact(x, lin).astype(np.float32))


def test_close_calls_between_kernels_are_settled_inside_whole_steps(monkeypatch):
    """Products timed alone within STEP_MARGIN of each other are tried again as whole steps
    (the engine's `step` timer); the fastest assignment is kept, in use, and cached."""
    import ziplab.models.portable.kernel_choice as kernel_choice

    rng = np.random.default_rng(3)
    lins = [Int8x7Linear(rng.normal(size=(64, 48))) for _ in range(2)]
    monkeypatch.setattr(kernel_choice, "_time", lambda linears, lanes, reps=5: 1.0)  # every kernel ties alone
    choice = KernelChoice(kernels=(IntMM, Fp32Chunks))
    tried = []

    def step() -> float:
        names = tuple(lin.kernel.name for lin in lins)
        tried.append(names)
        return 0.5 if names == ("fp32", "int_mm") else 1.0

    assert choice.start(lins, 8, step=step) == "fp32+int_mm"
    assert sorted(tried) == sorted([("int_mm", "int_mm"), ("int_mm", "fp32"), ("fp32", "int_mm"), ("fp32", "fp32")])
    assert [lin.kernel.name for lin in lins] == ["fp32", "int_mm"] and all(lin.exact_at(8) for lin in lins)
    tried.clear()
    assert choice.start(lins, 8, step=step) == "fp32+int_mm" and tried == []  # chosen once per lane count
    far = KernelChoice(kernels=(IntMM, Fp32Chunks))
    monkeypatch.setattr(kernel_choice, "_time", lambda linears, lanes, reps=5: 1.0 if linears[0].kernel.name == "int_mm" else 9.0)
    assert far.start(lins, 8, step=step) == "int_mm" and tried == []  # nothing close: no step is timed
