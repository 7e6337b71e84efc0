"""TunedBackbone on a tiny random BERT (no download): the layer count must be at least 1, and both of its memory
limits hold, the frozen layers' states in training and the kept prediction vectors."""

from __future__ import annotations

import pytest
import torch

from pluralign.backbones import tuned as tuned_module
from pluralign.backbones.tuned import PAD, TunedBackbone

HIDDEN = 8


@pytest.fixture
def tiny(monkeypatch):
    """TunedBackbone(None, ...) on a 2-layer BERT of width 8 (no tokenizer: ids are given directly)."""
    from transformers import BertConfig, BertModel

    class Tokenizer:
        padding_side = "left"

    def load(model, trust_remote_code=False, max_length=None):
        torch.manual_seed(0)
        config = BertConfig(vocab_size=30, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=16, max_position_embeddings=64)
        return Tokenizer(), BertModel(config, add_pooling_layer=False).eval()

    monkeypatch.setattr(tuned_module, "load_backbone", load)
    return lambda **kwargs: TunedBackbone(None, **kwargs)


def test_at_least_one_layer_trains(tiny) -> None:
    assert tiny(layers=2).first_trainable == 0
    for layers in (0, 3):
        with pytest.raises(ValueError, match=f"finetune_layers={layers}: the backbone has 2 layers"):
            tiny(layers=layers)


def test_the_frozen_layers_cache_keeps_to_its_size(tiny) -> None:
    """Two texts of 3 and 5 tokens: their frozen states are 3·8 and 5·8 float32 (96 and 160 bytes); a
    limit of exactly 96 bytes keeps the shorter (embedded first) and not the longer."""
    backbone = tiny(layers=1, prefix_cache_mb=96 / 2**20).train()
    ids = torch.tensor([[5, 6, 7, 8, 9], [3, 4, 2, PAD, PAD]])
    backbone(ids).sum().backward()
    assert backbone._prefix_ok
    assert list(backbone._prefix) == [torch.tensor([3, 4, 2]).numpy().tobytes()] and backbone._prefix_bytes == 96


def test_kept_predictions_keep_to_their_size(tiny) -> None:
    """A limit of 32 bytes is one float32 vector of width 8: the first text's is kept, no second one."""
    backbone = tiny(layers=1, prefix_cache_mb=4 * HIDDEN / 2**20).eval()
    with torch.no_grad():
        first = backbone(torch.tensor([[5, 6, 7]]))
        assert len(backbone._predicted) == 1
        backbone(torch.tensor([[3, 4]]))
        assert list(backbone._predicted) == [torch.tensor([5, 6, 7]).numpy().tobytes()]
        assert torch.equal(backbone(torch.tensor([[5, 6, 7]])), first)
