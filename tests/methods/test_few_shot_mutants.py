"""fit_user_vector leaves the network's parameters as it found them: a frozen one stays frozen."""

from __future__ import annotations

import torch

from pluralign.data.features import PairFeatures
from pluralign.methods.few_shot import fit_user_vector
from pluralign.methods.network import PreferenceNetwork


class Slope(PreferenceNetwork):
    """logit = u · (c₀ − r₀), beside one trainable and one frozen parameter the logit does not use."""

    user_dim = 1

    def __init__(self) -> None:
        super().__init__()
        self.trainable = torch.nn.Parameter(torch.zeros(()))
        self.frozen = torch.nn.Parameter(torch.zeros(()), requires_grad=False)

    def logits(self, prompt, chosen, rejected, users):
        return users[:, 0] * (chosen[:, 0] - rejected[:, 0])


def test_a_frozen_parameter_stays_frozen_after_a_few_shot_fit() -> None:
    pair = PairFeatures(torch.zeros(1, 0), torch.tensor([[1.0]]), torch.tensor([[0.0]]), torch.tensor([-1]))
    network = Slope()
    fit_user_vector(network, pair, lambda free: free, torch.zeros(1), steps=3, lr=0.1, prior_weight=0.5)
    assert network.trainable.requires_grad and not network.frozen.requires_grad
