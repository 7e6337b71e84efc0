"""Bradley–Terry reward model (Bradley & Terry 1952; the reward model of RLHF, Ouyang et al. 2022).

One reward r(x, y) for everyone: P(y_c ≻ y_r | x) = σ(r(x, y_c) − r(x, y_r)), trained by the BT
negative log-likelihood. The baseline every personalized method is measured against: on pairs where
users disagree it can do no better than the majority.
"""

from __future__ import annotations

from typing import Sequence

import torch

from pluralign.methods.base import PreferenceModel
from pluralign.methods.common import MLP
from pluralign.methods.network import PreferenceNetwork


class RewardNetwork(PreferenceNetwork):
    """r(x, y) = MLP([φ(x), φ(y)]) on frozen features; the same head serves every user."""

    def __init__(self, prompt_dim: int, response_dim: int, hidden: Sequence[int], dropout: float = 0.0) -> None:
        super().__init__()
        self.head = MLP(prompt_dim + response_dim, hidden, 1, dropout)

    def reward(self, prompt, response, users):
        return self.head(torch.cat([prompt, response], dim=-1)).squeeze(-1)

    def logits(self, prompt, chosen, rejected, users):
        return self.reward(prompt, chosen, users) - self.reward(prompt, rejected, users)


class BradleyTerry(PreferenceModel):
    """``pluralign fit bt``: a single reward model on pooled pairs (user ids are ignored)."""

    name = "bt"
    uses_user_ids = False

    def __init__(self, hidden: Sequence[int] = (256,), dropout: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hidden, self.dropout = list(hidden), dropout
        self.require(all(int(h) >= 1 for h in self.hidden), "hidden", "must be positive layer widths")
        self.require(0.0 <= dropout < 1.0, "dropout", "must lie in [0, 1)")

    def build_network(self, prompt_dim: int, response_dim: int, n_users: int) -> RewardNetwork:
        return RewardNetwork(prompt_dim, response_dim, self.hidden, self.dropout)
