"""Few-shot user inference shared by the methods whose user is a free vector with a prior.

- :func:`fit_user_vector`: the point estimate: fit only the user's free parameter u on the k pairs, everything
  else frozen, by the BT likelihood plus a Gaussian penalty around the population (MAP under that prior);
  PAL's few-shot (Chen et al. 2024, §4.3), MiCRo's stage-2 routing adaptation, GPM's block weights.
- :func:`importance_posterior`: the whole posterior p(u | C) ∝ p(u) Π_{(c, r) ∈ C} σ(logit(c ≻ r | u)) as seeded
  prior draws and their self-normalized weights (the E-step of MaxMin's EM with one draw a group,
  :mod:`pluralign.methods.maxmin.em`); :func:`gaussian_draws` are the draws of the prior that
  :func:`fit_user_vector`'s penalty is. Active queries (:mod:`pluralign.methods.active`) read it.
- :func:`posterior_mean`: E[u | C] over fixed prior points. With the training users' own vectors as the points
  (an empirical prior, each training user equally likely) it is the few-shot rule ``training-users`` of PAL and
  GPM; VPL's ``readout: training-users`` is its amortized counterpart.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import numpy as np
import torch

from pluralign.data.features import PairFeatures
from pluralign.methods.common import logits_per_user, preference_nll
from pluralign.methods.maxmin.em import posterior, user_log_likelihood
from pluralign.methods.network import PreferenceNetwork


def fit_user_vector(
    network: PreferenceNetwork,
    features: PairFeatures,
    free_to_user: Callable[[torch.Tensor], torch.Tensor],
    init: torch.Tensor,
    steps: int = 100,
    lr: float = 0.05,
    prior_weight: float = 0.0,
) -> torch.Tensor:
    """Few-shot by gradient: fit only a free user parameter u on k pairs, everything else frozen.

    Minimizes the BT NLL of the pairs under ``users = free_to_user(u)`` plus ``prior_weight * |u − init|²``
    (a Gaussian prior around the population, which keeps 1-2 shots from overfitting). Full batch Adam from
    ``init``: deterministic for the same inputs. Returns the fitted free parameter.
    """
    init = init.detach()  # the prior's centre is a constant, never part of the graph
    free = init.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([free], lr=lr)
    trainable = [p for p in network.parameters() if p.requires_grad]
    network.requires_grad_(False)
    try:
        pairs = (features.prompt, features.chosen, features.rejected)
        if network.training:  # dropout draws anew each step: nothing to compute once
            logits_of = partial(network.logits, *pairs)
        else:  # the pairs' user-independent part (item embeddings, heads' rewards) once, not once a step
            with torch.no_grad():
                logits_of = network.logits_of_users(*pairs)
        for _ in range(steps):
            optimizer.zero_grad()
            users = free_to_user(free).expand(len(features), -1)
            logits = logits_of(users)
            loss = preference_nll(logits) + prior_weight * (free - init).pow(2).sum() / len(features)
            loss.backward()
            optimizer.step()
    finally:
        for parameter in trainable:  # as they were: a frozen part stays frozen
            parameter.requires_grad_(True)
    return free.detach()


def gaussian_draws(init: torch.Tensor, prior_weight: float, draws: int, seed: int = 0) -> torch.Tensor:
    """``draws`` seeded samples [draws, D] of the prior whose log density is −prior_weight · |u − init|² (up to a
    constant), the penalty of :func:`fit_user_vector`: N(init, I / (2 · prior_weight))."""
    if prior_weight <= 0:
        raise ValueError(f"prior_weight={prior_weight!r}: a flat prior has no draws (it must be positive)")
    noise = torch.from_numpy(np.random.default_rng(seed).standard_normal((draws, init.shape[-1])))
    return init.detach().to(torch.float32) + noise.float() / (2 * prior_weight) ** 0.5


def importance_posterior(network: PreferenceNetwork, features: PairFeatures | None, users: torch.Tensor
                         ) -> torch.Tensor:
    """Self-normalized weights [S] of prior draws ``users`` [S, D] given the k pairs (their BT likelihood); equal
    weights without pairs."""
    if features is None or len(features) == 0:
        return torch.full((len(users),), 1.0 / len(users))
    logits = logits_per_user(network, features, users.to(features.chosen.dtype)).T  # [k pairs, S]
    log_likelihood = user_log_likelihood(logits, torch.zeros(len(features), dtype=torch.long), 1)
    return posterior(log_likelihood, torch.zeros(len(users), dtype=logits.dtype))[0]


def posterior_mean(network: PreferenceNetwork, features: PairFeatures | None, users: torch.Tensor) -> torch.Tensor:
    """E[u | C] = Σ_i π_i u_i over prior points ``users`` [S, D], π their :func:`importance_posterior` weights."""
    weights = importance_posterior(network, features, users).double()  # float32 sums of many points drift off the
    return (weights @ users.double()).to(users.dtype)                     # simplex by more than their rounding


@torch.no_grad()
def point_query_predictions(network: PreferenceNetwork, pool: PairFeatures, context: PairFeatures | None,
                            users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``query_predictions`` over fixed prior points ``users`` [S, D]: each point's P(a ≻ b) on the pool [S, M]
    and its :func:`importance_posterior` weight given the context [S]."""
    users = users.to(pool.chosen.dtype)
    return torch.sigmoid(logits_per_user(network, pool, users)), importance_posterior(network, context, users)


@torch.no_grad()
def gaussian_query_predictions(network: PreferenceNetwork, pool: PairFeatures, context: PairFeatures | None,
                               free_to_user: Callable[[torch.Tensor], torch.Tensor], init: torch.Tensor,
                               prior_weight: float, draws: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``query_predictions`` of a method whose few-shot is :func:`fit_user_vector`: the posterior under the same
    Gaussian prior, as :func:`gaussian_draws` mapped by ``free_to_user`` and their :func:`importance_posterior`
    weights, and each draw's P(a ≻ b) on the pool ([S, M], [S])."""
    users = free_to_user(gaussian_draws(init, prior_weight, draws, seed))
    return point_query_predictions(network, pool, context, users)
