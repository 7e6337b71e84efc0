"""The shared pieces by hand, where mutation testing found the suite silent: the accuracy of a tie, the MLP's
activation and dropout, and the user vectors of a batch that mixes known and unknown users."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pluralign.methods.common import MLP, accuracy
from pluralign.methods.network import PreferenceNetwork


def test_a_tie_is_not_a_correct_prediction() -> None:
    """Logits 0, 1, −1, 2: only the two positive logits say "chosen ≻ rejected"; the tie (P = ½) does not."""
    assert accuracy(torch.tensor([0.0, 1.0, -1.0, 2.0])).item() == 0.5


def test_mlp_blocks_are_linear_gelu_dropout() -> None:
    """MLP(1, [1], 1) with unit weights and zero biases is x ↦ GELU(x): GELU(−1) = −Φ(1) = −0.158655 (a ReLU
    would give 0); with dropout, a Dropout of that rate follows each GELU, and none without it."""
    mlp = MLP(1, [1], 1)
    for layer in mlp:
        if isinstance(layer, nn.Linear):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)
    assert mlp(torch.tensor([[-1.0]])).item() == pytest.approx(-0.158655, abs=1e-6)
    kinds = [type(layer).__name__ for layer in MLP(2, [3, 4], 1, dropout=0.25)]
    assert kinds == ["Linear", "GELU", "Dropout", "Linear", "GELU", "Dropout", "Linear"]
    assert all(layer.p == 0.25 for layer in MLP(2, [3], 1, dropout=0.25) if isinstance(layer, nn.Dropout))
    assert not any(isinstance(layer, nn.Dropout) for layer in MLP(2, [3], 1))


class Table(PreferenceNetwork):
    """Known user i is the vector (10·(i + 1)); the population is (−1)."""

    user_dim = 1

    def known_users(self, index: torch.Tensor) -> torch.Tensor:
        return (10.0 * (index + 1)).float().unsqueeze(-1)

    def population_user(self) -> torch.Tensor:
        return torch.tensor([-1.0])


def test_a_batch_of_known_and_unknown_users() -> None:
    """Rows of users 1, unknown (−1) and 0: (20), the population (−1) and (10); all unknown: the population."""
    table = Table()
    assert table.users_for(torch.tensor([1, -1, 0])).flatten().tolist() == [20.0, -1.0, 10.0]
    assert table.users_for(torch.tensor([-1, -1])).flatten().tolist() == [-1.0, -1.0]
    assert table.users_for(torch.tensor([0, 1])).flatten().tolist() == [10.0, 20.0]


def test_a_row_without_a_user_does_not_train_the_known_users() -> None:
    """PAL's population is the mean of every user's weights: a row without a user moved each known user's W_u
    (by 1/U). It trains the shared weights only."""
    from pluralign.methods.pal.network import PalANetwork

    net = PalANetwork(4, 4, n_users=5, k=3, hidden=[])
    prompt, chosen, rejected = torch.randn(3, 6, 4)
    net.logits(prompt, chosen, rejected, net.users_for(torch.tensor([-1, -1, -1, -1, -1, 2]))).sum().backward()
    moved = net.weights.logits.grad.abs().sum(-1)
    assert moved[2] > 0 and moved[[0, 1, 3, 4]].sum() == 0  # only the one known row's user
    assert net.prototypes.grad.abs().sum() > 0
