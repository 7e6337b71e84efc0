"""The EM pieces of MaxMin-RLHF (Chakraborty et al. 2024, arXiv:2402.08925, Algorithm 1 "reward learning
with EM"), as pure tensor functions.

With G group rewards r_g and mixing weights π_g, a user's pairs D_u have likelihood
Π_{n∈D_u} σ(r_g(y_c) − r_g(y_r)) under group g. E-step: the posterior over groups,
p(g | D_u) ∝ π_g Π_n σ(logit_g(n)); hard EM (the paper) takes its argmax. M-step: each group's reward
minimizes the BT NLL of the pairs weighted by the responsibilities (all-or-nothing under hard EM).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def user_log_likelihood(group_logits: torch.Tensor, user: torch.Tensor, n_users: int) -> torch.Tensor:
    """Σ over each user's pairs of log σ(logit_g): [n_users, G] from pair logits [N, G] and user ids [N]."""
    total = torch.zeros(n_users, group_logits.shape[1], dtype=group_logits.dtype, device=group_logits.device)
    known = user >= 0
    return total.index_add_(0, user[known], F.logsigmoid(group_logits[known]))


def posterior(log_likelihood: torch.Tensor, log_prior: torch.Tensor) -> torch.Tensor:
    """p(g | D_u) ∝ π_g · exp(ℓ_ug), rows on the simplex."""
    return torch.softmax(log_likelihood + log_prior, dim=-1)


def harden(responsibilities: torch.Tensor) -> torch.Tensor:
    """Hard EM: the one-hot argmax of each row."""
    return F.one_hot(responsibilities.argmax(-1), responsibilities.shape[-1]).to(responsibilities)


def responsibility_nll(group_logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """M-step loss: −mean_n Σ_g w_ng log σ(logit_ng). With one group and w = 1 this is BT's loss exactly."""
    return -(weights * F.logsigmoid(group_logits)).sum(-1).mean()
