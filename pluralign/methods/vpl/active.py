"""VPL's posterior for active queries (Poddar et al. 2024, §4.3): samples of z from q(z | C).

The expected information gain and the choice of questions are shared by every method with a posterior over
users (:mod:`pluralign.methods.active`); VPL's posterior is its encoder's Gaussian, sampled from a generator
seeded with the model's seed, so the same pool and context always give the same choice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from pluralign.data.features import PairFeatures
from pluralign.methods.vpl.model import encode_sets

if TYPE_CHECKING:
    from pluralign.methods.vpl.estimator import VPL


@torch.no_grad()
def posterior_samples(model: "VPL", context: PairFeatures | None, n: int) -> torch.Tensor:
    """S samples of z from q(z | context), or from the prior when there is no context yet."""
    network = model.head_network
    if context is None or len(context) == 0:
        mean, std = torch.zeros(network.user_dim), torch.ones(network.user_dim)
    else:
        _, context = model.head_inputs(context)
        mean, log_var = (v[0] for v in encode_sets(network, context, [torch.arange(len(context))]))
        std = (0.5 * log_var).exp()
    generator = torch.Generator().manual_seed(model.seed)
    return mean + std * torch.randn(n, network.user_dim, generator=generator)
