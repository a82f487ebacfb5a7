"""Byte-level LSTM: embedding -> stacked LSTM -> (tied) output layer.

Training uses torch's fused nn.LSTM over windows; coding uses a hand-rolled cell on
preallocated buffers, because per-byte stepping is dominated by call overhead and the first
layer's input projection collapses to a 257-row lookup table (the input is just a byte).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn

from .predictor import VOCAB_IN, VOCAB_OUT


@dataclass
class LSTMConfig:
    n_layer: int = 2
    n_hidden: int = 192
    n_embd: int = 192
    context: int = 128  # training window (truncated BPTT length); coding state runs on unbounded
    tie: bool = True  # needs n_embd == n_hidden
    step_dtype: str = "bfloat16"  # recurrent matmuls when coding: bf16 runs ~4x faster on avx512_bf16

    def to_dict(self) -> dict:
        return {"family": "lstm", **asdict(self)}


@dataclass
class LSTMStepState:
    h: list[torch.Tensor]
    c: list[torch.Tensor]
    inp: list[torch.Tensor]  # per layer [x, h] in step dtype (layer 0: just h)
    gates: torch.Tensor  # [lanes, 4H] fp32 scratch
    mm: torch.Tensor  # [lanes, 4H] step-dtype scratch
    tmp: torch.Tensor  # [lanes, H] scratch


def _double_cell_gate(w: torch.Tensor) -> torch.Tensor:
    """Scale the cell-gate (third) quarter of the last dim by 2, exactly (a power of two), so
    sigmoid over all gates gives sigmoid(2g) there and 2*sigmoid(2g) - 1 = tanh(g)."""
    H = w.shape[-1] // 4
    w = w.clone()
    w[..., 2 * H : 3 * H] *= 2.0
    return w


def _tanh(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """tanh(x) = 2*sigmoid(2x) - 1: torch's CPU tanh runs ~8x slower than its sigmoid, and the two
    tanh calls per layer were a quarter of the LSTM's coding time. Differs from tanh by ~1e-7."""
    torch.mul(x, 2.0, out=out)
    return out.sigmoid_().mul_(2.0).sub_(1.0)


class LSTM(nn.Module):
    family = "lstm"

    def __init__(self, cfg: LSTMConfig) -> None:
        super().__init__()
        if cfg.tie and cfg.n_embd != cfg.n_hidden:
            raise ValueError("a tied LSTM needs n_embd == n_hidden")
        self.cfg = cfg
        self.wte = nn.Embedding(VOCAB_IN, cfg.n_embd)
        self.rnn = nn.LSTM(cfg.n_embd, cfg.n_hidden, num_layers=cfg.n_layer, batch_first=True)
        self.head = None if cfg.tie else nn.Linear(cfg.n_hidden, VOCAB_OUT, bias=False)
        self.head_bias = nn.Parameter(torch.zeros(VOCAB_OUT))
        self._init_weights()
        self._step_cache: dict[str, Any] | None = None

    def _init_weights(self) -> None:
        nn.init.normal_(self.wte.weight, std=0.1)
        h = self.cfg.n_hidden
        for name, p in self.rnn.named_parameters():
            if name.startswith("bias"):
                nn.init.zeros_(p)
                with torch.no_grad():
                    p[h : 2 * h].fill_(0.5)  # forget gate bias: remember by default (split over b_ih, b_hh)
            else:
                nn.init.uniform_(p, -(h**-0.5), h**-0.5)
        if self.head is not None:
            nn.init.normal_(self.head.weight, std=h**-0.5)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def non_embedding_params(self) -> int:
        """Everything but the byte embedding, the output matrix and its bias (Kaplan-style)."""
        head = 0 if self.head is None else self.head.weight.numel()
        return self.num_params() - self.wte.weight.numel() - head - self.head_bias.numel()

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        w = self.wte.weight[:VOCAB_OUT] if self.head is None else self.head.weight
        return torch.nn.functional.linear(h, w, self.head_bias)

    def forward(self, idx: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """idx [B, T] (values 0..256) -> (logits [B, T, 256], (h, c)) for training and evaluation."""
        out, state = self.rnn(self.wte(idx), state)
        return self._logits(out), state

    # ---- coding path ---------------------------------------------------------------------
    def train(self, mode: bool = True) -> "LSTM":
        self._step_cache = None  # weights may change: rebuild the step tables lazily
        return super().train(mode)

    def _step_tables(self) -> dict[str, Any]:
        if self._step_cache is None:
            dt = getattr(torch, self.cfg.step_dtype)
            with torch.no_grad():
                r = self.rnn
                w = []
                bias = []
                for i in range(r.num_layers):
                    w_ih, w_hh = getattr(r, f"weight_ih_l{i}").float(), getattr(r, f"weight_hh_l{i}").float()
                    bias.append((getattr(r, f"bias_ih_l{i}") + getattr(r, f"bias_hh_l{i}")).float().contiguous())
                    # layer 0's input term lives in the x0 table; deeper layers multiply [x, h] at once
                    stacked = w_hh if i == 0 else torch.cat([w_ih, w_hh], dim=1)
                    w.append(_double_cell_gate(stacked.t().contiguous()).to(dt))
                x0 = self.wte.weight.float() @ getattr(r, "weight_ih_l0").float().t() + bias[0]  # [257, 4H]
                x0, bias = _double_cell_gate(x0), [_double_cell_gate(b) for b in bias]
                w_out = (self.wte.weight[:VOCAB_OUT] if self.head is None else self.head.weight).float()
                self._step_cache = {
                    "dtype": dt,
                    "x0": x0.contiguous(),
                    "w": w,
                    "bias": bias,
                    "w_outT": w_out.t().contiguous(),
                    "b_out": self.head_bias.float().contiguous(),
                }
        return self._step_cache

    def init_state(self, lanes: int) -> LSTMStepState:
        H, L = self.cfg.n_hidden, self.cfg.n_layer
        dt = self._step_tables()["dtype"]
        return LSTMStepState(
            h=[torch.zeros(lanes, H) for _ in range(L)],
            c=[torch.zeros(lanes, H) for _ in range(L)],
            inp=[torch.zeros(lanes, H if i == 0 else 2 * H, dtype=dt) for i in range(L)],
            gates=torch.empty(lanes, 4 * H),
            mm=torch.empty(lanes, 4 * H, dtype=dt),
            tmp=torch.empty(lanes, H),
        )

    def step_logits(self, st: LSTMStepState, prev: torch.Tensor) -> torch.Tensor:
        """One byte per lane; updates state in place. Gate order follows torch: i, f, g, o.
        Matmul inputs are rounded to step_dtype; cell state and nonlinearities stay fp32."""
        t = self._step_tables()
        H, L = self.cfg.n_hidden, self.cfg.n_layer
        g = st.gates
        for layer in range(L):
            h, c = st.h[layer], st.c[layer]
            torch.mm(st.inp[layer], t["w"][layer], out=st.mm)
            if layer == 0:
                torch.index_select(t["x0"], 0, prev, out=g)
                g.add_(st.mm)
            else:
                torch.add(t["bias"][layer], st.mm, out=g)
            g.sigmoid_()  # all four gates in one call; the cell gate's 2x makes it tanh below
            i, f, gg, o = g[:, :H], g[:, H : 2 * H], g[:, 2 * H : 3 * H], g[:, 3 * H :]
            gg.mul_(2.0).sub_(1.0)
            c.mul_(f).addcmul_(i, gg)
            _tanh(c, out=st.tmp)
            torch.mul(o, st.tmp, out=h)
            st.inp[layer][:, -H:].copy_(h)  # own recurrent input for the next step
            if layer + 1 < L:
                st.inp[layer + 1][:, :H].copy_(h)  # input of the layer above, this step
        return torch.addmm(t["b_out"], st.h[-1], t["w_outT"])
