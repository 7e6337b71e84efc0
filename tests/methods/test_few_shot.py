"""Few-shot fitting of one user vector (pluralign.methods.few_shot) against its hand-computed optimum."""

import pytest
import torch

from pluralign.data.features import PairFeatures
from pluralign.methods.few_shot import fit_user_vector
from pluralign.methods.network import PreferenceNetwork


class Slope(PreferenceNetwork):
    """logit = u · (c₀ − r₀): one user coordinate, one feature."""

    user_dim = 1

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))  # frozen during the fit, trainable again after it

    def logits(self, prompt, chosen, rejected, users):
        return users[:, 0] * (chosen[:, 0] - rejected[:, 0])


def test_fit_user_vector_is_the_map_estimate():
    # one pair with c₀ − r₀ = 1, prior weight ½ around 0: argmin −log σ(u) + ½ u², where u = σ(−u): u* = 0.40131
    pair = PairFeatures(torch.zeros(1, 0), torch.tensor([[1.0]]), torch.tensor([[0.0]]), torch.tensor([-1]))
    network = Slope()
    u = fit_user_vector(network, pair, lambda free: free, torch.zeros(1), steps=2000, lr=0.01, prior_weight=0.5)
    assert u.item() == pytest.approx(0.40131, abs=1e-3)
    assert network.unused.requires_grad  # the network's own parameters are as they were
    # without the prior the likelihood alone pushes u up, well past the MAP
    free = fit_user_vector(network, pair, lambda free: free, torch.zeros(1), steps=2000, lr=0.01, prior_weight=0.0)
    assert free.item() > 1.0
