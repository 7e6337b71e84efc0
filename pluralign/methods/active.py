"""Active queries: which unlabelled pair to ask a new user next (VPL paper, Poddar et al. 2024, §4.3).

Given the current posterior over a new user u (its prior before any answer) and a pool of unlabelled
candidate pairs (a, b), ask about the pair whose answer y = [a ≻ b] is most informative about u: the expected
information gain I(y; u | C) = H[E_u p(y | u)] − E_u H[p(y | u)] (BALD, Houlsby et al. 2011). Each method
with a posterior over its users supplies that posterior as S weighted points and their predictions on the
pool (``PreferenceModel.query_predictions``): VPL samples of q(z | C), equal weights; PAL draws of the
simplex weights under a Dirichlet prior, weighted by their likelihood (importance sampling); MaxMin its
groups, weighted by their exact posterior. The gain is symmetric in (a, b), so a pool's stored orientation
(which may be the label) leaks nothing. The same pool and context always give the same choice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from pluralign.data.features import PairFeatures
from pluralign.data.readers import read_preferences

if TYPE_CHECKING:
    from pluralign.methods.base import PreferenceModel


def bernoulli_entropy(p: torch.Tensor) -> torch.Tensor:
    """H(p) in nats; 0 at p ∈ {0, 1}."""
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(p * p.log() + (1 - p) * (1 - p).log())


def information_gain(probabilities: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """I(y; u) per pair from P(a ≻ b | u_s) at S posterior points, [S, M] -> [M]; ``weights`` [S] (summing
    to 1) are the points' posterior weights, equal when None."""
    if weights is None:
        weights = torch.full((probabilities.shape[0],), 1.0 / probabilities.shape[0], dtype=probabilities.dtype)
    weights = weights.to(probabilities.dtype).unsqueeze(1)
    return bernoulli_entropy((weights * probabilities).sum(0)) - (weights * bernoulli_entropy(probabilities)).sum(0)


def pair_features(model: "PreferenceModel", pairs: Any) -> PairFeatures | None:
    """Pairs in any form the readers take (or features already), as the model's features; None when empty."""
    if pairs is None or isinstance(pairs, PairFeatures):
        return pairs
    rows = read_preferences(pairs)
    return model.featurize(rows) if len(rows) else None


@torch.no_grad()
def expected_information_gain(model: "PreferenceModel", pool: PairFeatures,
                              context: PairFeatures | None = None) -> torch.Tensor:
    """I(y; u | context) for every pool pair, [M]."""
    if context is not None and len(context) == 0:
        context = None
    return information_gain(*model.query_predictions(pool, context))


def select_queries(model: "PreferenceModel", pool_pairs: Any, n: int = 1, context: Any = None) -> list[int]:
    """The ``n`` pool indices of highest expected information gain, best first (one batch under the current
    posterior; for a sequential loop ask again after each answer)."""
    pool = pair_features(model, pool_pairs)
    if pool is None or len(pool) == 0:
        raise ValueError(f"{model.name}: the pool of candidate pairs is empty")
    if n < 1:
        raise ValueError(f"{model.name}: n={n!r} must be at least 1")
    gain = expected_information_gain(model, pool, pair_features(model, context))
    return torch.argsort(gain, descending=True, stable=True)[: min(n, len(pool))].tolist()
