"""A method's network on a backbone that trains with it (PAL's "Large" setting, Chen et al. 2024, §4).

The head is the method's own network, unchanged; :class:`TunedNetwork` feeds it ``backbone(token ids)``
where it would read cached embeddings, and :class:`TunedObjective` hands the method's own objective the
embedded batch, so the same loss trains head and top backbone layers, whatever the method.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pluralign.backbones.tuned import PAD, TunedBackbone
from pluralign.data.features import FeatureCenter, PairFeatures
from pluralign.methods.network import PreferenceNetwork

__all__ = ["TunedBackbone", "TunedNetwork", "TunedObjective"]


def _pad_to(ids: torch.Tensor, width: int) -> torch.Tensor:
    return F.pad(ids, (0, width - ids.shape[1]), value=PAD)


class TunedNetwork(PreferenceNetwork):
    """A method's network (``head``) on a trainable backbone: the head sees ``backbone(ids)`` where it saw
    cached features. Users, rewards and logits are the head's; only the inputs change."""

    def __init__(self, backbone: TunedBackbone, head: PreferenceNetwork, center: FeatureCenter | None = None) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head
        self.user_dim = head.user_dim
        object.__setattr__(self, "center", center)  # the model's, saved with it: not a second copy in the weights

    def embed(self, *columns: torch.Tensor) -> list[torch.Tensor]:
        """Embed several id columns [N_i, T_i] in one pass (texts shared between them are embedded once); the
        first column is the prompts'."""
        width = max(c.shape[1] for c in columns)
        vectors = self.backbone(torch.cat([_pad_to(c, width) for c in columns])).split([c.shape[0] for c in columns])
        return self.center.vectors(*vectors) if self.center is not None else list(vectors)

    def embed_sets(self, mask: torch.Tensor, *columns: torch.Tensor) -> list[torch.Tensor]:
        """Embed padded sets of id rows [U, C, T] (mask [U, C]) to [U, C, D]; padded slots stay zero."""
        vectors = self.embed(*(c[mask] for c in columns))
        out = []
        for v in vectors:
            full = v.new_zeros(*mask.shape, v.shape[-1])
            full[mask] = v
            out.append(full)
        return out

    def embed_features(self, features: PairFeatures) -> PairFeatures:
        """Token-id features as the head's input features (for work that only touches the head)."""
        return PairFeatures(*self.embed(features.prompt, features.chosen, features.rejected), features.user)

    def logits(self, prompt, chosen, rejected, users):
        return self.head.logits(*self.embed(prompt, chosen, rejected), users)

    def reward(self, prompt, response, users):
        return self.head.reward(*self.embed(prompt, response), users)

    def population_user(self) -> torch.Tensor:
        return self.head.population_user()

    def known_users(self, index: torch.Tensor) -> torch.Tensor:
        return self.head.known_users(index)


class TunedObjective(nn.Module):
    """A method's objective (built on the head) trained through the backbone: the batch's token ids are
    embedded, then the method's own loss runs on the vectors, so gradients reach the top layers."""

    def __init__(self, network: TunedNetwork, objective: nn.Module) -> None:
        super().__init__()
        self.network, self.objective = network, objective

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        prompt, chosen, rejected = self.network.embed(batch["prompt"], batch["chosen"], batch["rejected"])
        return self.objective({**batch, "prompt": prompt, "chosen": chosen, "rejected": rejected})

    def on_epoch_start(self, epoch: int, max_epochs: int) -> None:
        hook = getattr(self.objective, "on_epoch_start", None)  # schedules (VPL's KL annealing) go on
        if hook is not None:
            hook(epoch, max_epochs)
