"""Byte-level decoder-only transformer: pre-norm blocks, rotary positions, tied embeddings.

RoPE makes attention depend only on the distance between bytes, so at coding time a ring
buffer holding the last T keys/values (rotated at their absolute positions) reproduces the
training situation exactly: every query sees at most T bytes, all within distance < T.
The step path keeps that cache, and the weight matmuls, in `step_dtype` (bf16 halves the
memory each coded byte reads and runs ~4x faster on avx512_bf16); norms, softmax
accumulation and the residual stream stay fp32.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .predictor import VOCAB_IN, VOCAB_OUT


@dataclass
class TransformerConfig:
    n_layer: int = 4
    n_embd: int = 96
    n_head: int = 3
    n_kv_head: int = 1  # grouped/multi-query attention: the coding cache shrinks by n_head / n_kv_head
    context: int = 128  # attention window T, in training and in the coding cache
    mlp_ratio: int = 4
    rope_base: float = 10000.0
    step_dtype: str = "bfloat16"

    def to_dict(self) -> dict:
        return {"family": "transformer", **asdict(self)}

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


def rope_frequencies(head_dim: int, base: float) -> torch.Tensor:
    """Inverse frequencies [head_dim/2] in float64 (the step path computes them once)."""
    return base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)


def rope_angles(positions: torch.Tensor, head_dim: int, base: float,
                inv: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin [len(positions), head_dim/2], computed in float64 and reduced mod 2*pi first, so
    positions in the millions (long files) rotate as accurately as position 0."""
    inv = rope_frequencies(head_dim, base) if inv is None else inv
    ang = torch.remainder(positions.to(torch.float64)[:, None] * inv[None, :], 2 * math.pi)
    return ang.cos().float(), ang.sin().float()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[:half], x[half:]) of the last dim; cos/sin broadcast against x[..., :half]."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def rotation_tables(cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos|cos, -sin|sin) over the full head dim, for `rotate_full`."""
    return torch.cat([cos, cos], dim=-1), torch.cat([-sin, sin], dim=-1)


def rotate_full(x: torch.Tensor, cos2: torch.Tensor, sin2: torch.Tensor) -> torch.Tensor:
    """`rotate` in fewer ops (the coding step is dispatch-bound): x*cos + swap_halves(x)*(∓sin),
    bitwise equal to it since negation is exact and each product is rounded the same way."""
    half = x.shape[-1] // 2
    swapped = torch.cat([x[..., half:], x[..., :half]], dim=-1)
    return (x * cos2).add_(swapped * sin2)


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        d = cfg.n_embd
        self.ln1 = nn.LayerNorm(d, bias=False)
        self.n_head, self.n_kv, self.hd = cfg.n_head, cfg.n_kv_head, cfg.head_dim
        self.qkv = nn.Linear(d, d + 2 * self.n_kv * self.hd, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.ln2 = nn.LayerNorm(d, bias=False)
        self.fc = nn.Linear(d, cfg.mlp_ratio * d, bias=False)
        self.out = nn.Linear(cfg.mlp_ratio * d, d, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split([d, self.n_kv * self.hd, self.n_kv * self.hd], dim=-1)
        q = rotate(q.view(B, T, self.n_head, self.hd).transpose(1, 2), cos, sin)
        k = rotate(k.view(B, T, self.n_kv, self.hd).transpose(1, 2), cos, sin)
        v = v.view(B, T, self.n_kv, self.hd).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.n_kv != self.n_head)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


@dataclass
class TransformerStepState:
    k: list[torch.Tensor]  # per layer [lanes, n_kv_head, T, hd] in step dtype, ring buffer
    v: list[torch.Tensor]
    pos: int = 0


class Transformer(nn.Module):
    family = "transformer"

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        if cfg.n_embd % cfg.n_head or cfg.head_dim % 2 or cfg.n_head % cfg.n_kv_head:
            raise ValueError("n_embd must split into n_head heads of even size, n_head into n_kv_head groups")
        self.cfg = cfg
        self.wte = nn.Embedding(VOCAB_IN, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=False)
        self.apply(self._init)
        for b in self.blocks:  # residual projections scaled down with depth (GPT-2)
            nn.init.normal_(b.proj.weight, std=0.02 / math.sqrt(2 * cfg.n_layer))
            nn.init.normal_(b.out.weight, std=0.02 / math.sqrt(2 * cfg.n_layer))
        cos, sin = rope_angles(torch.arange(cfg.context), cfg.head_dim, cfg.rope_base)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self._step_cache: dict | None = None

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def non_embedding_params(self) -> int:
        return self.num_params() - self.wte.weight.numel()

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx [B, T<=context] (0..256) -> logits [B, T, 256]; position 0 = first byte of the window."""
        T = idx.shape[1]
        x = self.wte(idx)
        for b in self.blocks:
            x = b(x, self.cos[:T], self.sin[:T])
        return F.linear(self.ln_f(x), self.wte.weight[:VOCAB_OUT])

    # ---- coding path ---------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Transformer":
        self._step_cache = None
        return super().train(mode)

    def _tables(self) -> dict:
        if self._step_cache is None:
            dt = getattr(torch, self.cfg.step_dtype)
            with torch.no_grad():
                self._step_cache = {
                    "dtype": dt,
                    "layers": [
                        {
                            "ln1": b.ln1.weight.float(), "ln2": b.ln2.weight.float(),
                            "qkv": b.qkv.weight.t().contiguous().to(dt), "proj": b.proj.weight.t().contiguous().to(dt),
                            "fc": b.fc.weight.t().contiguous().to(dt), "out": b.out.weight.t().contiguous().to(dt),
                        }
                        for b in self.blocks
                    ],
                    "ln_f": self.ln_f.weight.float(),
                    "emb": self.wte.weight.float().contiguous(),
                    "w_outT": self.wte.weight[:VOCAB_OUT].float().t().contiguous(),
                    "inv_freq": rope_frequencies(self.cfg.head_dim, self.cfg.rope_base),
                    "scale": self.cfg.head_dim**-0.5,
                }
        return self._step_cache

    def init_state(self, lanes: int) -> TransformerStepState:
        c = self.cfg
        dt = self._tables()["dtype"]
        shape = (lanes, c.n_kv_head, c.context, c.head_dim)
        return TransformerStepState(
            k=[torch.zeros(shape, dtype=dt) for _ in range(c.n_layer)],
            v=[torch.zeros(shape, dtype=dt) for _ in range(c.n_layer)],
        )

    def step_logits(self, st: TransformerStepState, prev: torch.Tensor) -> torch.Tensor:
        """One byte per lane at absolute position st.pos; writes slot pos % T of each layer's cache.
        Before the cache is full only the filled prefix is attended (same slice in encoder and
        decoder, since it depends on the step count only). Queries and keys are rotated in one
        call and the residual stream is updated in place: per-byte cost is mostly op dispatch."""
        c, t = self.cfg, self._tables()
        dt, d, H, kv, hd = t["dtype"], c.n_embd, c.n_head, c.n_kv_head, c.head_dim
        lanes, nqk = prev.shape[0], d + kv * hd
        slot, filled = st.pos % c.context, min(st.pos + 1, c.context)
        cos2, sin2 = rotation_tables(*rope_angles(torch.tensor([st.pos]), hd, c.rope_base, t["inv_freq"]))
        x = t["emb"].index_select(0, prev)
        for i, w in enumerate(t["layers"]):
            qkv = torch.mm(F.layer_norm(x, (d,), w["ln1"]).to(dt), w["qkv"]).float()
            qk = rotate_full(qkv[:, :nqk].view(lanes, H + kv, hd), cos2, sin2)  # query heads grouped by kv head
            k_cache, v_cache = st.k[i], st.v[i]
            k_cache[:, :, slot] = qk[:, H:]  # copy_ rounds to the cache dtype
            v_cache[:, :, slot] = qkv[:, nqk:].view(lanes, kv, hd)
            q = qk[:, :H].view(lanes, kv, H // kv, hd).mul_(t["scale"]).to(dt)
            att = torch.matmul(q, k_cache[:, :, :filled].transpose(-1, -2))  # [lanes, kv, H/kv, filled]
            y = torch.matmul(torch.softmax(att, dim=-1, dtype=torch.float32).to(dt), v_cache[:, :, :filled])
            x.add_(torch.mm(y.view(lanes, d), w["proj"]))
            h = torch.mm(F.layer_norm(x, (d,), w["ln2"]).to(dt), w["fc"])
            x.add_(torch.mm(F.gelu(h), w["out"]))  # bf16 gelu computes in fp32 and rounds once, as .float() did
        st.pos += 1
        return torch.mm(F.layer_norm(x, (d,), t["ln_f"]), t["w_outT"])
