"""PAL networks (Chen et al. 2024, "PAL: Pluralistic Alignment Framework", §3; RamyaLab/pluralistic-alignment).

Both models map responses into a preference space with a projector f and compare them with a user's
*ideal point* a_u, where the user is a point w_u = softmax(W_u) on the simplex over K prototypes:

- PAL-A (eq. 2, the "f(Pw)" user learner): a_u = f(P w_u), P ∈ R^{K×D} prototypes in the input space;
  P(c ≻ r | u) = σ(s · (d(f(x_r), a_u) − d(f(x_c), a_u))), s a learnable scale, d the squared distance
  (``distance="squared"``) or the distance itself (``"euclidean"``, the reference's ``PrefLearner_dist_logistic``,
  which takes ``torch.linalg.norm``).
- PAL-B (eq. 4, prompt-dependent ideal point): a_u(x) = Σ_k w_uk g_k(x) with K prompt projectors g_k;
  P(c ≻ r | u) = softmax over the two scaled cosines s·cos(a_u(x), f(x, y)), which for two items is
  σ(s · (cos_c − cos_r)): the cross-entropy of the paper is exactly the BT loss of that logit.

The user vector of both networks is w_u (K wide), so few-shot adaptation only has to find K − 1 numbers.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pluralign.methods.common import MLP, SimplexWeights
from pluralign.methods.network import PreferenceNetwork

MAX_LOGIT_SCALE = 100.0  # the paper's clamp on exp(logit_scale)


class UserWeights(SimplexWeights):
    """W_u with a gain: softmax(gain · W_u). Each user's logits get gradient only from that user's few
    pairs per epoch, so under Adam the gain acts as a larger learning rate for them than for the shared
    projectors (the reference trains W with its own optimizer settings)."""

    def __init__(self, n_users: int, n_components: int, gain: float) -> None:
        super().__init__(n_users, n_components)
        self.gain = gain

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.gain * self.logits[index], dim=-1)

    def all(self) -> torch.Tensor:
        """Every user's simplex weights, [n_users, K]."""
        return torch.softmax(self.gain * self.logits, dim=-1)

    def mean(self) -> torch.Tensor:
        return self.all().mean(0)


def conformal_penalty(weight: torch.Tensor) -> torch.Tensor:
    """How far a linear map is from a scaled isometry: ‖G − c·I‖²_F / c² with G the smaller Gram matrix of
    ``weight`` (W Wᵀ or Wᵀ W) and c = mean(diag G). Scale-free, so it never fights the learned logit scale;
    zero exactly when W is a multiple of an orthogonal map (distances of the input space kept up to scale).
    """
    gram = weight @ weight.T if weight.shape[0] <= weight.shape[1] else weight.T @ weight
    c = torch.diagonal(gram).mean().clamp_min(1e-12)
    return (gram - c * torch.eye(gram.shape[0], device=gram.device, dtype=gram.dtype)).pow(2).sum() / c.pow(2)


def hinge_loss(logits: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """PAL's hinge form: mean max(0, margin − logit) for logits of P(chosen ≻ rejected)."""
    return torch.clamp(margin - logits, min=0).mean()


class PalNetwork(PreferenceNetwork):
    """What PAL-A and PAL-B share: user simplex weights, the item projector f and the logit scale."""

    def __init__(self, prompt_dim: int, response_dim: int, n_users: int, k: int, pref_dim: int,
                 hidden: Sequence[int], dropout: float, init_scale: float, user_gain: float) -> None:
        super().__init__()
        self.user_dim = k
        self.item_projector = MLP(prompt_dim + response_dim, hidden, pref_dim, dropout)
        self.weights = UserWeights(n_users, k, user_gain)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(init_scale)))

    def scale(self) -> torch.Tensor:
        return self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def metric_penalty(self) -> torch.Tensor:
        """Sum of :func:`conformal_penalty` over the item projector's linear layers (see ``metric_reg``)."""
        return sum((conformal_penalty(m.weight) for m in self.item_projector if isinstance(m, nn.Linear)),
                   self.logit_scale.new_zeros(()))

    def items(self, prompt: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
        return self.item_projector(torch.cat([prompt, response], dim=-1))

    def ideal_points(self, prompt: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def closeness(self, items: torch.Tensor, ideal: torch.Tensor) -> torch.Tensor:
        """How close an item is to the ideal point (larger is preferred), before the scale."""
        raise NotImplementedError

    def reward(self, prompt, response, users):
        return self.scale() * self.closeness(self.items(prompt, response), self.ideal_points(prompt, users))

    def ideal_points_of(self, prompt: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """``users -> ideal_points(prompt, users)`` for fixed prompts (PAL-B computes its projections once)."""
        return partial(self.ideal_points, prompt)

    def gap(self, chosen_items, rejected_items, ideal):
        """How much closer the chosen item is to the user's ideal point than the rejected one, before the scale."""
        return self.closeness(chosen_items, ideal) - self.closeness(rejected_items, ideal)

    def closeness_gap(self, prompt, chosen, rejected, users):
        ideal = self.ideal_points(prompt, users)  # first, as before: autograd sums the items' gradients in graph order
        return self.gap(self.items(prompt, chosen), self.items(prompt, rejected), ideal)

    def logits(self, prompt, chosen, rejected, users):
        return self.scale() * self.closeness_gap(prompt, chosen, rejected, users)

    def logits_of_users(self, prompt, chosen, rejected):
        scale, first, second = self.scale(), self.items(prompt, chosen), self.items(prompt, rejected)
        ideal_points = self.ideal_points_of(prompt)
        return lambda users: scale * self.gap(first, second, ideal_points(users))

    def known_users(self, index: torch.Tensor) -> torch.Tensor:
        return self.weights(index)

    def population_user(self) -> torch.Tensor:
        # the mean of the learned simplex weights (not uniform): with K ≥ 2 uniform weights are no
        # training user's, while the mean is the population's average mix, the majority view at k = 0
        if self.weights.logits.shape[0] == 0:
            return torch.full((self.user_dim,), 1.0 / self.user_dim)
        return self.weights.mean()


class PalANetwork(PalNetwork):
    """PAL-A: ideal point f(P w_u) from K prototypes; preference by (squared) distance."""

    distances = ("squared", "euclidean")

    def __init__(self, prompt_dim: int, response_dim: int, n_users: int, k: int = 2, pref_dim: int = 32,
                 hidden: Sequence[int] = (64,), dropout: float = 0.0, init_scale: float = 1.0,
                 user_gain: float = 10.0, distance: str = "squared") -> None:
        super().__init__(prompt_dim, response_dim, n_users, k, pref_dim, hidden, dropout, init_scale, user_gain)
        if distance not in self.distances:
            raise ValueError(f"distance must be one of {self.distances}, got {distance!r}")
        self.distance = distance
        self.prototypes = nn.Parameter(torch.randn(k, prompt_dim + response_dim) / math.sqrt(max(prompt_dim + response_dim, 1)))

    @torch.no_grad()
    def init_prototypes(self, inputs: torch.Tensor) -> None:
        """Place the prototypes around the data (mean ± std per feature) so f sees them in range."""
        mean, std = inputs.mean(0), inputs.std(0).nan_to_num(1.0)
        self.prototypes.copy_(mean + std * torch.randn_like(self.prototypes))

    def ideal_points(self, prompt, users):
        return self.item_projector(users @ self.prototypes)

    def closeness(self, items, ideal):
        if self.distance == "euclidean":  # vector_norm's gradient at a zero distance is 0, not NaN
            return -torch.linalg.vector_norm(items - ideal, dim=-1)
        return -(items - ideal).pow(2).sum(-1)


class PalBNetwork(PalNetwork):
    """PAL-B: ideal point Σ_k w_uk g_k(prompt); preference by scaled cosine similarity."""

    def __init__(self, prompt_dim: int, response_dim: int, n_users: int, k: int = 2, pref_dim: int = 32,
                 hidden: Sequence[int] = (64,), dropout: float = 0.0, init_scale: float = 1 / 0.07,
                 user_gain: float = 10.0) -> None:
        super().__init__(prompt_dim, response_dim, n_users, k, pref_dim, hidden, dropout, init_scale, user_gain)
        # without prompt features each g_k sees a constant 1: the ideal points become K free prototypes
        self.prompt_projectors = nn.ModuleList(MLP(max(prompt_dim, 1), hidden, pref_dim, dropout) for _ in range(k))

    def prototype_points(self, prompt: torch.Tensor) -> torch.Tensor:
        """g_k(x) for every prototype, [N, K, d]."""
        if prompt.shape[1] == 0:
            prompt = prompt.new_ones(prompt.shape[0], 1)
        return torch.stack([g(prompt) for g in self.prompt_projectors], dim=1)

    def ideal_points(self, prompt, users):
        return self.ideal_points_of(prompt)(users)

    def ideal_points_of(self, prompt):
        points = self.prototype_points(prompt)
        return lambda users: (users.unsqueeze(-1) * points).sum(1)

    def closeness(self, items, ideal):
        return F.cosine_similarity(items, ideal, dim=-1)
