"""What every model family shares: one forward signature and the parameter counts the scaling
law is written in."""

from __future__ import annotations

import torch.nn as nn


class ByteModel(nn.Module):
    """forward(idx [B, T], state=None) -> (logits [B, T, 256], state); a family without a
    recurrent state returns None for it."""

    family: str = ""
    #: names of the parameters that map bytes in and out (excluded from N, Kaplan-style)
    embedding_names: tuple[str, ...] = ()

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def embedding_params(self) -> int:
        named = dict(self.named_parameters())
        return sum(named[n].numel() for n in self.embedding_names if n in named)

    def non_embedding_params(self) -> int:
        return self.num_params() - self.embedding_params()
