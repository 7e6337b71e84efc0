"""Turn preference rows into tensors: the prompt, chosen and rejected features of each pair.

Text goes through the frozen backbone once (via the embedding cache); precomputed ``*_embedding``
columns are used as they are, and then no backbone runs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from pluralign.data.contract import DataError, PreferenceSet


@dataclass
class PairFeatures:
    """Features of N pairs. ``prompt`` may have zero columns (no prompt features); ``user`` is the
    index of each row's user among the model's known users, -1 where unknown."""

    prompt: torch.Tensor  # [N, Dp]
    chosen: torch.Tensor  # [N, Dr]
    rejected: torch.Tensor  # [N, Dr]
    user: torch.Tensor  # [N] long

    def __len__(self) -> int:
        return self.chosen.shape[0]

    def __getitem__(self, index) -> "PairFeatures":
        return PairFeatures(*(getattr(self, f.name)[index] for f in fields(self)))

    def as_batch(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def prompt_dim(self) -> int:
        return self.prompt.shape[1]

    @property
    def response_dim(self) -> int:
        return self.chosen.shape[1]


class FeatureCenter(torch.nn.Module):
    """The training rows' mean prompt vector and mean response vector, subtracted from every input.

    Vectors pooled from every layer of a backbone (``pooling: layer-mean``) share a large common direction:
    on ``pets`` two texts' mean cosine is 0.69, against 0.29 from the last layer. It drowns what tells a
    user's type, and VPL's encoder suffers from it (``PreferenceModel(center_features=True)``, README)."""

    def __init__(self, prompt: torch.Tensor, response: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("prompt", prompt)
        self.register_buffer("response", response)

    @classmethod
    def of(cls, features: PairFeatures) -> "FeatureCenter":
        return cls(features.prompt.mean(0), torch.cat([features.chosen, features.rejected]).mean(0))

    def vectors(self, prompt: torch.Tensor, *responses: torch.Tensor) -> list[torch.Tensor]:
        """Centred columns: the first is the prompt's, the others responses'."""
        return [prompt - self.prompt.to(prompt.device), *(r - self.response.to(r.device) for r in responses)]

    def forward(self, features: PairFeatures) -> PairFeatures:
        return PairFeatures(*self.vectors(features.prompt, features.chosen, features.rejected), features.user)


class PairDataset(torch.utils.data.Dataset):
    """Rows of PairFeatures as dicts, for a DataLoader."""

    def __init__(self, features: PairFeatures) -> None:
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.features[i].as_batch()

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        # one gather per batch instead of one dict per row: the loader then needs no collation;
        # "row" lets an objective find the batch's pairs among all features (VPL leaves them out of contexts)
        rows = torch.as_tensor(indices)
        return {**self.features[rows].as_batch(), "row": rows}


def keep_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """collate_fn for PairDataset: batches arrive already stacked (module-level so it pickles)."""
    return batch


def _embedding_column(data: PreferenceSet, column: str) -> torch.Tensor:
    values = data.column(column)
    if values[0] is None:  # the reader saw to it that all rows have the column or none does
        return torch.zeros(len(data), 0)
    return torch.tensor(values, dtype=torch.float32)


def user_tensor(data: PreferenceSet, user_index: dict[str, int]) -> torch.Tensor:
    """Each row's index among the model's known users, −1 where unknown."""
    return torch.tensor([user_index.get(u, -1) for u in data.column("user_id")], dtype=torch.long)


def featurize(
    data: PreferenceSet,
    encoder=None,
    cache=None,
    user_index: dict[str, int] | None = None,
    progress: bool = False,
) -> PairFeatures:
    """Features for every row of ``data``; texts are embedded at most once each (deduplicated, cached)."""
    user_index = user_index or {}
    users = user_tensor(data, user_index)
    if data.has_embeddings:
        return PairFeatures(
            _embedding_column(data, "prompt_embedding"),
            _embedding_column(data, "chosen_embedding"),
            _embedding_column(data, "rejected_embedding"),
            users,
        )
    if encoder is None:
        raise DataError(f"{data.source}: rows hold text but the model was trained on precomputed embeddings")
    from pluralign.data.cache import EmbeddingCache

    cache = cache if cache is not None else EmbeddingCache()
    n = len(data)
    texts = data.column("prompt", "") + data.column("chosen") + data.column("rejected")
    vectors = cache.embed(texts, encoder, progress=progress)
    return PairFeatures(vectors[:n], vectors[n : 2 * n], vectors[2 * n :], users)
