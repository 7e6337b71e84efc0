"""A method's network on a backbone that trains with it (PAL's "Large" setting, Chen et al. 2024, §4).

The head is the method's own network, unchanged; :class:`TunedNetwork` feeds it ``backbone(token ids)``
where it would read cached embeddings, so the same objective trains head and top backbone layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pluralign.backbones.tuned import PAD, TunedBackbone
from pluralign.data.features import PairFeatures
from pluralign.methods.network import PreferenceNetwork


def _pad_to(ids: torch.Tensor, width: int) -> torch.Tensor:
    return F.pad(ids, (0, width - ids.shape[1]), value=PAD)


class TunedNetwork(PreferenceNetwork):
    """A method's network (``head``) on a trainable backbone: the head sees ``backbone(ids)`` where it saw
    cached features. Users, rewards and logits are the head's; only the inputs change."""

    def __init__(self, backbone: TunedBackbone, head: PreferenceNetwork) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head
        self.user_dim = head.user_dim

    def embed(self, *columns: torch.Tensor) -> list[torch.Tensor]:
        """Embed several id columns in one pass (texts shared between them are embedded once)."""
        width = max(c.shape[1] for c in columns)
        vectors = self.backbone(torch.cat([_pad_to(c, width) for c in columns]))
        return list(vectors.split([c.shape[0] for c in columns]))

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
