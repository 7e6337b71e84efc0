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


def _networks():
    from pluralign.methods.gpm.model import PreferenceEmbeddingNetwork
    from pluralign.methods.micro.model import RoutedMixtureNetwork
    from pluralign.methods.pal.network import PalANetwork, PalBNetwork

    torch.manual_seed(0)
    micro = RoutedMixtureNetwork(5, 4, 3, [6])
    with torch.no_grad():  # a router that reads the prompt (zeros at init)
        micro.router_weight.normal_()
        micro.router_bias.normal_()
    return {"pal-a squared": (PalANetwork(5, 4, 2, k=3, distance="squared"), 5),
            "pal-a euclidean": (PalANetwork(5, 4, 2, k=3, distance="euclidean"), 5),
            "pal-b": (PalBNetwork(5, 4, 2, k=3), 5), "pal-b without prompt": (PalBNetwork(0, 4, 2, k=3), 0),
            "gpm": (PreferenceEmbeddingNetwork(5, 4, 2, [6], 0.1, True, True, 2), 5), "micro": (micro, 5)}


@pytest.mark.parametrize("name", ["pal-a squared", "pal-a euclidean", "pal-b", "pal-b without prompt", "gpm", "micro"])
def test_logits_of_users_are_the_logits_bit_for_bit(name: str) -> None:
    """The few-shot fit computes the pairs' user-independent part once (logits_of_users): it must be the network's
    logits exactly, for any user vector (a MiCRo version that dropped the router passed every other test)."""
    network, prompt_dim = _networks()[name]
    network.eval()
    prompt, chosen, rejected = torch.randn(7, prompt_dim), torch.randn(7, 4), torch.randn(7, 4)
    of_users = network.logits_of_users(prompt, chosen, rejected)
    for _ in range(3):
        users = torch.softmax(torch.randn(7, network.user_dim) * 3, -1)
        assert torch.equal(of_users(users), network.logits(prompt, chosen, rejected, users))
