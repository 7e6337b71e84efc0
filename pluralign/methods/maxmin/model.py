"""MaxMin-RLHF (Chakraborty et al. 2024, "MaxMin-RLHF: Alignment with Diverse Human Preferences",
arXiv:2402.08925): a mixture of G group BT rewards learned by EM over users (Algorithm 1, see ``em.py``),
and the egalitarian MaxMin objective max_π min_g E[r̃_g] (eq. 9), here as a selection score
``maxmin_score(x, y) = min_g r̃_g(x, y)`` with r̃_g the reward of group g standardized over the training
responses (so no group wins the min just by its scale), and best-of-N selection with it.

A user is their posterior over groups: known users their (hard or soft) EM assignment, a new user
p(g | k pairs) ∝ π_g Π σ(logit_g) (no gradient steps), k = 0 the mixing weights π. A pair's logit for a
user is the mixture logit of the groups' logits under that posterior.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import torch
from torch import nn

from pluralign.methods.base import PreferenceModel, UserVector
from pluralign.methods.bt.model import RewardNetwork
from pluralign.methods.common import accuracy, mixture_logit
from pluralign.methods.maxmin import em
from pluralign.methods.maxmin.fitting import MaxMinFitting
from pluralign.methods.network import PreferenceNetwork


class BestOfN(NamedTuple):
    index: int
    candidate: Any
    scores: torch.Tensor


class GroupRewardNetwork(PreferenceNetwork):
    """G group rewards (each a BT :class:`RewardNetwork`), EM assignments and mixing weights as buffers."""

    def __init__(self, prompt_dim: int, response_dim: int, n_groups: int, hidden: Sequence[int], n_users: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.user_dim = n_groups
        self.groups = nn.ModuleList(RewardNetwork(prompt_dim, response_dim, hidden, dropout) for _ in range(n_groups))
        self.register_buffer("assignment", torch.full((n_users, n_groups), 1.0 / n_groups))
        self.register_buffer("proportions", torch.full((n_groups,), 1.0 / n_groups))
        self.register_buffer("reward_mean", torch.zeros(n_groups))
        self.register_buffer("reward_std", torch.ones(n_groups))

    def group_rewards(self, prompt: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
        return torch.stack([g.reward(prompt, response, None) for g in self.groups], dim=-1)

    def group_logits(self, prompt, chosen, rejected) -> torch.Tensor:
        return self.group_rewards(prompt, chosen) - self.group_rewards(prompt, rejected)

    def logits(self, prompt, chosen, rejected, users):
        return mixture_logit(self.group_logits(prompt, chosen, rejected), torch.log(users))

    def reward(self, prompt, response, users):
        # a user's expected reward under their posterior; a known (hard) user gets their group's reward
        return (users * self.group_rewards(prompt, response)).sum(-1)

    def standardized_rewards(self, prompt: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
        return (self.group_rewards(prompt, response) - self.reward_mean) / self.reward_std

    def population_user(self) -> torch.Tensor:
        return self.proportions.detach().cpu()

    def known_users(self, index: torch.Tensor) -> torch.Tensor:
        return self.assignment[index]


class ResponsibilityObjective(nn.Module):
    """The M-step: responsibility-weighted BT NLL of every group; unknown users weigh by π."""

    def __init__(self, network: GroupRewardNetwork, responsibilities: torch.Tensor) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("responsibilities", responsibilities.clone(), persistent=False)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        user = batch["user"]
        weights = self.responsibilities[user.clamp_min(0)]
        if not bool((user >= 0).all()):
            weights = torch.where((user >= 0).unsqueeze(-1), weights, self.responsibilities.mean(0))
        logits = self.network.group_logits(batch["prompt"], batch["chosen"], batch["rejected"])
        return {"loss": em.responsibility_nll(logits, weights),
                "accuracy": accuracy(mixture_logit(logits, torch.log(weights)))}


class MaxMin(MaxMinFitting, PreferenceModel):
    """``pluralign fit maxmin``: EM over users into G group rewards; MaxMin selection over the groups."""

    name = "maxmin"
    reweights_prior_points = True  # query_predictions: the same points for every context, reweighted

    def __init__(self, n_groups: int = 2, hidden: Sequence[int] = (), dropout: float = 0.0, hard: bool = True,
                 init: str = "gradient", em_iterations: int = 10, em_epochs: int = 10, lr: float = 0.01,
                 **kwargs) -> None:
        super().__init__(lr=lr, **kwargs)
        self.n_groups, self.hidden, self.dropout, self.hard, self.init = n_groups, list(hidden), dropout, hard, init
        self.em_iterations, self.em_epochs = em_iterations, em_epochs
        self.require(n_groups >= 1, "n_groups", "must be at least 1")
        self.require(all(int(h) >= 1 for h in self.hidden), "hidden", "must be positive layer widths")
        self.require(0.0 <= dropout < 1.0, "dropout", "must lie in [0, 1)")
        self.require(init in ("gradient", "random"), "init", "must be 'gradient' or 'random'")
        self.require(em_iterations >= 1, "em_iterations", "must be at least 1")
        self.require(em_epochs >= 1, "em_epochs", "must be at least 1")
        self.require(self.finetune_layers == 0, "finetune_layers",
                     "must be 0: MaxMin's EM refits its group rewards on cached embeddings of a frozen backbone")

    def build_network(self, prompt_dim: int, response_dim: int, n_users: int) -> GroupRewardNetwork:
        return GroupRewardNetwork(prompt_dim, response_dim, self.n_groups, self.hidden, n_users, self.dropout)

    @torch.no_grad()
    def adapt(self, features) -> UserVector:
        """The exact posterior over groups from the k pairs (no gradient steps)."""
        network = self.check_fitted()
        logits = network.group_logits(features.prompt, features.chosen, features.rejected)
        log_likelihood = em.user_log_likelihood(logits, torch.zeros(len(features), dtype=torch.long), 1)
        return UserVector(em.posterior(log_likelihood, torch.log(network.proportions))[0], method=self.name)

    @torch.no_grad()
    def query_predictions(self, pool, context):
        """The groups, weighted by their exact posterior given the context (the mixing proportions without
        one), and each group's P(a ≻ b) on the pool."""
        network = self.check_fitted()
        weights = network.proportions if context is None else self.adapt(context).mean
        return torch.sigmoid(network.group_logits(pool.prompt, pool.chosen, pool.rejected)).T, weights

    def assignments(self) -> dict[str, int]:
        """Each training user's group (the argmax of their assignment)."""
        groups = self.check_fitted().assignment.argmax(-1).tolist()
        return dict(zip(self.user_ids_, groups))

    @torch.no_grad()
    def maxmin_score(self, prompts: Any, responses: Any, cache: bool = True) -> torch.Tensor:
        """min over the populated groups of the standardized group rewards: the worst-off group's reward."""
        network = self.check_fitted()
        prompt, response = self._texts_to_features(prompts, responses, cache=cache)
        rewards = network.standardized_rewards(prompt, response)
        populated = network.proportions > 0
        return rewards[:, populated].min(-1).values

    def best_of_n(self, prompt: Any, candidates: Any) -> BestOfN:
        """The candidate whose worst-off group is best off (MaxMin best-of-N)."""
        n = candidates.shape[0] if isinstance(candidates, torch.Tensor) else len(candidates)
        if n == 0:
            raise ValueError(f"{self.name}: best_of_n of no candidates; give at least one")
        prompts = prompt.expand(n, -1) if isinstance(prompt, torch.Tensor) else [prompt] * n
        scores = self.maxmin_score(prompts, candidates)
        index = int(scores.argmax())
        return BestOfN(index, candidates[index], scores)
