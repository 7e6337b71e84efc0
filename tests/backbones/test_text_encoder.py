import pytest
import torch

from pluralign.backbones import TextEncoder
from pluralign.data.cache import EmbeddingCache

TEXTS = ["A cat sleeps on the warm windowsill.", "Quarterly revenue exceeded expectations.", "A cat sleeps."]


def test_default_backbone_embeds_offline():
    encoder = TextEncoder()
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (3, 384)
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(3), atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 2] > similarity[0, 1]  # the cat sentences are closer to each other


def test_poolings_differ_and_batches_do_not_matter():
    small = TextEncoder(batch_size=1).encode(TEXTS)
    large = TextEncoder(batch_size=8).encode(TEXTS)
    assert torch.allclose(small, large, atol=1e-5)
    last = TextEncoder(pooling="last").encode(TEXTS)
    assert not torch.allclose(last, large)


def test_layer_mean_averages_the_token_means_of_every_layer():
    from pluralign.backbones.text_encoder import load_backbone

    tokenizer, model = load_backbone(None)
    batch = tokenizer(TEXTS[1:2], return_tensors="pt")
    with torch.no_grad():
        layers = model.eval()(**batch, output_hidden_states=True).hidden_states
    assert len(layers) == 7  # the embedding layer's output, then MiniLM's 6 layers
    by_hand = torch.stack([h[0].mean(0) for h in layers[1:]]).mean(0)  # one text: no padding to mask
    encoder = TextEncoder(pooling="layer-mean", normalize=False)
    assert torch.allclose(encoder.encode(TEXTS)[1], by_hand, atol=1e-5)
    assert ":layer-mean:" in encoder.identity  # its own cache entries
    assert not torch.allclose(TextEncoder(pooling="layer-mean").encode(TEXTS), TextEncoder().encode(TEXTS), atol=0.05)


def test_input_mean_is_the_mean_of_the_embedding_layer():
    """Word, position and segment embeddings, layer-normed, then the masked mean: computed here from the
    model's own embedding tables, so the test does not lean on ``hidden_states``."""
    from pluralign.backbones.text_encoder import load_backbone

    tokenizer, model = load_backbone(None)
    ids = tokenizer(TEXTS[0], return_tensors="pt")["input_ids"][0]
    tables = model.embeddings
    summed = tables.word_embeddings.weight[ids] + tables.position_embeddings.weight[: len(ids)] \
        + tables.token_type_embeddings.weight[0]
    with torch.no_grad():
        by_hand = tables.LayerNorm(summed).mean(0)
    encoder = TextEncoder(pooling="input-mean", normalize=False)
    vectors = encoder.encode(TEXTS)  # padded beside longer texts: the mask must keep padding out
    assert torch.allclose(vectors[0], by_hand, atol=1e-5) and ":input-mean:" in encoder.identity


def test_a_vector_does_not_depend_on_the_texts_beside_it():
    """Bit for bit: a text embedded with others, alone, or in another order and company gives the same vector
    (fixed batch shapes), so a cache's contents do not depend on what was embedded first."""
    texts = [f"Response {i}: " + "a fairly long sentence about preferences " * (i % 7) for i in range(40)]
    encoder = TextEncoder(batch_size=8)
    together = encoder.encode(texts)
    assert torch.equal(encoder.encode(texts[3:4])[0], together[3])
    mixed = [37, 2, 19, 5, 33, 11, 0]
    assert torch.equal(encoder.encode([texts[i] for i in mixed]), together[mixed])
    assert [encoder.padded_length(n) for n in (1, 32, 33, 100, 256, 300)] == [32, 32, 64, 128, 256, 256]
    assert TextEncoder(max_length=48).padded_length(40) == 48 and "fixed8" in encoder.identity


def test_cache_second_run_embeds_nothing(tmp_path):
    encoder = TextEncoder()
    first = EmbeddingCache(tmp_path)
    a = first.embed(TEXTS + TEXTS[:1], encoder)
    assert first.misses == 3
    second = EmbeddingCache(tmp_path)  # a new process would see the same shards

    class NoEncode(TextEncoder):
        def encode_batches(self, texts, progress=False):
            raise AssertionError("embedded again: " + repr(texts))

    b = second.embed(TEXTS, NoEncode())
    assert second.misses == 0 and second.hits == 3
    assert torch.equal(a[:3], b)
    assert not list(tmp_path.rglob("*.tmp"))


def test_cache_without_store_serves_hits_and_keeps_nothing_new(tmp_path):
    """store=False (a policy's fresh samples scored as rewards): what the cache holds is read, the rest is
    encoded and not kept, on disk or in memory."""
    encoder = TextEncoder()
    cache = EmbeddingCache(tmp_path)
    kept = cache.embed(TEXTS[:1], encoder)
    shards = sorted(tmp_path.rglob("shard-*"))
    both = cache.embed([TEXTS[1], TEXTS[0], TEXTS[1]], encoder, store=False)
    assert sorted(tmp_path.rglob("shard-*")) == shards and len(cache._load(encoder.identity)) == 1
    assert torch.equal(both[1], kept[0]) and torch.equal(both[0], both[2])
    assert torch.allclose(both[0], encoder.encode([TEXTS[1]])[0], atol=1e-6)


@pytest.mark.parametrize("name, message", [
    ("{tmp}/missing", "no such folder (a local model folder, or a Hugging Face id already in this machine's cache)"),
    ("{tmp}", "no config.json (not a transformers model folder)"),
    ("pluralign-tests/not-in-any-cache", "cannot load offline ("),  # then transformers' first line, its wording
])
def test_a_backbone_that_cannot_load_is_one_line_naming_it(tmp_path, name: str, message: str) -> None:
    """--set backbone=... naming a folder that is not there, a folder that holds no model, or a hub id this
    offline machine never downloaded: one line naming the backbone (transformers' own text ran to several lines
    or, for a path, spoke of repo ids)."""
    name = name.format(tmp=tmp_path)
    with pytest.raises(ValueError) as err:
        TextEncoder(name).encode(["a text"])
    text = str(err.value)
    assert "\n" not in text and (text == f"backbone {name!r}: {message}" if message.endswith(")")
                                 else text.startswith(f"backbone {name!r}: {message}") and text.endswith(")"))


def test_encoder_arguments_are_checked_and_no_text_is_no_row() -> None:
    """TextEncoder built directly (not through a method's checked config): a pooling it does not know, a length
    under 1; and an empty list of texts gives an empty [0, D] matrix, not a tokenizer error."""
    with pytest.raises(ValueError, match=r"^pooling must be one of .*, got 'max'$"):
        TextEncoder(pooling="max")
    with pytest.raises(ValueError, match=r"^max_length=0 must be at least 1$"):
        TextEncoder(max_length=0)
    assert TextEncoder().encode([]).shape == (0, 384)
