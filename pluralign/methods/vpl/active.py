"""VPL's posterior for active queries (Poddar et al. 2024, §4.3): points of z and their weights.

The expected information gain and the choice of questions are shared by every method with a posterior over
users (:mod:`pluralign.methods.active`). VPL's posterior is its encoder's Gaussian q(z | C), read out as the
model predicts:
- ``readout: mean`` (the paper's): samples of q(z | C), or of the prior N(0, I) before any answer, equal weights,
  drawn from a generator seeded with the model's seed, so the same pool and context always give the same choice;
- ``readout: training-users``: the training users' latents z_u, weighted by q(z_u | C) (uniform before any
  answer), the points :func:`~pluralign.methods.vpl.estimator.training_user_readout` averages. The questions
  are then asked about the same latents the prediction is read out on, not about a prior the decoder never saw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from pluralign.data.features import PairFeatures

if TYPE_CHECKING:
    from pluralign.methods.vpl.estimator import VPL


def training_user_weights(user_means: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """w_u ∝ q(z_u | C) = N(z_u; μ(C), σ²(C)) over the training users' latents [U, L] -> [U]."""
    log_density = -0.5 * ((user_means - mean).pow(2) / log_var.exp() + log_var).sum(-1)
    return torch.softmax(log_density, dim=0)


@torch.no_grad()
def posterior_points(model: "VPL", context: PairFeatures | None, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The posterior over the new user's z given ``context`` as points [S, L] and weights [S] (None: equal)."""
    network = model.head_network
    encoded = None
    if context is not None and len(context) > 0:
        _, context = model.head_inputs(context)
        encoded = network.encode(context.prompt, context.chosen, context.rejected)
    if model.readout == "training-users" and len(network.user_means):
        if encoded is None:
            return network.user_means, None
        return network.user_means, training_user_weights(network.user_means, *encoded)
    if encoded is None:
        mean, std = torch.zeros(network.user_dim), torch.ones(network.user_dim)
    else:
        mean, std = encoded[0], (0.5 * encoded[1]).exp()
    generator = torch.Generator().manual_seed(model.seed)
    return mean + std * torch.randn(n, network.user_dim, generator=generator), None
