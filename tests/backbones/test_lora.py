import pytest
import torch
from torch import nn

from pluralign.backbones import TextEncoder
from pluralign.backbones.lora import LoRALinear, add_lora
from pluralign.backbones.tuned import TunedBackbone


def test_lora_linear_is_the_base_map_plus_the_scaled_low_rank_update():
    base = nn.Linear(3, 2)
    with torch.no_grad():
        base.weight.copy_(torch.tensor([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]]))
        base.bias.copy_(torch.tensor([0.1, -0.2]))
    layer = LoRALinear(base, rank=1, alpha=4.0).eval()  # scale α / r = 4
    x = torch.tensor([[1.0, 2.0, 3.0]])
    assert torch.equal(layer(x), base(x))  # B = 0: the pretrained map at the start
    with torch.no_grad():
        layer.lora_a.copy_(torch.tensor([[1.0, 1.0, 0.0]]))  # A x = 3
        layer.lora_b.copy_(torch.tensor([[0.5], [-1.0]]))  # B A x = [1.5, -3]
    # W x + b = [1 - 3 + 0.1, 0.5 + 4 - 0.2] = [-1.9, 4.3]; plus 4 · [1.5, -3] = [6, -12]
    assert torch.allclose(layer(x), torch.tensor([[4.1, -7.7]]))
    assert not base.weight.requires_grad and layer.lora_a.requires_grad and layer.lora_b.requires_grad
    with pytest.raises(ValueError, match="rank"):
        LoRALinear(nn.Linear(3, 2), rank=0)


def test_lora_backbone_trains_only_the_adapters_of_the_top_layers():
    texts = ["A cat sleeps on the warm windowsill.", "Quarterly revenue exceeded expectations."]
    backbone = TunedBackbone(None, layers=2, lora_rank=4)
    trainable = {n for n, p in backbone.named_parameters() if p.requires_grad}
    assert trainable and all(n.split(".")[-1] in ("lora_a", "lora_b") for n in trainable)
    assert {n.split(".")[3] for n in trainable} == {"4", "5"}
    assert len(trainable) == 2 * 2 * 6  # A and B on the 6 linear maps of each of the 2 layers
    ids = backbone.tokenize(texts)
    with torch.no_grad():
        assert torch.allclose(backbone.eval()(ids), TextEncoder().encode(texts), atol=1e-5)  # B = 0 at the start

    before = {n: p.clone() for n, p in backbone.named_parameters()}
    optimizer = torch.optim.SGD([p for p in backbone.parameters() if p.requires_grad], lr=0.5)
    probe = torch.randn(384, generator=torch.Generator().manual_seed(0))
    for _ in range(2):  # B moves on the first step, then A gets gradients too
        optimizer.zero_grad()
        (backbone.train()(ids) @ probe).sum().backward()
        optimizer.step()
    moved = {n for n, p in backbone.named_parameters() if not torch.equal(p, before[n])}
    assert moved == trainable  # every adapter moved, no pretrained weight did
    assert add_lora(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Sequential(nn.Linear(2, 1))), rank=1) == 2
