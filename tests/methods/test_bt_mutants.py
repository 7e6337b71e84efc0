"""BT's reward network and arguments by hand: one response is a batch of one, dropout stays below 1, and the
Python defaults are the preset's."""

from __future__ import annotations


import pytest
import torch

from pluralign.methods import BradleyTerry, ConfigError
from pluralign.methods.bt.model import RewardNetwork


def test_one_response_is_a_batch_of_one() -> None:
    """r(y) = y₀ − y₁ + 0.5 on one response (1, 3): the reward is [−1.5], shape [1], not a 0-d scalar (TRL's
    reward functions return one float per completion, a list even for one); logit of (1, 3) over (0, 0): −2."""
    network = RewardNetwork(0, 2, [])
    with torch.no_grad():
        network.head[-1].weight.copy_(torch.tensor([[1.0, -1.0]]))
        network.head[-1].bias.fill_(0.5)
    reward = network.reward(torch.zeros(1, 0), torch.tensor([[1.0, 3.0]]), None)
    assert reward.shape == (1,) and reward.tolist() == [-1.5]
    logit = network.logits(torch.zeros(1, 0), torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0, 0.0]]), None)
    assert logit.shape == (1,) and logit.tolist() == [-2.0]


def test_dropout_of_one_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"bt: dropout=1.0 must lie in \[0, 1\)"):
        BradleyTerry(dropout=1.0)
    assert BradleyTerry(dropout=0.0).dropout == 0.0
