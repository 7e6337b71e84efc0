"""VPL networks (Poddar et al. 2024, "Personalizing RLHF with Variational Preference Learning", §4).

Encoder q(z | C) over a user's context pairs C = {(x_i, y_i^c, y_i^r)}: a pair encoder
h_i = MLP([x_i, y_i^c, y_i^r]), one self-attention layer across the user's pairs, a mean pool over them
and linear heads for the Gaussian mean and log-variance (the paper's eq. 5 and WEIRDLabUW/vpl_llm's
PairEncoder + SequenceEncoder). Decoder: the reward r(x, y, z) = MLP([x, y, z]) and the BT logit
r(x, y^c, z) − r(x, y^r, z) (eq. 4). Plain ``torch.nn``: the Pyro model and guide (``model.py``) use them.

``decoder="basis"`` (ours, not the paper's) makes the reward linear in z: r(x, y, z) = R(x, y)·[z, 1], where
the MLP R maps the features to L + 1 rewards, a basis that z weights (the low-rank reward model of LoRe,
Bose et al. 2025, with VPL's encoder inferring the weights). The concatenation decoder must build each user's
reward direction out of ReLU interactions between z and the features; this one gets them by construction.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pluralign.methods.common import MLP
from pluralign.methods.network import PreferenceNetwork

LOG_VAR_RANGE = (-8.0, 4.0)  # keeps exp(log_var) finite early in training; the reference clamps to [-1, 1]


class ContextEncoder(nn.Module):
    """Padded context sets [U, C, ·] with a mask [U, C] → Gaussian mean and log-variance [U, L]; an empty set
    (a user whose only pair is the query itself) gives the prior N(0, I): no pair, no evidence."""

    def __init__(self, prompt_dim: int, response_dim: int, hidden: Sequence[int], width: int, latent_dim: int) -> None:
        super().__init__()
        self.pair = MLP(prompt_dim + 2 * response_dim, hidden, width)
        self.query, self.key, self.value = (nn.Linear(width, width) for _ in range(3))
        self.mean = nn.Linear(width, latent_dim)
        self.log_var = nn.Linear(width, latent_dim)

    def forward(self, prompt: torch.Tensor, chosen: torch.Tensor, rejected: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.pair(torch.cat([prompt, chosen, rejected], dim=-1))  # [U, C, W]
        scores = self.query(h) @ self.key(h).transpose(1, 2) / math.sqrt(h.shape[-1])
        empty = ~mask.any(1, keepdim=True)  # [U, 1]; its keys stay unmasked: a row of -inf would softmax to NaN
        scores = scores.masked_fill(~(mask | empty).unsqueeze(1), float("-inf"))  # padded pairs are no keys
        attended = torch.softmax(scores, dim=-1) @ self.value(h)
        weights = mask.unsqueeze(-1).float()
        pooled = (attended * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        mean, log_var = self.mean(pooled), self.log_var(pooled).clamp(*LOG_VAR_RANGE)
        return mean.masked_fill(empty, 0.0), log_var.masked_fill(empty, 0.0)


class VPLNetwork(PreferenceNetwork):
    """Encoder + decoder; ``users`` rows are latent vectors z. Known users' posterior means are a buffer."""

    def __init__(self, prompt_dim: int, response_dim: int, n_users: int, latent_dim: int = 8,
                 hidden: Sequence[int] = (64, 64), encoder_hidden: Sequence[int] = (64,), encoder_width: int = 64,
                 normalize_z: bool = False, decoder: str = "concat") -> None:
        super().__init__()
        self.user_dim = latent_dim
        self.normalize_z, self.decoder_kind = normalize_z, decoder
        self.encoder = ContextEncoder(prompt_dim, response_dim, encoder_hidden, encoder_width, latent_dim)
        if decoder == "basis":  # L + 1 rewards of (x, y), weighted by [z, 1]
            self.decoder = MLP(prompt_dim + response_dim, hidden, latent_dim + 1)
        else:
            self.decoder = MLP(prompt_dim + response_dim + latent_dim, hidden, 1)
        # filled after training from each user's pairs (the posterior mean); saved with the weights
        self.register_buffer("user_means", torch.zeros(n_users, latent_dim))
        self.register_buffer("population", torch.zeros(latent_dim))

    def latent(self, z: torch.Tensor) -> torch.Tensor:
        """What the decoder sees: z, or z on the sphere of radius √L (the paper's training quirk, an option)."""
        if not self.normalize_z:
            return z
        return F.normalize(z, dim=-1) * math.sqrt(z.shape[-1])

    def reward(self, prompt, response, users):
        z = self.latent(users)
        if self.decoder_kind == "basis":
            basis = self.decoder(torch.cat([prompt, response], dim=-1))
            return (basis[..., :-1] * z).sum(-1) + basis[..., -1]
        return self.decoder(torch.cat([prompt, response, z], dim=-1)).squeeze(-1)

    def logits(self, prompt, chosen, rejected, users):
        return self.reward(prompt, chosen, users) - self.reward(prompt, rejected, users)

    def encode(self, prompt: torch.Tensor, chosen: torch.Tensor, rejected: torch.Tensor,
               mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | C): mean and log-variance for padded contexts [U, C, ·] (or one context [C, ·])."""
        single = chosen.dim() == 2
        if single:
            prompt, chosen, rejected = prompt.unsqueeze(0), chosen.unsqueeze(0), rejected.unsqueeze(0)
        if mask is None:
            mask = torch.ones(chosen.shape[:2], dtype=torch.bool, device=chosen.device)
        mean, log_var = self.encoder(prompt, chosen, rejected, mask)
        return (mean[0], log_var[0]) if single else (mean, log_var)

    def known_users(self, index: torch.Tensor) -> torch.Tensor:
        return self.user_means[index]

    def population_user(self) -> torch.Tensor:
        return self.population
