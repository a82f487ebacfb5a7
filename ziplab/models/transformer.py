"""Byte-level decoder-only transformer: pre-norm blocks, rotary positions, tied embeddings.

RoPE makes attention depend only on the distance between bytes, so at coding time a ring
buffer holding the last T keys/values (rotated at their absolute positions) reproduces the
training situation: every query sees at most T bytes, all within distance < T. That step runs
quantised and bit-reproducible in `portable.transformer`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import ByteModel
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


class Transformer(ByteModel):
    family = "transformer"
    embedding_names = ("wte.weight",)  # tied: the output matrix is the embedding

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

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)


    def forward(self, idx: torch.Tensor, state: None = None) -> tuple[torch.Tensor, None]:
        """idx [B, T<=context] (0..256) -> (logits [B, T, 256], None): the same signature as the
        LSTM's, whose state a transformer does not have; position 0 = first byte of the window."""
        T = idx.shape[1]
        x = self.wte(idx)
        for b in self.blocks:
            x = b(x, self.cos[:T], self.sin[:T])
        return F.linear(self.ln_f(x), self.wte.weight[:VOCAB_OUT]), None
