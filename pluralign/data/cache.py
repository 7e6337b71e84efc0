"""On-disk embedding cache: safetensors shards keyed by backbone identity and text hash.

Each call that embeds something new writes a new shard atomically for every ``SHARD_TEXTS`` texts it embeds,
so concurrent or interrupted runs never leave a half-written file, an interrupted run keeps the shards it
finished, and a second run over the same texts embeds nothing. Two processes embed one identity's texts in turn
(an advisory lock); a killed writer's temporaries, and hash lists whose shard never came, are removed after an hour.
The cache lives in ``$PLURALIGN_CACHE/embeddings`` (default ``~/.cache/pluralign/embeddings``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Iterator, Sequence

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from pluralign.io import atomic_path

LOG = logging.getLogger("pluralign.data")
STRAY_SECONDS = 3600  # a temporary or an orphan hash list older than this is a killed writer's (_sweep)
SHARD_TEXTS = 8192  # texts embedded between two shard writes: what a Ctrl-C or a killed job loses at most


def default_cache_dir() -> Path:
    return Path(os.environ.get("PLURALIGN_CACHE", Path.home() / ".cache" / "pluralign")) / "embeddings"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class EmbeddingCache:
    """``embed(texts, encoder)`` returns one row per text, computing only texts not seen before. An encoder
    has an ``identity`` (the cache key), a ``dim`` and ``encode(texts)``, and, as
    :class:`~pluralign.backbones.text_encoder.TextEncoder` has, ``encode_batches(texts)`` (else each shard's
    texts are encoded on their own)."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0
        self._index: dict[str, dict[str, torch.Tensor]] = {}  # encoder identity -> hash -> vector
        self._shards_read: dict[str, set[str]] = {}  # encoder identity -> the shard files in its index

    def _folder(self, identity: str) -> Path:
        return self.root / hashlib.sha256(identity.encode()).hexdigest()[:16]

    def _load(self, identity: str) -> dict[str, torch.Tensor]:
        if identity not in self._index:
            self._index[identity], self._shards_read[identity] = {}, set()
            self._read_new_shards(identity)
            self._sweep(self._folder(identity))
        return self._index[identity]

    def _read_new_shards(self, identity: str) -> bool:
        """Add to the index the shards not read yet (another process's, written since); whether there were any."""
        index, read = self._index[identity], self._shards_read[identity]
        new = [shard for shard in sorted(self._folder(identity).glob("shard-*.safetensors")) if shard.name not in read]
        for shard in new:
            read.add(shard.name)
            try:
                index.update(self._read_shard(shard))
            except (SafetensorError, OSError, ValueError, KeyError) as err:
                # a cache is a cache: a damaged shard goes, and its texts are embedded again when asked for
                reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                LOG.warning("%s: damaged embedding cache shard (%s); dropped, its texts will be embedded again",
                            shard, reason)
                for path in (shard, shard.with_suffix(".json")):
                    with contextlib.suppress(OSError):  # a read-only cache: the shard is skipped, not removed
                        path.unlink(missing_ok=True)
        return bool(new)

    @contextlib.contextmanager
    def _embedding_lock(self, identity: str) -> Iterator[None]:
        """One process at a time embeds an identity's missing texts: two fits started together on the same data
        each embedded all of it, and both kept their shards. The second waits, then finds the first's shards.
        An advisory lock (flock) on the identity's folder; none where the platform has no fcntl."""
        try:
            import fcntl
        except ImportError:  # Windows
            yield
            return
        with open(self._folder(identity) / ".lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                LOG.info("%s: another process is embedding into this cache; waiting for it", self._folder(identity))
                fcntl.flock(handle, fcntl.LOCK_EX)
            except OSError:  # a filesystem without locks (some network mounts): embed unlocked, as before
                yield
                return
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def _sweep(folder: Path) -> None:
        """Remove what a killed writer left, which nothing reads: a shard's temporary file, and a hash list whose
        shard never arrived. Only after an hour, so that another process's write in progress stays."""
        strays = (*folder.glob(".shard-*.tmp"),
                  *(j for j in folder.glob("shard-*.json") if not j.with_suffix(".safetensors").exists()))
        for stray in strays:
            with contextlib.suppress(OSError):  # gone already, or a read-only cache
                if time.time() - stray.stat().st_mtime > STRAY_SECONDS:
                    stray.unlink()

    @staticmethod
    def _read_shard(shard: Path) -> dict[str, torch.Tensor]:
        """hash -> vector of one shard; ValueError unless its index lists one text hash per row."""
        vectors = load_file(str(shard))["embeddings"]
        index = shard.with_suffix(".json")
        try:
            hashes = json.loads(index.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ValueError(f"{index.name}: {err.strerror if isinstance(err, OSError) else err}") from None
        if (vectors.dim() != 2 or not isinstance(hashes, list) or len(hashes) != len(vectors)
                or not all(isinstance(h, str) for h in hashes)):
            raise ValueError(f"{index.name} does not list one text hash per row")
        if vectors.dtype != torch.float32 or not bool(torch.isfinite(vectors).all()):  # never what encode wrote
            raise ValueError(f"its vectors are {vectors.dtype}, or not all finite; the cache writes finite float32")
        return dict(zip(hashes, vectors))

    def _check_writable(self, identity: str) -> None:
        folder = self._folder(identity)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            writable = os.access(folder, os.W_OK)
        except OSError as err:
            writable, reason = False, err.strerror
        else:
            reason = "Permission denied"
        if not writable:
            raise PermissionError(errno.EACCES, f"{reason} (the embedding cache; set PLURALIGN_CACHE or cache_dir to "
                                  "a folder you can write)", str(self.root))

    def _write_shard(self, identity: str, hashes: list[str], vectors: torch.Tensor) -> None:
        folder = self._folder(identity)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "backbone.txt").write_text(identity + "\n")
        name = f"shard-{uuid.uuid4().hex[:12]}"
        # the hash list is written first: a shard is only read when its .safetensors file exists
        with atomic_path(folder / f"{name}.json") as tmp:
            tmp.write_text(json.dumps(hashes))
        with atomic_path(folder / f"{name}.safetensors") as tmp:
            save_file({"embeddings": vectors.contiguous()}, str(tmp))

    def embed(self, texts: Sequence[str], encoder, progress: bool = False, store: bool = True) -> torch.Tensor:
        """One row per text: from the cache where it holds the text, else encoded (and, with ``store``, kept;
        without, as for a policy's fresh completions that will not come again, the cache does not grow)."""
        identity = encoder.identity
        index = self._load(identity)
        hashes = [text_hash(t) for t in texts]
        missing = {h: t for h, t in zip(hashes, texts) if h not in index}  # each text once
        fresh: dict[str, torch.Tensor] = {}
        if missing and store:
            self._check_writable(identity)  # before the embedding, not after its first 8,192 texts
            with self._embedding_lock(identity):
                if self._read_new_shards(identity):  # another process embedded while this one waited
                    missing = {h: t for h, t in missing.items() if h not in index}
                for shard_hashes, vectors in _shards(list(missing), list(missing.values()), encoder, progress):
                    self._write_shard(identity, shard_hashes, vectors)
                    index.update(zip(shard_hashes, vectors))
        elif missing:
            fresh = dict(zip(missing, encoder.encode(list(missing.values()), progress=progress)))
        self.misses += len(missing)
        self.hits += len(set(hashes)) - len(missing)
        if not hashes:
            return torch.zeros(0, encoder.dim)
        return torch.stack([fresh[h] if h in fresh else index[h] for h in hashes])


def _shards(hashes: list[str], texts: list[str], encoder, progress: bool) -> Iterator[tuple[list[str], torch.Tensor]]:
    """(text hashes, vectors) of every ``SHARD_TEXTS`` texts the encoder finishes, and of the rest at the end: one
    pass of ``encoder.encode_batches`` (one progress bar, one truncation warning) whose finished shards a Ctrl-C
    or a killed job keeps. A vector does not depend on its batch (``TextEncoder.encode_batches``)."""
    rows: list[int] = []
    parts: list[torch.Tensor] = []
    batches = (encoder.encode_batches(texts, progress=progress) if hasattr(encoder, "encode_batches") else
               ((list(range(start, min(start + SHARD_TEXTS, len(texts)))),  # an encoder with encode() alone
                 encoder.encode(texts[start:start + SHARD_TEXTS], progress=progress))
                for start in range(0, len(texts), SHARD_TEXTS)))
    for batch_rows, vectors in batches:
        rows += batch_rows
        parts.append(vectors)
        if len(rows) >= SHARD_TEXTS:
            yield [hashes[i] for i in rows], torch.cat(parts)
            rows, parts = [], []
    if rows:
        yield [hashes[i] for i in rows], torch.cat(parts)
