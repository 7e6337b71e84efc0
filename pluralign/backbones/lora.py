"""LoRA adapters (Hu et al. 2022, "LoRA: Low-Rank Adaptation of Large Language Models", eq. 3):
h = W₀x + (α / r)·B A x, with W₀ frozen, A ∈ ℝ^{r×d_in} and B ∈ ℝ^{d_out×r} trained, and B = 0 at the
start, so the adapted layer begins as the pretrained one.

VPL's LLM experiments fine-tune their backbone this way (WEIRDLabUW/vpl_llm: peft's LoRA with r = 8,
α = 32, dropout 0.1 on the adapter's input); those are the defaults here. :func:`add_lora` puts an adapter
on every linear map of the layers it is given, which is how a "Large" backbone trains with a few thousand
parameters per layer instead of all of them.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update: ``base(x) + scale · B(A(dropout(x)))``."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float = 32.0, dropout: float = 0.1) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be at least 1, got {rank}")
        self.base, self.scale = base.requires_grad_(False), alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, dtype=base.weight.dtype))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, dtype=base.weight.dtype))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))  # as nn.Linear (and peft) initialize A
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * (self.dropout(x) @ self.lora_a.T @ self.lora_b.T)


def add_lora(module: nn.Module, rank: int, alpha: float = 32.0, dropout: float = 0.1) -> int:
    """Wrap every ``nn.Linear`` inside ``module`` in a :class:`LoRALinear`; returns how many were wrapped."""
    targets = [(parent, name, child) for parent in module.modules() for name, child in parent.named_children()
               if isinstance(child, nn.Linear)]
    for parent, name, child in targets:
        setattr(parent, name, LoRALinear(child, rank, alpha, dropout))
    return len(targets)
