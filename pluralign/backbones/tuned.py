"""A backbone that trains with the reward head: PAL's "Large" setting (Chen et al. 2024, §4), where the
preference model's text encoder is fine-tuned end to end instead of read from frozen, cached embeddings.

Only the top ``layers`` transformer layers train; everything below them stays frozen, so autograd
records nothing there and a CPU can afford it. Texts travel through the DataLoader as token ids padded
with :data:`PAD` (no text in a batch, nothing else changes in the training loop); each forward embeds
only the batch's distinct texts, in chunks of similar length so little compute goes to padding.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pluralign.backbones.text_encoder import POOLINGS, load_backbone, pool

PAD = -1  # no tokenizer has a negative id: padding is recognizable without a separate mask tensor


def transformer_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks of a ``transformers`` model (BERT's encoder.layer, GPT-2's h, ...)."""
    n = getattr(model.config, "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return module
    raise ValueError(f"{type(model).__name__}: cannot find its {n} transformer layers to fine-tune")


class TunedBackbone(nn.Module):
    """``forward(ids [N, T]) -> [N, D]``: pooled (and L2-normalized) text vectors, the top layers trainable."""

    def __init__(self, model: str | None, layers: int, pooling: str = "mean", max_length: int = 256,
                 normalize: bool = True, chunk_size: int = 32, trust_remote_code: bool = False) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.tokenizer, self.encoder = load_backbone(model, trust_remote_code)
        self.tokenizer.padding_side = "right"  # ids are trimmed on the right per chunk
        blocks = transformer_layers(self.encoder)
        if not 1 <= layers <= len(blocks):
            raise ValueError(f"finetune_layers={layers}: the backbone has {len(blocks)} layers")
        self.encoder.requires_grad_(False)
        blocks[len(blocks) - layers:].requires_grad_(True)
        self.pooling, self.max_length, self.normalize, self.chunk_size = pooling, max_length, normalize, chunk_size

    @property
    def dim(self) -> int:
        return int(self.encoder.config.hidden_size)

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """Token ids [N, T], right-padded with PAD."""
        if len(texts) == 0:
            return torch.zeros(0, 1, dtype=torch.long)
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt")
        return batch["input_ids"].masked_fill(batch["attention_mask"] == 0, PAD)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.is_floating_point():
            raise TypeError("a fine-tuned backbone reads text (token ids), not precomputed embeddings")
        if ids.shape[0] == 0:
            return torch.zeros(0, self.dim, device=ids.device)
        unique, inverse = torch.unique(ids, dim=0, return_inverse=True)
        lengths = (unique != PAD).sum(1)
        order = torch.argsort(lengths)
        parts = []
        for chunk in order.split(self.chunk_size):
            tokens = unique[chunk, : int(lengths[chunk].max().clamp_min(1))]
            mask = tokens != PAD
            hidden = self.encoder(input_ids=tokens.clamp_min(0), attention_mask=mask.long()).last_hidden_state
            parts.append(pool(hidden, mask, self.pooling).float())
        vectors = torch.cat(parts)[torch.argsort(order)]
        if self.normalize:
            vectors = F.normalize(vectors, dim=-1)
        return vectors[inverse]
