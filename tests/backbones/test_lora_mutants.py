"""LoRALinear by hand beyond rank 1: the scale is α / r (α = 32 by default, as VPL's peft LoRA), dropout acts on
the adapter's input only, and the wrapped map is frozen whole (its bias too)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pluralign.backbones.lora import LoRALinear, add_lora


def zero_linear(d_in: int, d_out: int) -> nn.Linear:
    base = nn.Linear(d_in, d_out)
    with torch.no_grad():
        base.weight.zero_()
        base.bias.fill_(0.5)
    return base


def test_the_scale_is_alpha_over_rank() -> None:
    layer = LoRALinear(zero_linear(3, 1), rank=2, alpha=4.0, dropout=0.0)  # scale 4 / 2 = 2
    with torch.no_grad():
        layer.lora_a.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))  # A x = [1, 2]
        layer.lora_b.copy_(torch.tensor([[1.0, 1.0]]))  # B A x = 3
    assert layer.scale == 2.0
    assert torch.allclose(layer(torch.tensor([[1.0, 2.0, 3.0]])), torch.tensor([[0.5 + 2 * 3.0]]))


def test_the_default_alpha_is_32() -> None:
    assert LoRALinear(nn.Linear(3, 2), rank=8).scale == 4.0
    model = nn.Sequential(nn.Linear(3, 2))
    add_lora(model, rank=8)
    assert model[0].scale == 4.0


def test_the_wrapped_map_is_frozen_whole() -> None:
    layer = LoRALinear(nn.Linear(3, 2), rank=1)
    assert {n for n, p in layer.named_parameters() if p.requires_grad} == {"lora_a", "lora_b"}


def test_dropout_acts_on_the_adapters_input() -> None:
    base = zero_linear(4, 3)
    layer = LoRALinear(base, rank=2, alpha=2.0, dropout=0.5).train()
    with torch.no_grad():
        layer.lora_b.copy_(torch.arange(6.0).reshape(3, 2) / 10)
    x = torch.arange(1.0, 21.0).reshape(5, 4)
    torch.manual_seed(0)
    out = layer(x)
    torch.manual_seed(0)
    dropped = F.dropout(x, 0.5, training=True)
    assert torch.allclose(out, base(x) + 1.0 * (dropped @ layer.lora_a.T @ layer.lora_b.T))
    assert torch.equal(layer.eval()(x), base(x) + 1.0 * (x @ layer.lora_a.T @ layer.lora_b.T))
