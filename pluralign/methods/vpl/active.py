"""Active queries for VPL (Poddar et al. 2024, §4.3 "active learning of user preferences").

Given the current posterior q(z | C) of a new user (the prior N(0, I) before any answer) and a pool of
unlabelled candidate pairs (a, b), ask about the pair whose answer y = [a ≻ b] is most informative about z:
the expected information gain I(y; z | C) = H[E_z p(y | z)] − E_z H[p(y | z)] (BALD, Houlsby et al. 2011),
estimated with S posterior samples of z. It is symmetric in (a, b), so a pool's stored orientation (which
may be the label) leaks nothing. Samples come from a generator seeded with the model's seed: the same
pool and context always give the same choice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from pluralign.data.features import PairFeatures
from pluralign.data.readers import read_preferences

if TYPE_CHECKING:
    from pluralign.methods.vpl.estimator import VPL


def bernoulli_entropy(p: torch.Tensor) -> torch.Tensor:
    """H(p) in nats; 0 at p ∈ {0, 1}."""
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(p * p.log() + (1 - p) * (1 - p).log())


def information_gain(probabilities: torch.Tensor) -> torch.Tensor:
    """I(y; z) per pair from P(a ≻ b | z_s) of S samples, shape [S, M] -> [M]."""
    return bernoulli_entropy(probabilities.mean(0)) - bernoulli_entropy(probabilities).mean(0)


def _features(model: "VPL", pairs: Any) -> PairFeatures | None:
    if pairs is None or isinstance(pairs, PairFeatures):
        return pairs
    rows = read_preferences(pairs)
    return model.featurize(rows) if len(rows) else None


@torch.no_grad()
def posterior_samples(model: "VPL", context: PairFeatures | None, n: int) -> torch.Tensor:
    """S samples of z from q(z | context), or from the prior when there is no context yet."""
    network = model.head_network
    if context is None or len(context) == 0:
        mean, std = torch.zeros(network.user_dim), torch.ones(network.user_dim)
    else:
        _, context = model.head_inputs(context)
        mean, log_var = network.encode(context.prompt, context.chosen, context.rejected)
        std = (0.5 * log_var).exp()
    generator = torch.Generator().manual_seed(model.seed)
    return mean + std * torch.randn(n, network.user_dim, generator=generator)


@torch.no_grad()
def expected_information_gain(model: "VPL", pool: PairFeatures, context: PairFeatures | None = None) -> torch.Tensor:
    """I(y; z | context) for every pool pair, [M]."""
    z = posterior_samples(model, context, model.active_samples)  # [S, L]
    network, pool = model.head_inputs(pool)  # a tuned backbone embeds the pool once, not once per sample
    m, s = len(pool), z.shape[0]
    repeat = lambda t: t.repeat(s, 1)  # noqa: E731  (rows: sample-major)
    logits = network.logits(repeat(pool.prompt), repeat(pool.chosen), repeat(pool.rejected), z.repeat_interleave(m, 0))
    return information_gain(torch.sigmoid(logits).view(s, m))


def select_queries(model: "VPL", pool_pairs: Any, n: int = 1, context: Any = None) -> list[int]:
    """The ``n`` pool indices of highest expected information gain, best first (one batch under the
    current posterior; for a sequential loop ask :meth:`VPL.next_query` again after each answer)."""
    pool = _features(model, pool_pairs)
    if pool is None or len(pool) == 0:
        raise ValueError("vpl: the pool of candidate pairs is empty")
    if n < 1:
        raise ValueError(f"vpl: n={n!r} must be at least 1")
    gain = expected_information_gain(model, pool, _features(model, context))
    return torch.argsort(gain, descending=True, stable=True)[: min(n, len(pool))].tolist()
