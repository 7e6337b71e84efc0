"""The embedding cache by hand, with a stand-in encoder (no backbone): what a shard holds and what it counts."""

from __future__ import annotations

import torch

from conftest import StandInEncoder
from pluralign.data.cache import EmbeddingCache, text_hash

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


def test_an_interrupted_embedding_keeps_the_shards_it_finished(tmp_path, monkeypatch) -> None:
    """One shard was written after every missing text was encoded: a Ctrl-C in the last batch of hours of
    embedding kept nothing. A shard is written every SHARD_TEXTS texts."""
    from pluralign.data import cache as cache_module

    monkeypatch.setattr(cache_module, "SHARD_TEXTS", 4)
    texts = [f"t{i}" for i in range(10)]

    class StopsInTheThirdChunk(StandInEncoder):
        def encode(self, texts, progress=False):
            if len(self.encoded) >= 8:
                raise KeyboardInterrupt
            return super().encode(texts, progress)

    try:
        EmbeddingCache(tmp_path).embed(texts, StopsInTheThirdChunk())
    except KeyboardInterrupt:
        pass
    encoder = StandInEncoder()
    assert torch.equal(EmbeddingCache(tmp_path).embed(texts, encoder), expected(texts))
    assert encoder.encoded == texts[8:]  # the first two chunks' 8 texts were kept


def test_a_shard_of_other_vectors_than_the_cache_writes_is_dropped(tmp_path, caplog) -> None:
    """float16 or NaN vectors (never written by the cache: a tampered or foreign file) were served as they were."""
    from safetensors.torch import save_file

    cache = EmbeddingCache(tmp_path)
    cache.embed(["x"], StandInEncoder())
    (shard,) = cache._folder(StandInEncoder.identity).glob("shard-*.safetensors")
    save_file({"embeddings": torch.tensor([[1.0, float("nan")]])}, str(shard))
    encoder = StandInEncoder()
    with caplog.at_level("WARNING", logger="pluralign.data"):
        assert torch.equal(EmbeddingCache(tmp_path).embed(["x"], encoder), expected(["x"]))
    assert encoder.encoded == ["x"] and "damaged embedding cache shard" in caplog.text


def test_a_cache_that_cannot_be_written_is_said_before_any_embedding(tmp_path, monkeypatch) -> None:
    """A read-only cache failed at its first shard, after 8,192 texts were embedded, naming a hashed folder."""
    import os

    encoder = StandInEncoder()
    EmbeddingCache(tmp_path).embed(["kept"], encoder)
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as a read-only folder is (root may write all)
    assert torch.equal(EmbeddingCache(tmp_path).embed(["kept"], encoder), expected(["kept"]))  # reading is fine
    try:
        EmbeddingCache(tmp_path).embed(["new"], encoder)
        raise AssertionError("no error")
    except PermissionError as err:
        assert (err.filename, err.strerror) == (str(tmp_path), "Permission denied (the embedding cache; set "
                                                "PLURALIGN_CACHE or cache_dir to a folder you can write)")
    assert encoder.encoded == ["kept"]  # nothing embedded for nothing


def test_a_killed_writers_leftovers_are_swept_after_an_hour(tmp_path) -> None:
    """kill -9 (or SIGTERM) mid-write left a shard's temporary (up to 12.6 MB) or a hash list whose shard never
    came, forever; an hour old, they go; younger (another process writing now), and the shards themselves, stay."""
    import os
    import time

    cache = EmbeddingCache(tmp_path)
    cache.embed(["kept"], StandInEncoder())
    folder = cache._folder(StandInEncoder.identity)
    old, young = folder / ".shard-abc.safetensors.x1.tmp", folder / ".shard-def.safetensors.x2.tmp"
    orphan = folder / "shard-0123456789ab.json"
    for path in (old, young, orphan):
        path.write_text("[]")
    for path in (old, orphan):
        os.utime(path, (time.time() - 3700, time.time() - 3700))
    encoder = StandInEncoder()
    assert torch.equal(EmbeddingCache(tmp_path).embed(["kept"], encoder), expected(["kept"])) and not encoder.encoded
    assert not old.exists() and not orphan.exists() and young.exists()
    assert len(list(folder.glob("shard-*.safetensors"))) == 1 and len(list(folder.glob("shard-*.json"))) == 1


def test_an_encoder_with_encode_alone_still_fills_the_cache(tmp_path, monkeypatch) -> None:
    """encode_batches is TextEncoder's; an encoder of the caller's with encode() alone (the contract before it)
    failed with an AttributeError. Each shard's texts are encoded on their own."""
    from pluralign.data import cache as cache_module

    class EncodeOnly:
        identity, dim = StandInEncoder.identity, StandInEncoder.dim

        def __init__(self) -> None:
            self.calls: list[list[str]] = []

        def encode(self, texts, progress=False):
            self.calls.append(list(texts))
            return expected(list(texts))

    monkeypatch.setattr(cache_module, "SHARD_TEXTS", 2)
    encoder, texts = EncodeOnly(), ["a", "bb", "ccc"]
    assert torch.equal(EmbeddingCache(tmp_path).embed(texts, encoder), expected(texts))
    assert encoder.calls == [["a", "bb"], ["ccc"]] and len(list(tmp_path.rglob("shard-*.safetensors"))) == 2


def test_a_process_that_waits_for_another_embedding_finds_its_shards(tmp_path, caplog) -> None:
    """Two fits started together on the same data each embedded all of it (and kept two copies of every shard).
    One embeds at a time now: the other waits on the cache's lock, then reads the shards written meanwhile and
    embeds nothing."""
    import fcntl
    import threading

    texts = ["alpha", "beta"]
    first, waiting = EmbeddingCache(tmp_path), StandInEncoder()
    first._check_writable(StandInEncoder.identity)
    second = EmbeddingCache(tmp_path)
    second._load(StandInEncoder.identity)  # read before the other process's shards exist
    result = {}
    with open(first._folder(StandInEncoder.identity) / ".lock", "a") as held:  # the other process embeds now
        fcntl.flock(held, fcntl.LOCK_EX)
        with caplog.at_level("INFO", logger="pluralign.data"):
            worker = threading.Thread(target=lambda: result.update(v=second.embed(texts, waiting)))
            worker.start()
            worker.join(timeout=1.0)
            assert worker.is_alive()  # waiting, not embedding
            first._write_shard(StandInEncoder.identity, [text_hash(t) for t in texts], expected(texts))
            fcntl.flock(held, fcntl.LOCK_UN)
            worker.join(timeout=30)
    assert torch.equal(result["v"], expected(texts)) and waiting.encoded == []
    assert (second.hits, second.misses) == (2, 0) and "another process is embedding into this cache" in caplog.text
    assert len(list(tmp_path.rglob("shard-*.safetensors"))) == 1


def test_a_cache_on_a_filesystem_without_locks_embeds_unlocked(tmp_path, monkeypatch) -> None:
    """flock fails with ENOLCK on some network mounts: the cache embeds as it did before it took a lock."""
    import errno
    import fcntl

    def no_locks(handle, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    encoder = StandInEncoder()
    assert torch.equal(EmbeddingCache(tmp_path).embed(["x", "y"], encoder), expected(["x", "y"]))
    assert encoder.encoded == ["x", "y"]
