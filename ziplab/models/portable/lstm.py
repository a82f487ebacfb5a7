"""Portable LSTM step: exact int8 GEMMs, cell arithmetic from basic operations (v1/v2: float64
with table sigmoids, below; v3 and v4: float32 without tables, `arith32`, in `_step32`).

Per step and layer: the layer's input row ([h below, own h] — layer 0 only its own h, since its
byte input is a 257-row table) is quantised with one scale per lane (v1: to the layer's fp32
exactness bound; v2, v3: to int8; v4: to 7 bits), multiplied exactly, and rescaled; gates, cell
and hidden state are then float64, sigmoid and tanh interpolated in `arith`'s deterministic
table (v1, v2) or float32 rational functions (v3, v4). The output layer is one more exact GEMM
and a deterministic softmax.

v4 is v3 with 7-bit rows: ~0.02-0.03% more bpb (measured on l0, l4 and l5), and CPUs without
VNNI then multiply exactly with their int8 instructions (`int8mm`), 1.8x their fp32 GEMM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from ..predictor import FLOOR, VOCAB_OUT
from .arith import det_matmul, dequant_rows, lut_sigmoid_rows, quantize_rows, softmax_probs
from .arith32 import dequant_rows32, lstm_cell32, quantise_pair32, quantise_rows32, softmax32
from .exactmm import ExactLinear
from .int8mm import Int8Linear, Int8x7Linear

#: engine name -> its product (a header's engine says which one coded the file)
ENGINES = {"lstm-int8-v1": ExactLinear, "lstm-int8x8-v2": Int8Linear, "lstm-int8x8-v3": Int8Linear,
           "lstm-int8x7-v4": Int8x7Linear}
ENGINE = "lstm-int8x7-v4"
#: engines whose non-product arithmetic is float32 without tables (`arith32`)
FLOAT32_ENGINES = ("lstm-int8x8-v3", "lstm-int8x7-v4")


@nb.njit(cache=True, nogil=True)
def _cell(acc, row_scale, col_scale, base, rows, c, h, pre, s):
    """pre = acc * row_scale * col_scale + base[rows]; torch gate order i, f, g, o.

    c' = sigmoid(f) c + sigmoid(i) tanh(g), h' = sigmoid(o) tanh(c'), with tanh(x) = 2 sigmoid(2x) - 1
    from the table: the same operations, in the same order, as one gate at a time, but the table
    lookups run over whole rows (`lut_sigmoid_rows`, branch-free) so they vectorise. `pre` and `s`
    are scratch rows of 4H."""
    L, H = c.shape
    G = 4 * H
    for r in range(L):
        rs = row_scale[r]
        b = rows[r]
        for j in range(G):
            pre[j] = acc[r, j] * rs * col_scale[j] + base[b, j]
        for j in range(2 * H, 3 * H):
            pre[j] = 2.0 * pre[j]
        lut_sigmoid_rows(pre, s)
        for j in range(H):
            cn = s[H + j] * c[r, j] + s[j] * (2.0 * s[2 * H + j] - 1.0)
            c[r, j] = cn
            pre[j] = 2.0 * cn
        lut_sigmoid_rows(pre[:H], s[:H])
        for j in range(H):
            h[r, j] = s[3 * H + j] * (2.0 * s[j] - 1.0)


@dataclass
class LSTMState32:
    """Engine v3's state: float32 rows, int8 product inputs, int32 products."""

    lanes: int
    h: list[np.ndarray]  # float32 [L, H] per layer
    c: list[np.ndarray]
    xq: list[np.ndarray]  # int8 [L, K] per layer
    acc: list[np.ndarray]  # int32 [L, 4H]
    rs: np.ndarray  # float32 [L] row steps
    zero_rows: np.ndarray  # int64 [L]
    out_q: np.ndarray
    out_acc: np.ndarray
    logits: np.ndarray  # float32 [L, 256]
    probs: np.ndarray
    pre: np.ndarray  # float32 [4H] scratch of the cell
    e: np.ndarray  # float32 [256] scratch of the softmax
    pow2: np.ndarray  # int32 [256]


@dataclass
class LSTMState:
    lanes: int
    h: list[np.ndarray]  # float64 [L, H] per layer
    c: list[np.ndarray]
    cat: list[np.ndarray]  # float64 GEMM input rows per layer
    xq: list[np.ndarray]  # quantised inputs (v1 float32, v2 int8)
    acc: list[np.ndarray]  # products (v1 float32, v2 int32)
    rs: np.ndarray  # float64 [L] row scales
    zero_rows: np.ndarray  # int64 [L]
    out_q: np.ndarray
    out_acc: np.ndarray
    logits: np.ndarray
    probs: np.ndarray
    pre: np.ndarray  # float64 [4H] scratch rows of the cell
    gates: np.ndarray


class PortableLSTM:
    """Quantised copy of an `LSTM` module; weights are read once, a product kernel multiplies."""

    def __init__(self, model, engine: str = ENGINE) -> None:
        self._build(model, engine)
        self._derive()

    def _build(self, model, engine: str) -> None:
        self.engine = engine
        linear = ENGINES[engine]
        cfg = model.cfg
        self.H, self.n_layer = cfg.n_hidden, cfg.n_layer
        r = model.rnn
        f64 = lambda t: t.detach().double().cpu().numpy()  # noqa: E731 - exact widening of stored weights
        bias = [f64(getattr(r, f"bias_ih_l{i}")) + f64(getattr(r, f"bias_hh_l{i}")) for i in range(self.n_layer)]
        # layer 0's input is a byte: its input projection (+ bias) is a 257-row table, summed in order
        self.x0 = det_matmul(np.ascontiguousarray(f64(model.wte.weight)),
                             np.ascontiguousarray(f64(r.weight_ih_l0).T)) + bias[0][None, :]
        self.layers = []
        self.bias = []
        for i in range(self.n_layer):
            w_hh = f64(getattr(r, f"weight_hh_l{i}"))
            stacked = w_hh if i == 0 else np.concatenate([f64(getattr(r, f"weight_ih_l{i}")), w_hh], axis=1)
            self.layers.append(linear(stacked.T))
            self.bias.append(bias[i][None, :].copy())
        w_out = f64(model.wte.weight)[:VOCAB_OUT] if model.head is None else f64(model.head.weight)
        self.out = linear(w_out.T)
        self.b_out = f64(model.head_bias)

    @classmethod
    def from_arrays(cls, named: dict[str, np.ndarray], dims: dict, engine: str) -> "PortableLSTM":
        """The engine back from `arrays()` and `dims()` (the quantised-model cache): no torch."""
        linear = ENGINES[engine]
        self = cls.__new__(cls)
        self.engine, self.H, self.n_layer = engine, int(dims["H"]), int(dims["n_layer"])
        self.x0, self.b_out = named["x0"], named["b_out"]
        self.layers = [linear.from_quantised(named[f"l{i}.q"], named[f"l{i}.scale"]) for i in range(self.n_layer)]
        self.bias = [named[f"l{i}.bias"] for i in range(self.n_layer)]
        self.out = linear.from_quantised(named["out.q"], named["out.scale"])
        self._derive()
        return self

    def _derive(self) -> None:
        """v3's float32 copies of the float64 parameters (each correctly rounded, so the same
        everywhere) and its gate gains; v1/v2 need none. The cache keeps v2's arrays: v3
        quantises the weights exactly as v2 does."""
        self.float32 = self.engine in FLOAT32_ENGINES
        if not self.float32:
            return
        f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
        H = self.H
        self.x0_32 = f32(self.x0)
        self.bias32 = [f32(b) for b in self.bias]
        self.scale32 = [f32(layer.scale) for layer in self.layers]
        self.out_scale32 = f32(self.out.scale)
        self.b_out32 = f32(self.b_out)
        self.gain32 = np.full(4 * H, 0.5, dtype=np.float32)
        self.gain32[2 * H:3 * H] = 1.0  # g is a tanh; i, f, o are sigmoids = 1/2 + tanh(z/2)/2
        self.qmax32 = np.float32(self.out.limit)  # the rows' quantisation range: 127 (v3) or 63 (v4)
        self.keep_floor32 = np.float32(1.0 - FLOOR)
        self.add_floor32 = np.float32(FLOOR / VOCAB_OUT)

    def dims(self) -> dict:
        return {"H": self.H, "n_layer": self.n_layer}

    def arrays(self) -> dict[str, np.ndarray]:
        named = {"x0": self.x0, "b_out": self.b_out, **self.out.arrays("out")}
        for i, (layer, b) in enumerate(zip(self.layers, self.bias)):
            named.update(layer.arrays(f"l{i}"))
            named[f"l{i}.bias"] = b
        return named

    def linears(self) -> list:
        return [*self.layers, self.out]

    def start(self, lanes: int) -> "LSTMState | LSTMState32":
        if self.float32:
            return self._start32(lanes)
        L, H = lanes, self.H
        cat = [np.zeros((L, H if i == 0 else 2 * H)) for i in range(self.n_layer)]  # [0] unused
        xq = [np.zeros(c.shape, dtype=lin.in_dtype) for c, lin in zip(cat, self.layers)]
        acc = [np.zeros((L, 4 * H), dtype=lin.out_dtype) for lin in self.layers]
        out_q = np.zeros((L, H), dtype=self.out.in_dtype)
        out_acc = np.zeros((L, VOCAB_OUT), dtype=self.out.out_dtype)
        return LSTMState(
            lanes=L, h=[np.zeros((L, H)) for _ in range(self.n_layer)], c=[np.zeros((L, H)) for _ in range(self.n_layer)],
            cat=cat, xq=xq, acc=acc, rs=np.zeros(L), zero_rows=np.zeros(L, dtype=np.int64), out_q=out_q,
            out_acc=out_acc, logits=np.zeros((L, VOCAB_OUT)),
            probs=np.zeros((L, VOCAB_OUT), dtype=np.float32), pre=np.zeros(4 * H), gates=np.zeros(4 * H))

    def step(self, st: "LSTMState | LSTMState32", prev: np.ndarray) -> np.ndarray:
        if self.float32:
            return self._step32(st, prev)
        H = self.H
        for i, layer in enumerate(self.layers):
            cat = st.h[0] if i == 0 else st.cat[i]  # layer 0 multiplies its own state alone
            if i > 0:
                cat[:, :H] = st.h[i - 1]
                cat[:, H:] = st.h[i]
            quantize_rows(cat, layer.limit, st.xq[i], 0, st.rs)
            layer.mm(st.xq[i], st.acc[i])
            base, rows = (self.x0, prev) if i == 0 else (self.bias[i], st.zero_rows)
            _cell(st.acc[i], st.rs, layer.scale, base, rows, st.c[i], st.h[i], st.pre, st.gates)
        quantize_rows(st.h[-1], self.out.limit, st.out_q, 0, st.rs)
        self.out.mm(st.out_q, st.out_acc)
        dequant_rows(st.out_acc, st.rs, self.out.scale, self.b_out, st.logits, False)
        softmax_probs(st.logits, st.probs, FLOOR)
        return st.probs

    def _start32(self, lanes: int) -> LSTMState32:
        L, H = lanes, self.H
        z32 = lambda *shape: np.zeros(shape, dtype=np.float32)  # noqa: E731
        return LSTMState32(
            lanes=L, h=[z32(L, H) for _ in range(self.n_layer)], c=[z32(L, H) for _ in range(self.n_layer)],
            xq=[np.zeros((L, H if i == 0 else 2 * H), dtype=np.int8) for i in range(self.n_layer)],
            acc=[np.zeros((L, 4 * H), dtype=np.int32) for _ in range(self.n_layer)], rs=z32(L),
            zero_rows=np.zeros(L, dtype=np.int64), out_q=np.zeros((L, H), dtype=np.int8),
            out_acc=np.zeros((L, VOCAB_OUT), dtype=np.int32), logits=z32(L, VOCAB_OUT), probs=z32(L, VOCAB_OUT),
            pre=z32(4 * H), e=z32(VOCAB_OUT), pow2=np.zeros(VOCAB_OUT, dtype=np.int32))

    def _step32(self, st: LSTMState32, prev: np.ndarray) -> np.ndarray:
        """v3: each layer's input row [h below, own h] (layer 0: its own h) quantised to int8 per
        lane, multiplied exactly, and the cell in float32 (`arith32`); then the output product
        and a float32 softmax."""
        qmax = self.qmax32
        for i, layer in enumerate(self.layers):
            if i == 0:
                quantise_rows32(st.h[0], st.xq[0], st.rs, qmax)
            else:
                quantise_pair32(st.h[i - 1], st.h[i], st.xq[i], st.rs, qmax)
            acc = layer.products(st.xq[i], st.acc[i])
            base, rows = (self.x0_32, prev) if i == 0 else (self.bias32[i], st.zero_rows)
            lstm_cell32(acc, st.rs, self.scale32[i], base, rows, self.gain32, st.c[i], st.h[i], st.pre)
        quantise_rows32(st.h[-1], st.out_q, st.rs, qmax)
        acc = self.out.products(st.out_q, st.out_acc)
        dequant_rows32(acc, st.rs, self.out_scale32, self.b_out32, st.logits)
        softmax32(st.logits, st.probs, self.keep_floor32, self.add_floor32, st.e, st.pow2)
        return st.probs
