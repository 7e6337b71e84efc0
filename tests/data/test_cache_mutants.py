"""The embedding cache by hand, with a stand-in encoder (no backbone): what a shard holds and what it counts."""

from __future__ import annotations

import torch

from conftest import StandInEncoder
from pluralign.data.cache import EmbeddingCache

expected = StandInEncoder.vectors


def test_a_shard_read_back_gives_each_text_its_own_vector(tmp_path) -> None:
    """Twelve texts written in one shard: a fresh cache (another process) reads each text's own vector back,
    in any order asked, and encodes nothing."""
    texts = [f"{chr(97 + i)}{'x' * i}" for i in range(12)]  # lengths 1..12, first letters a..l
    EmbeddingCache(tmp_path).embed(texts, StandInEncoder())
    encoder = StandInEncoder()
    asked = texts[::-1] + texts[:3]
    assert torch.equal(EmbeddingCache(tmp_path).embed(asked, encoder), expected(asked))
    assert encoder.encoded == []


def test_hits_and_misses_count_distinct_texts(tmp_path) -> None:
    """A call over "x", "y", "x" misses 2 texts (each encoded once); then "x", "z", "x" hits 1 and misses 1."""
    cache, encoder = EmbeddingCache(tmp_path), StandInEncoder()
    assert torch.equal(cache.embed(["x", "y", "x"], encoder), expected(["x", "y", "x"]))
    assert (cache.hits, cache.misses, encoder.encoded) == (0, 2, ["x", "y"])
    assert torch.equal(cache.embed(["x", "zz", "x"], encoder), expected(["x", "zz", "x"]))
    assert (cache.hits, cache.misses, encoder.encoded) == (1, 3, ["x", "y", "zz"])
    assert cache.embed([], encoder).shape == (0, 2)
