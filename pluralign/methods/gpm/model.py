"""General Preference embedding Model (Zhang et al. 2024, "Beyond Bradley-Terry Models: A General
Preference Model for Language Model Alignment", arXiv:2410.02197).

Each response gets a preference embedding v(x, y) ∈ R^{2k}; the preference score is skew-symmetric,

    s(y_a ≻ y_b | x) = v_aᵀ R(x, u) v_b,   R = diag_j( λ_j(x, u) · [[0, −1], [1, 0]] ),   P = σ(s / τ),

so P(a ≻ b) + P(b ≻ a) = 1 and P(a ≻ a) = ½ by construction, and cyclic (intransitive) preferences
are representable, which no scalar reward can do. There is **no scalar reward**.

Eigenvalues λ (paper §4, "prompt-dependent eigenvalue scale gate"): λ(x) = k · softmax(W φ(x) / √d_x)
over the k blocks; without the prompt gate λ ≡ 1. Personalization (ours): a user vector w_u on the
simplex re-mixes the blocks, λ(x, u) = k · softmax(log softmax(W φ(x) / √d_x) + log w_u); the
population user is uniform (λ(x, u) = λ(x)); few-shot = fit only w_u by the pairs' likelihood, or with
``few_shot="training-users"`` the posterior mean over the training users' own w (an empirical prior,
:func:`~pluralign.methods.few_shot.posterior_mean`).

The reference normalizes v to the unit sphere at inference only; we apply the same choice
(``normalize``) in training and inference, so the model scored is the model trained.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pluralign.methods.base import PreferenceModel, UserVector
from pluralign.methods.common import MLP, SimplexWeights
from pluralign.methods.few_shot import (fit_user_vector, gaussian_query_predictions, point_query_predictions,
                                        posterior_mean)
from pluralign.methods.network import PreferenceNetwork

NO_SCALAR_REWARD = ("gpm: GPM has no scalar reward: it scores pairs with a skew-symmetric form "
                    "P(a ≻ b) = σ(v_aᵀ R v_b / τ), which can be intransitive; use prefer_proba(prompts, a, b, user)")


def skew_score(a: torch.Tensor, b: torch.Tensor, eigenvalues: torch.Tensor) -> torch.Tensor:
    """aᵀ R b with R = diag_j(λ_j [[0, −1], [1, 0]]); a, b [N, 2k], eigenvalues [N, k] → [N].

    Per block: −a₁b₂ + a₂b₁. Swapping a and b negates every product exactly, so s(b, a) = −s(a, b) and
    s(a, a) = 0 hold bit for bit, not just up to rounding.
    """
    a1, a2, b1, b2 = a[:, 0::2], a[:, 1::2], b[:, 0::2], b[:, 1::2]
    return (eigenvalues * (a2 * b1 - a1 * b2)).sum(-1)


def complementary_sigmoid(logits: torch.Tensor) -> torch.Tensor:
    """σ(z), computed as 1 − σ(−z) for z < 0: then σ(z) + σ(−z) = 1 exactly in floating point
    (1 − p is exact for p ∈ [½, 1], Sterbenz), where torch.sigmoid can miss by an ulp."""
    return torch.where(logits >= 0, torch.sigmoid(logits), 1 - torch.sigmoid(-logits))


class PreferenceEmbeddingNetwork(PreferenceNetwork):
    """v(x, y) = MLP([φ(x), φ(y)]) ∈ R^{2k}; optional prompt gate; per-user block weights."""

    def __init__(self, prompt_dim: int, response_dim: int, n_blocks: int, hidden: Sequence[int], tau: float,
                 normalize: bool, prompt_gate: bool, n_users: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.user_dim, self.tau, self.normalize = n_blocks, tau, normalize
        self.embed = MLP(prompt_dim + response_dim, hidden, 2 * n_blocks, dropout)
        # a 0-wide prompt has nothing to gate on: the gate is then off (λ ≡ 1 for the population)
        self.gate = nn.Linear(prompt_dim, n_blocks, bias=False) if prompt_gate and prompt_dim > 0 else None
        self.known = SimplexWeights(n_users, n_blocks)

    def embedding(self, prompt: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
        v = self.embed(torch.cat([prompt, response], dim=-1))
        return F.normalize(v, dim=-1) if self.normalize else v

    def eigenvalues(self, prompt: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        """λ(x, u) = k · softmax(log softmax(gate(x) / √d) + log w_u), [N, k]; mean 1 over blocks."""
        # a weight that underflowed to 0 (logits 104 apart) would make log's gradient inf · 0 = NaN
        log_mix = torch.log(users.clamp_min(torch.finfo(users.dtype).tiny))
        if self.gate is not None:
            log_mix = log_mix + F.log_softmax(self.gate(prompt) / math.sqrt(prompt.shape[-1]), dim=-1)
        return self.user_dim * torch.softmax(log_mix, dim=-1)

    def logits(self, prompt, chosen, rejected, users):
        score = skew_score(self.embedding(prompt, chosen), self.embedding(prompt, rejected),
                           self.eigenvalues(prompt, users))
        return score / self.tau

    def logits_of_users(self, prompt, chosen, rejected):
        first, second = self.embedding(prompt, chosen), self.embedding(prompt, rejected)
        return lambda users: skew_score(first, second, self.eigenvalues(prompt, users)) / self.tau

    def reward(self, prompt, response, users):
        raise NotImplementedError(NO_SCALAR_REWARD)

    def population_user(self) -> torch.Tensor:
        return torch.full((self.user_dim,), 1.0 / self.user_dim)

    def known_users(self, index: torch.Tensor) -> torch.Tensor:
        return self.known(index)


class GPM(PreferenceModel):
    """``pluralign fit gpm``: skew-symmetric preference embeddings; few-shot = the user's block weights."""

    name = "gpm"
    reweights_prior_points = True  # query_predictions: the same points for every context, reweighted
    few_shot_rules = ("map", "training-users")  # a gradient fit of w_u; the posterior over the training users' w
    without_users = "personalize=false trains one population model on pooled pairs, as bt does"

    def __init__(self, n_blocks: int = 4, hidden: Sequence[int] = (), tau: float = 0.1,
                 normalize: bool = True, prompt_gate: bool = False, personalize: bool = True,
                 dropout: float = 0.0, few_shot: str = "map", adapt_steps: int = 200, adapt_lr: float = 0.1,
                 adapt_prior: float = 0.1, adapt_draws: int = 4000, lr: float = 0.01, **kwargs) -> None:
        super().__init__(lr=lr, **kwargs)
        self.n_blocks, self.hidden, self.tau, self.normalize = n_blocks, list(hidden), tau, normalize
        self.prompt_gate, self.personalize, self.dropout = prompt_gate, personalize, dropout
        self.adapt_steps, self.adapt_lr, self.adapt_prior = adapt_steps, adapt_lr, adapt_prior
        self.adapt_draws, self.few_shot = adapt_draws, few_shot
        self.require(few_shot in self.few_shot_rules, "few_shot", f"must be one of {self.few_shot_rules}")
        self.require(few_shot == "map" or personalize, "few_shot",
                     "needs personalize=True: without user ids there are no training users' weights to read")
        self.require(adapt_draws >= 1, "adapt_draws", "must be at least 1")
        self.require(n_blocks >= 1, "n_blocks", "must be at least 1 (the embedding has 2·n_blocks dimensions)")
        self.require(all(int(h) >= 1 for h in self.hidden), "hidden", "must be positive layer widths")
        self.require(tau > 0, "tau", "must be positive")
        self.require(0.0 <= dropout < 1.0, "dropout", "must lie in [0, 1)")
        self.require(adapt_steps >= 1, "adapt_steps", "must be at least 1")
        self.require(adapt_lr > 0, "adapt_lr", "must be positive")
        self.require(adapt_prior >= 0, "adapt_prior", "must be non-negative")

    @property
    def uses_user_ids(self) -> bool:  # type: ignore[override]
        return self.personalize

    def build_network(self, prompt_dim: int, response_dim: int, n_users: int) -> PreferenceEmbeddingNetwork:
        return PreferenceEmbeddingNetwork(prompt_dim, response_dim, self.n_blocks, self.hidden, self.tau,
                                          self.normalize, self.prompt_gate, n_users, self.dropout)

    def adapt(self, features) -> UserVector:
        """Few-shot: fit only the user's block weights w_u = softmax(u) on the k pairs, or (``training-users``)
        their posterior mean over the training users' own weights."""
        network, features = self.head_inputs(features)
        points = self.prior_points(network)
        if points is not None:
            with torch.no_grad():
                return UserVector(posterior_mean(network, features, points), method=self.name)
        free = fit_user_vector(network, features, lambda u: torch.softmax(u, -1), torch.zeros(self.n_blocks),
                               steps=self.adapt_steps, lr=self.adapt_lr, prior_weight=self.adapt_prior)
        return UserVector(torch.softmax(free, -1), method=self.name)

    def prior_user(self) -> UserVector:
        """``training-users``: the training users' mean weights, the posterior mean given no pairs (the k ≥ 1
        rule's own prior), not the uniform weights the gradient fit's prior is centred on."""
        network = self.check_fitted()
        points = self.prior_points(network)
        if points is None:
            return super().prior_user()
        with torch.no_grad():
            return UserVector(posterior_mean(network, None, points), method=self.name, fit=self.fit_id)

    def query_predictions(self, pool, context):
        """The posterior over the block weights softmax(u) under the few-shot fit's Gaussian prior on u
        (``adapt_prior``), as ``adapt_draws`` seeded draws weighted by the context's likelihood, and their
        P(a ≻ b) on the pool; with ``few_shot="training-users"`` the training users' weights are the points."""
        network, pool = self.head_inputs(pool)
        context = self.head_inputs(context)[1] if context is not None else None
        points = self.prior_points(network)
        if points is not None:
            return point_query_predictions(network, pool, context, points)
        self.require(self.adapt_prior > 0, "adapt_prior", "must be positive for active queries (a proper prior)")
        return gaussian_query_predictions(network, pool, context, lambda u: torch.softmax(u, -1),
                                          torch.zeros(self.n_blocks), self.adapt_prior, self.adapt_draws, self.seed)

    def prior_points(self, network: PreferenceEmbeddingNetwork) -> torch.Tensor | None:
        """The points of the ``training-users`` prior, every training user's block weights [n_users, k]; None
        where the rule is the gradient fit (or no user was trained)."""
        if self.few_shot != "training-users" or not self.user_ids_:
            return None
        return network.known_users(torch.arange(len(self.user_ids_)))

    def prefer_proba(self, prompts: Any, a: Any, b: Any, user: Any = None) -> torch.Tensor:
        prompt, first, second = self._texts_to_features(prompts, a, b)
        users = self.user_matrix(user, first.shape[0])
        with torch.no_grad():
            return complementary_sigmoid(self.finite(self.check_fitted().logits(prompt, first, second, users)))

    def score(self, prompts: Any, responses: Any, user: Any = None, cache: bool = True) -> torch.Tensor:
        raise NotImplementedError(NO_SCALAR_REWARD)
