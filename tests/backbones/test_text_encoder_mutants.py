"""The text encoder's poolings on tiny tensors worked out by hand (cls, last with either padding side, masked
mean, layer-mean with the layers pooled below), then what the default encoder gives: the masked mean of the last
layer, L2-normalized, texts cut at ``max_length`` tokens, each vector in its own text's row."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pluralign.backbones import TextEncoder
from pluralign.backbones.text_encoder import pool, pool_layers

# 2 sequences x 3 positions x 1 dimension: the value of a token is 10 · sequence + position
HIDDEN = torch.tensor([[[0.0], [1.0], [2.0]], [[10.0], [11.0], [12.0]]])


def test_cls_is_the_first_position_whatever_the_mask() -> None:
    """cls: positions 0 of each sequence, 0 and 10, padding or not."""
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert pool(HIDDEN, mask, "cls").flatten().tolist() == [0.0, 10.0]


def test_last_is_the_last_unmasked_position_on_either_padding_side() -> None:
    """Right padding [1, 1, 0]: position 1 (value 1); left padding [0, 1, 1]: position 2 (value 12). Not
    position 2 of every row."""
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]])
    assert pool(HIDDEN, mask, "last").flatten().tolist() == [1.0, 12.0]


def test_mean_leaves_the_padding_out() -> None:
    """Row 0 with mask [1, 1, 0]: (0 + 1) / 2 = 0.5, not (0 + 1 + 2) / 3 = 1; row 1 unpadded: 11."""
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert pool(HIDDEN, mask, "mean").flatten().tolist() == [0.5, 11.0]


def test_layer_mean_counts_the_layers_pooled_below() -> None:
    """Two layers here (token means 0.5 and 10.5 for row 0 with the mask [1, 1, 0]; 11 and 21 for row 1) and
    one pooled below ([4] and [-2]): row 0 (4 + 0.5 + 10.5) / 3 = 5, row 1 (-2 + 11 + 21) / 3 = 10. Without
    the layer below: 5.5 and 16. The other poolings read the top layer alone: cls 10 and 20."""
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    layers = [HIDDEN, HIDDEN + 10.0]
    below = torch.tensor([[[4.0]], [[-2.0]]])  # [N, n = 1, D]
    assert pool_layers(layers, mask, "layer-mean", below).flatten().tolist() == [5.0, 10.0]
    assert pool_layers(layers, mask, "layer-mean").flatten().tolist() == [5.5, 16.0]
    assert pool_layers(layers, mask, "cls").flatten().tolist() == [10.0, 20.0]


def test_the_default_encoder_is_the_normalized_masked_mean_of_the_last_layer() -> None:
    """By hand from MiniLM itself: the mean of the last layer's token states of one unpadded text, L2-normalized;
    encoded beside a longer text (so padded), in the second row of the output. The identity names the pooling,
    the max_length and the normalization (the cache keeps the vectors of each apart)."""
    encoder = TextEncoder(batch_size=4)
    encoder._load()  # one load of MiniLM for the encoder and the reference alike
    tokenizer, model = encoder._tokenizer, encoder._model
    texts = ["A much longer sentence about the weather in the mountains this week.", "A cat sleeps."]
    with torch.no_grad():
        states = model.eval()(**tokenizer(texts[1], return_tensors="pt")).last_hidden_state[0]
    by_hand = torch.nn.functional.normalize(states.mean(0), dim=0)
    vectors = encoder.encode(texts)
    assert torch.allclose(vectors[1], by_hand, atol=1e-5)
    assert not torch.allclose(vectors[0], by_hand, atol=1e-2)
    assert encoder.identity.endswith(":mean:256:1:fixed4")
    assert TextEncoder(normalize=False).identity.endswith(":mean:256:0:fixed64")


def test_texts_are_cut_at_max_length_tokens_and_said_so(caplog) -> None:
    """max_length = 5 keeps [CLS], the first three word pieces and [SEP]: two texts that share their first three
    words ("the cat sat") get the same vector; with room for all their tokens they do not. The cut is said (two
    responses became one feature without a word)."""
    texts = ["the cat sat on the mat", "the cat sat under a big old tree"]
    short, long = TextEncoder(max_length=5, batch_size=2), TextEncoder(max_length=32, batch_size=2)
    short._load()
    long._tokenizer, long._model = short._tokenizer, short._model  # one load of MiniLM
    with caplog.at_level("WARNING", logger="pluralign"):
        cut = short.encode(texts)
    assert caplog.messages == ["2 of 2 texts embedded are longer than max_length=5 tokens; each is cut to its first 5"]
    assert torch.allclose(cut[0], cut[1], atol=1e-6)
    assert short.token_lengths(texts, chunk=1) == [8, 10]
    whole = long.encode(texts)
    assert not torch.allclose(whole[0], whole[1], atol=1e-2)


def test_the_cut_is_said_once_for_all_the_shards_of_one_embedding(tmp_path, monkeypatch, caplog) -> None:
    """The cache wrote a shard every SHARD_TEXTS texts by encoding each shard's texts on their own: each said its
    own count ("2 of 2", "2 of 2", "1 of 1"), one warning per 8,192 texts. One pass now says "5 of 5" once, keeps
    the shards, and gives the vectors that encoding the texts one by one gives."""
    from pluralign.data import cache as cache_module

    monkeypatch.setattr(cache_module, "SHARD_TEXTS", 2)
    texts = [f"the cat number {i} " + "sat on the mat " * 8 for i in range(5)]
    encoder = TextEncoder(max_length=32, batch_size=2)
    with caplog.at_level("WARNING", logger="pluralign"):
        vectors = cache_module.EmbeddingCache(tmp_path).embed(texts, encoder)
    assert caplog.messages == ["5 of 5 texts embedded are longer than max_length=32 tokens; each is cut to its "
                               "first 32"]
    assert len(list(tmp_path.rglob("shard-*.safetensors"))) == 3
    assert torch.equal(vectors, torch.cat([encoder.encode([t]) for t in texts]))


def test_backbone_paths_and_settings_a_model_cannot_take(tmp_path, monkeypatch) -> None:
    """'~/model' was handed to transformers as a hub id ("Repo id must use alphanumeric chars"), max_length past
    the model's 512 positions failed inside torch after the embedding began, and a checkpoint stored in bfloat16
    or a tokenizer padding on the left share no cached vectors with this version, which runs them in float32
    and pads on the right."""
    from pluralign.backbones.text_encoder import _computes_otherwise, _resolve, load_backbone

    import huggingface_hub

    monkeypatch.setenv("HOME", str(tmp_path))
    assert _resolve("~/model") == str(tmp_path / "model")
    # a hub id is its snapshot folder (named by the commit): a new revision in the cache is a new identity
    snapshot = tmp_path / "hub" / "snapshots" / "abc123"
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache",
                        lambda repo, name: str(snapshot / name) if repo == "org/model" else None)
    assert (_resolve("org/model"), _resolve("org/other")) == (str(snapshot), "org/other")
    for path in ("./nope", "C:\\models\\mini", "models\\mini"):  # paths, not hub ids: no hub lookup
        assert _resolve(path) == path
    with pytest.raises(ValueError, match=r"^backbone './nope': no such folder"):
        load_backbone("./nope")
    with pytest.raises(ValueError, match=r"^max_length=1024: backbone 'all-MiniLM-L6-v2' has 512 positions$"):
        load_backbone(None, max_length=1024)
    (tmp_path / "config.json").write_text('{"torch_dtype": "bfloat16"}')
    (tmp_path / "tokenizer_config.json").write_text('{"padding_side": "left"}')
    assert _computes_otherwise(tmp_path) == ":f32:rpad"
    from pluralign.backbones.text_encoder import default_backbone_path

    assert _computes_otherwise(Path(default_backbone_path())) == ""  # the default keeps its cached vectors


def test_two_model_folders_of_one_name_and_config_are_two_identities(tmp_path) -> None:
    """Two fine-tunes of one base model share its config.json; in folders of the same name (runs/a/model,
    runs/b/model) they shared cached vectors. The folder's files (name, size, time) are part of the identity."""
    import os
    import shutil

    from pluralign.backbones.text_encoder import default_backbone_path

    first, second = tmp_path / "a" / "model", tmp_path / "b" / "model"
    for folder in (first, second):
        folder.mkdir(parents=True)
        shutil.copy(Path(default_backbone_path()) / "config.json", folder / "config.json")
        (folder / "model.safetensors").write_bytes(b"weights")
    os.utime(second / "model.safetensors", ns=(1, 1))  # a fine-tune written at another time
    assert TextEncoder(str(first)).identity != TextEncoder(str(second)).identity
    assert TextEncoder(str(first)).identity == TextEncoder(str(first)).identity  # a folder left alone: its vectors


def test_max_length_counts_the_positions_a_roberta_style_model_can_use(tmp_path) -> None:
    """RoBERTa numbers positions from its pad id + 1 (514 positions hold 512 tokens): max_length=514 passed the
    check and failed inside torch ("index out of range in self") at the first long text."""
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel

    from pluralign.backbones.text_encoder import default_backbone_path, load_backbone

    config = RobertaConfig(vocab_size=30522, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=16, max_position_embeddings=34, pad_token_id=1)
    RobertaModel(config).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(default_backbone_path()).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"^max_length=33: backbone '.*' has 32 positions$"):
        load_backbone(str(tmp_path), max_length=33)
    encoder = TextEncoder(str(tmp_path), max_length=32, batch_size=2)
    assert encoder.encode(["word " * 40]).shape == (1, 8)  # 32 tokens: the last position there is
    from transformers import XLMConfig, XLMModel  # a pad id on its token table, positions from 0: all 34 are there

    xlm = tmp_path / "xlm"
    XLMModel(XLMConfig(vocab_size=30522, emb_dim=8, n_layers=1, n_heads=2, max_position_embeddings=34,
                       pad_index=2)).save_pretrained(xlm)
    AutoTokenizer.from_pretrained(default_backbone_path()).save_pretrained(xlm)
    load_backbone(str(xlm), max_length=34)
    with pytest.raises(ValueError, match=r"^max_length=35: backbone '.*' has 34 positions$"):
        load_backbone(str(xlm), max_length=35)
