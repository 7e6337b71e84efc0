import pytest
import torch
from torch import nn

from pluralign.backbones import TextEncoder
from pluralign.backbones.tuned import PAD, TunedBackbone

TEXTS = ["A cat sleeps on the warm windowsill.", "Quarterly revenue exceeded expectations.", "A cat sleeps.",
         "A cat sleeps on the warm windowsill."]


@pytest.mark.parametrize("pooling", ["mean", "layer-mean"])
def test_tuned_backbone_matches_the_frozen_encoder_and_embeds_each_text_once(pooling):
    backbone = TunedBackbone(None, layers=1, pooling=pooling, chunk_size=2, prefix_cache_mb=0).eval()
    ids = backbone.tokenize(TEXTS)
    assert ids.shape[0] == 4 and (ids == PAD).any()  # right-padded with PAD, not the tokenizer's pad id
    seen = []
    backbone.encoder.register_forward_hook(lambda module, args, kwargs, out: seen.append(kwargs["input_ids"].shape),
                                           with_kwargs=True)
    with torch.no_grad():
        vectors = backbone(ids)
    # the repeated text is embedded once: 3 texts in batches of one fixed shape, the last filled with a repeat
    assert seen == [(2, 32), (2, 32)] and not backbone._predicted  # prefix_cache_mb=0 keeps nothing
    # the same vectors as the frozen, cached path: trimming, chunking and de-duplication change nothing
    assert torch.allclose(vectors, TextEncoder(pooling=pooling).encode(TEXTS), atol=1e-5)
    assert backbone(ids[:0]).shape == (0, 384)


def test_only_the_top_layers_train():
    backbone = TunedBackbone(None, layers=2)
    trainable = {name.split(".")[2] for name, p in backbone.encoder.named_parameters() if p.requires_grad}
    assert trainable == {"4", "5"}  # MiniLM-L6: layers 0-5
    with pytest.raises(ValueError, match="6 layers"):
        TunedBackbone(None, layers=7)


@pytest.mark.parametrize("pooling", ["mean", "layer-mean"])  # layer-mean: the frozen layers' means are cached too
def test_frozen_layers_run_once_per_text_in_training_and_give_the_full_forward(pooling):
    cached, plain = (TunedBackbone(None, layers=2, pooling=pooling, chunk_size=2, prefix_cache_mb=mb)
                     for mb in (2048, 0))
    ids = cached.tokenize(TEXTS)
    nn.Sequential(plain).train()  # as Lightning does, from a parent module: dropout only in the top layers
    assert not plain.encoder.embeddings.dropout.training and not plain.blocks[0].training
    assert plain.blocks[4].attention.self.training and plain.blocks[5].output.dropout.training

    rows_below = []  # rows through the lowest (frozen) layer
    cached.blocks[0].register_forward_hook(lambda module, args, out: rows_below.append(args[0].shape[0]))
    probe = torch.randn(384, generator=torch.Generator().manual_seed(0))
    for backbone in (cached.train(), plain):  # the cached one's one-time check runs in train mode
        torch.manual_seed(0)
        (backbone(ids) @ probe).sum().backward()
    torch.manual_seed(0)
    with torch.no_grad():
        again = cached(ids)  # from the cache
    assert cached._prefix_ok and len(cached._prefix) == 3
    assert sum(rows_below) == 2 + 3  # the check's text twice (full and split), then each text once
    torch.manual_seed(0)
    with torch.no_grad():
        assert torch.allclose(again, plain(ids), atol=1e-6)  # the same dropout draws in the top layers

    grads = {n: p.grad for n, p in cached.encoder.named_parameters() if p.grad is not None}
    assert {n.split(".")[2] for n in grads} == {"4", "5"}
    assert max(float(g.abs().max()) for g in grads.values()) > 1e-3  # a loss that moves the weights
    for name, p in plain.encoder.named_parameters():
        assert (p.grad is None) == (name not in grads)
        assert p.grad is None or torch.allclose(p.grad, grads[name], atol=1e-5)
    assert set(cached.state_dict()) == set(plain.state_dict())  # the layer list is not a second copy

    with torch.no_grad():  # predictions: the full forward, whatever is cached
        assert torch.equal(cached.eval()(ids), plain.eval()(ids))
    assert cached._prefix and not cached.to(torch.float32)._prefix  # a move empties the cache


def test_a_backbone_whose_layers_cannot_be_skipped_runs_every_layer(monkeypatch, caplog):
    backbone = TunedBackbone(None, layers=1, chunk_size=2)
    ids = backbone.tokenize(TEXTS)
    # a layer stack the hook scheme misreads: the states it captures are not what the next layer gets
    monkeypatch.setattr(TunedBackbone, "_run_below", lambda self, tokens, mask: (torch.zeros(*tokens.shape, 384), None))
    with caplog.at_level("INFO", logger="pluralign.backbones.tuned"), torch.no_grad():
        backbone.train()(ids)
    assert backbone._prefix_ok is False and not backbone._prefix and "cannot be skipped" in caplog.text
    torch.manual_seed(0)
    with torch.no_grad():
        trained = backbone(ids)
    plain = TunedBackbone(None, layers=1, chunk_size=2, prefix_cache_mb=0).train()
    torch.manual_seed(0)
    with torch.no_grad():
        assert torch.equal(trained, plain(ids))  # the full forward, as with the cache off


def test_input_mean_has_no_layer_to_fine_tune():
    with pytest.raises(ValueError, match="input-mean.*no transformer layer to fine-tune"):
        TunedBackbone(None, 1, pooling="input-mean")


def test_a_tuned_backbone_refuses_an_unknown_pooling_and_embeddings_and_takes_no_text() -> None:
    """Built directly (not through a method's checked config): an unknown pooling is one line; float vectors
    where token ids belong are refused (they would index the embedding table); no text is an empty id matrix."""
    with pytest.raises(ValueError, match=r"^pooling must be one of .*, got 'max'$"):
        TunedBackbone(None, 1, pooling="max")
    backbone = TunedBackbone(None, 1)
    with pytest.raises(TypeError, match=r"^a fine-tuned backbone reads text \(token ids\), not precomputed "
                                        r"embeddings$"):
        backbone(torch.zeros(2, 384))
    assert backbone.tokenize([]).shape == (0, 1)


def test_a_prediction_depends_on_its_text_alone_and_is_kept_until_a_weight_changes():
    backbone = TunedBackbone(None, layers=1, chunk_size=4).eval()
    rows = []
    backbone.encoder.register_forward_hook(lambda module, args, kwargs, out: rows.append(kwargs["input_ids"].shape[0]),
                                           with_kwargs=True)
    with torch.no_grad():
        alone = backbone(backbone.tokenize(TEXTS[:1]))
        backbone._predicted.clear()  # embed it afresh, now beside longer and shorter texts
        together = backbone(backbone.tokenize(TEXTS))
        assert torch.equal(alone[0], together[0]) and torch.equal(together[0], together[3])
        calls = len(rows)
        assert torch.equal(backbone(backbone.tokenize(TEXTS[1:3])), together[1:3]) and len(rows) == calls  # kept
        backbone.blocks[5].output.dense.weight.mul_(1.1)  # any weight change (an optimizer step, a load) ...
        moved = backbone(backbone.tokenize(TEXTS[1:3]))
    assert len(rows) == calls + 1 and not torch.allclose(moved, together[1:3], atol=1e-6)  # ... forgets them
    backbone._predicted.clear()
    with torch.inference_mode():  # inference tensors are not kept: a later gradient fit could not use them
        backbone(backbone.tokenize(TEXTS[1:3]))
    assert not backbone._predicted
    calls = len(rows)
    with torch.no_grad():  # training mode never reads them
        backbone.train()(backbone.tokenize(TEXTS[1:3]))
    assert len(rows) > calls + 1
