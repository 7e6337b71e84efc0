"""Math shared by every method, written once: the Bradley–Terry likelihood, the mixture likelihood,
the MLP reward head and user weights on the simplex.

BT (Bradley & Terry 1952): P(a ≻ b) = σ(r(a) − r(b)), so the loss of a labelled pair is −log σ(logit).
A mixture of K BT components (MiCRo eq. 3, MaxMin's EM, PAL's user mixtures): P = Σ_k π_k σ(logit_k).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def preference_nll(logits: torch.Tensor) -> torch.Tensor:
    """Mean −log P(chosen ≻ rejected) for logits of P(chosen ≻ rejected); the one BT loss."""
    return -F.logsigmoid(logits).mean()


def mixture_log_likelihood(component_logits: torch.Tensor, log_weights: torch.Tensor) -> torch.Tensor:
    """log Σ_k π_k σ(logit_k) per row, computed stably: logsumexp(log π + log σ(logit)). Shapes [N, K]."""
    return torch.logsumexp(log_weights + F.logsigmoid(component_logits), dim=-1)


def mixture_logit(component_logits: torch.Tensor, log_weights: torch.Tensor) -> torch.Tensor:
    """The logit of the mixture probability: log p − log(1 − p) with both terms as mixtures."""
    return mixture_log_likelihood(component_logits, log_weights) - mixture_log_likelihood(-component_logits, log_weights)


def accuracy(logits: torch.Tensor) -> torch.Tensor:
    return (logits > 0).float().mean()


def logits_per_user(network: nn.Module, features, users: torch.Tensor, max_rows: int = 16384) -> torch.Tensor:
    """Every pair of ``features`` (n pairs) under every user vector of ``users`` [S, U]: logits [S, n], through
    ``network.logits`` in blocks of at most ``max_rows`` rows (a posterior's draws times a pool of pairs)."""
    n = len(features)
    block = max(1, max_rows // max(n, 1))
    out = []
    for start in range(0, len(users), block):
        u = users[start:start + block]
        repeat = lambda x: x.repeat(len(u), 1)  # noqa: E731  user s of the block owns rows s·n ... s·n + n − 1
        out.append(network.logits(repeat(features.prompt), repeat(features.chosen), repeat(features.rejected),
                                  u.repeat_interleave(n, 0)).view(len(u), n))
    return torch.cat(out)


class MLP(nn.Sequential):
    """Linear → GELU (→ dropout) blocks, then a linear output; ``hidden=()`` is a linear map."""

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, dropout: float = 0.0) -> None:
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_dim, width), nn.GELU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            in_dim = width
        layers.append(nn.Linear(in_dim, out_dim))
        super().__init__(*layers)


class SimplexWeights(nn.Module):
    """One free vector per user, mapped to the simplex by softmax (PAL's W_u; GPM/MiCRo user mixes)."""

    def __init__(self, n_users: int, n_components: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n_users, n_components))

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits[index], dim=-1)
