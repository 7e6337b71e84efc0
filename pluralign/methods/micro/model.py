"""MiCRo: Mixture Modeling and Context-aware Routing (Shen et al. 2025, arXiv:2505.24846).

Stage 1 (paper eq. 3 plus its routing regularizer): K BT reward heads r_k on frozen features and a
router π(x) = softmax(W φ(x) + b) on the prompt features, trained on pooled pairs *without* user ids by

    L = −E log Σ_k π_k(x) σ(r_k(x, y_c) − r_k(x, y_r))  +  λ · E Σ_k π_k(x) log π_k(x)

(the second term is the reference code's ``load_balance_loss`` of its ``mixture_BT`` loss: the negative
routing entropy, which keeps the router from collapsing onto one head early).

Stage 2 (described in the paper, absent from the reference code): routing adaptation. A user (or a
context) is a routing-logit offset u ∈ R^K added to the router's output bias, π(x, u) = softmax(W φ(x) +
b + u); from k labelled pairs only u is fitted (heads and router frozen) by the same mixture likelihood,
with a Gaussian prior around u = 0 (the population routing). So the user vector *is* the adapted router
bias, and k = 0 gives the population model.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pluralign.data.readers import read_preferences
from pluralign.methods.base import PreferenceModel, UserVector
from pluralign.methods.bt.model import RewardNetwork
from pluralign.methods.common import accuracy, mixture_log_likelihood, mixture_logit
from pluralign.methods.few_shot import fit_user_vector, gaussian_query_predictions
from pluralign.methods.network import PreferenceNetwork


def routing_balance(log_weights: torch.Tensor) -> torch.Tensor:
    """MiCRo's routing regularizer: mean over rows of Σ_k π_k log π_k (≤ 0; minimal at uniform routing)."""
    return (log_weights.exp() * log_weights).sum(-1).mean()


class RoutedMixtureNetwork(PreferenceNetwork):
    """K BT heads (each a :class:`RewardNetwork`) mixed by a linear router on the prompt features."""

    def __init__(self, prompt_dim: int, response_dim: int, n_heads: int, hidden: Sequence[int],
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.user_dim = n_heads
        self.heads = nn.ModuleList(RewardNetwork(prompt_dim, response_dim, hidden, dropout) for _ in range(n_heads))
        # zero-initialized: routing starts uniform, and building it draws no random numbers, so a 1-head
        # MiCRo trains exactly as BT. With 0-wide prompt features the router is the learned constant b.
        self.router_weight = nn.Parameter(torch.zeros(n_heads, prompt_dim))
        self.router_bias = nn.Parameter(torch.zeros(n_heads))

    def log_routing(self, prompt: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        """log π(x, u), [N, K]: the router's logits plus the user's routing offset."""
        return F.log_softmax(prompt @ self.router_weight.T + self.router_bias + users, dim=-1)

    def head_rewards(self, prompt: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
        """r_k(x, y) for every head, [N, K]."""
        return torch.stack([head.reward(prompt, response, None) for head in self.heads], dim=-1)

    def head_logits(self, prompt, chosen, rejected) -> torch.Tensor:
        return self.head_rewards(prompt, chosen) - self.head_rewards(prompt, rejected)

    def logits(self, prompt, chosen, rejected, users):
        return mixture_logit(self.head_logits(prompt, chosen, rejected), self.log_routing(prompt, users))

    def logits_of_users(self, prompt, chosen, rejected):
        heads = self.head_logits(prompt, chosen, rejected)
        router = prompt @ self.router_weight.T + self.router_bias  # log_routing's sum, left to right
        return lambda users: mixture_logit(heads, F.log_softmax(router + users, dim=-1))

    def reward(self, prompt, response, users):
        # the routed reward Σ_k π_k r_k (the reference's inference score); pairs use the mixture likelihood
        return (self.log_routing(prompt, users).exp() * self.head_rewards(prompt, response)).sum(-1)


class MixtureObjective(nn.Module):
    """Stage-1 loss: the mixture NLL of pooled pairs plus λ times the routing regularizer."""

    def __init__(self, network: RoutedMixtureNetwork, balance_weight: float) -> None:
        super().__init__()
        self.network, self.balance_weight = network, balance_weight

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        prompt = batch["prompt"]
        users = self.network.population_user().to(prompt).expand(len(prompt), -1)
        log_pi = self.network.log_routing(prompt, users)
        head_logits = self.network.head_logits(prompt, batch["chosen"], batch["rejected"])
        nll = -mixture_log_likelihood(head_logits, log_pi).mean()
        balance = routing_balance(log_pi)
        return {"loss": nll + self.balance_weight * balance, "nll": nll, "balance": balance,
                "accuracy": accuracy(mixture_logit(head_logits, log_pi))}


class MiCRo(PreferenceModel):
    """``pluralign fit micro``: K routed BT heads from pooled pairs; few-shot = routing adaptation."""

    name = "micro"
    reweights_prior_points = True  # query_predictions: the same points for every context, reweighted
    uses_user_ids = False

    def __init__(self, n_heads: int = 4, hidden: Sequence[int] = (), dropout: float = 0.0,
                 balance_weight: float = 0.01, adapt_steps: int = 200, adapt_lr: float = 0.1,
                 adapt_prior: float = 0.1, adapt_draws: int = 4000, lr: float = 0.01, **kwargs) -> None:
        super().__init__(lr=lr, **kwargs)
        self.n_heads, self.hidden, self.dropout, self.balance_weight = n_heads, list(hidden), dropout, balance_weight
        self.adapt_steps, self.adapt_lr, self.adapt_prior = adapt_steps, adapt_lr, adapt_prior
        self.adapt_draws = adapt_draws
        self.require(adapt_draws >= 1, "adapt_draws", "must be at least 1")
        self.require(n_heads >= 1, "n_heads", "must be at least 1")
        self.require(all(int(h) >= 1 for h in self.hidden), "hidden", "must be positive layer widths")
        self.require(0.0 <= dropout < 1.0, "dropout", "must lie in [0, 1)")
        self.require(balance_weight >= 0, "balance_weight", "must be non-negative")
        self.require(adapt_steps >= 1, "adapt_steps", "must be at least 1")
        self.require(adapt_lr > 0, "adapt_lr", "must be positive")
        self.require(adapt_prior >= 0, "adapt_prior", "must be non-negative")

    def build_network(self, prompt_dim: int, response_dim: int, n_users: int) -> RoutedMixtureNetwork:
        return RoutedMixtureNetwork(prompt_dim, response_dim, self.n_heads, self.hidden, self.dropout)

    def objective(self, features) -> nn.Module:
        return MixtureObjective(self.head_network, self.balance_weight)

    def adapt(self, features) -> UserVector:
        """Stage 2: fit only the routing offset u on the k pairs (everything else frozen)."""
        network, features = self.head_inputs(features)
        offset = fit_user_vector(network, features, lambda u: u, network.population_user(),
                                 steps=self.adapt_steps, lr=self.adapt_lr, prior_weight=self.adapt_prior)
        with torch.no_grad():  # π(x, u) itself, averaged over the user's prompts: the offset alone omits Wφ(x) + b
            routing = network.log_routing(features.prompt, offset.expand(len(features), -1)).exp().mean(0)
        return UserVector(offset, method=self.name, extra={"routing": routing.tolist()})

    def query_predictions(self, pool, context):
        """The posterior over the routing offset u under stage 2's Gaussian prior (``adapt_prior``), as
        ``adapt_draws`` seeded draws weighted by the context's mixture likelihood, and their P(a ≻ b) on the pool."""
        self.require(self.adapt_prior > 0, "adapt_prior", "must be positive for active queries (a proper prior)")
        network, pool = self.head_inputs(pool)
        context = self.head_inputs(context)[1] if context is not None else None
        return gaussian_query_predictions(network, pool, context, lambda u: u, network.population_user(),
                                          self.adapt_prior, self.adapt_draws, self.seed)

    def fit(self, data: Any, *args, **kwargs) -> "MiCRo":
        data = read_preferences(data)
        super().fit(data, *args, **kwargs)
        if data.rows and data.rows[0].get("chosen_attributes"):
            self.fit_stats_["head_specialization"] = self.head_specialization(data)
        return self

    @torch.no_grad()
    def head_specialization(self, data: Any, attributes: Sequence[str] | None = None) -> dict[str, Any]:
        """Pearson correlation of each head's reward with each true attribute, over every response of
        ``data`` (rows need ``chosen_attributes``/``rejected_attributes``). Returns ``{"attributes": names,
        "correlation": K × A nested list, "best_head": attribute -> head}``."""
        data = read_preferences(data)
        attributes = list(attributes or data.rows[0]["chosen_attributes"])
        network, features = self.head_inputs(self.featurize(data))
        rewards = torch.cat([network.head_rewards(features.prompt, features.chosen),
                             network.head_rewards(features.prompt, features.rejected)])  # [2N, K]
        truth = torch.tensor([[row[f"{side}_attributes"][a] for a in attributes]
                              for side in ("chosen", "rejected") for row in data.rows], dtype=torch.float32)
        corr = torch.corrcoef(torch.cat([rewards, truth], dim=1).T)[: self.n_heads, self.n_heads:]
        corr = torch.nan_to_num(corr)  # a constant column (a dead head) correlates with nothing
        return {"attributes": attributes, "correlation": corr.tolist(),
                "best_head": {a: int(corr[:, j].abs().argmax()) for j, a in enumerate(attributes)}}
