"""The contract between an estimator and its ``torch.nn`` model: what every method's network provides.

A network scores pairs for *user vectors*: one row of ``users`` per pair, ``user_dim`` wide (0 for BT).
Known training users are looked up by index; index −1 (an unknown user) gets the population vector.
Everything a network learns lives in its ``state_dict``, so saving is one safetensors file.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from pluralign.methods.common import accuracy, preference_nll


class PreferenceNetwork(nn.Module):
    user_dim: int = 0

    def logits(self, prompt: torch.Tensor, chosen: torch.Tensor, rejected: torch.Tensor,
               users: torch.Tensor) -> torch.Tensor:
        """logit of P(chosen ≻ rejected | user), shape [N]."""
        raise NotImplementedError

    def logits_of_users(self, prompt: torch.Tensor, chosen: torch.Tensor, rejected: torch.Tensor
                        ) -> Callable[[torch.Tensor], torch.Tensor]:
        """``users -> logits(prompt, chosen, rejected, users)`` for fixed pairs, for a loop over user vectors (the
        few-shot fit's steps): a network may compute what does not depend on the user once, here, where its weights
        are frozen and it is in eval mode (no dropout draws). The same numbers as :meth:`logits`, bit for bit."""
        return lambda users: self.logits(prompt, chosen, rejected, users)

    def reward(self, prompt: torch.Tensor, response: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        """Scalar reward r(prompt, response | user), shape [N], where the method defines one."""
        raise NotImplementedError(f"{type(self).__name__} defines no scalar reward; use prefer_proba")

    def population_user(self) -> torch.Tensor:
        """The user vector of someone we know nothing about (k = 0 shots), shape [user_dim]."""
        return torch.zeros(self.user_dim)

    def known_users(self, index: torch.Tensor) -> torch.Tensor:
        """User vectors of training users by index, [N, user_dim]; −1 gives the population vector."""
        return self.population_user().to(index.device).expand(index.shape[0], -1)

    def users_for(self, index: torch.Tensor) -> torch.Tensor:
        """Each row's user vector: a known user's (index ≥ 0) or, for a row without a user (−1), the population's,
        as a constant: such a row trains the shared weights, and tells nothing of any known user (PAL's population
        is the mean of every user's weights, which it would move, each by 1/U)."""
        known = index >= 0
        if bool(known.all()):
            return self.known_users(index)
        population = self.population_user().detach().to(index.device).expand(index.shape[0], -1)
        if not bool(known.any()):
            return population
        return torch.where(known.unsqueeze(-1), self.known_users(index.clamp_min(0)), population)


class PreferenceObjective(nn.Module):
    """The BT negative log-likelihood of the labelled pairs under the network, with known-user vectors.

    Serves every method whose training loss is the pairwise likelihood of its own logits (BT, PAL-B's
    cross-entropy, GPM); methods with another objective (VPL's ELBO, MiCRo's mixture) bring their own.
    """

    def __init__(self, network: PreferenceNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        users = self.network.users_for(batch["user"])
        logits = self.network.logits(batch["prompt"], batch["chosen"], batch["rejected"], users)
        return {"loss": preference_nll(logits), "accuracy": accuracy(logits)}
