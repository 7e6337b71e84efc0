import pytest
import torch

from pluralign.backbones import TextEncoder
from pluralign.backbones.tuned import PAD, TunedBackbone

TEXTS = ["A cat sleeps on the warm windowsill.", "Quarterly revenue exceeded expectations.", "A cat sleeps.",
         "A cat sleeps on the warm windowsill."]


def test_tuned_backbone_matches_the_frozen_encoder_and_embeds_each_text_once():
    backbone = TunedBackbone(None, layers=1, chunk_size=2).eval()
    ids = backbone.tokenize(TEXTS)
    assert ids.shape[0] == 4 and (ids == PAD).any()  # right-padded with PAD, not the tokenizer's pad id
    seen = []
    backbone.encoder.register_forward_hook(lambda module, args, kwargs, out: seen.append(kwargs["input_ids"].shape[0]),
                                           with_kwargs=True)
    with torch.no_grad():
        vectors = backbone(ids)
    assert sum(seen) == 3  # the repeated text is embedded once; chunks of 2
    # the same vectors as the frozen, cached path: trimming, chunking and de-duplication change nothing
    assert torch.allclose(vectors, TextEncoder().encode(TEXTS), atol=1e-5)
    assert backbone(ids[:0]).shape == (0, 384)


def test_only_the_top_layers_train():
    backbone = TunedBackbone(None, layers=2)
    trainable = {name.split(".")[2] for name, p in backbone.encoder.named_parameters() if p.requires_grad}
    assert trainable == {"4", "5"}  # MiniLM-L6: layers 0-5
    with pytest.raises(ValueError, match="6 layers"):
        TunedBackbone(None, layers=7)
