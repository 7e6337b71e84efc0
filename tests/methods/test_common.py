import math

import torch

from pluralign.methods.common import mixture_log_likelihood, mixture_logit, preference_nll


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_preference_nll_by_hand():
    # −(log σ(2) + log σ(−1)) / 2
    expected = -(math.log(sigmoid(2.0)) + math.log(sigmoid(-1.0))) / 2
    assert math.isclose(preference_nll(torch.tensor([2.0, -1.0])).item(), expected, rel_tol=1e-6)


def test_mixture_likelihood_by_hand():
    logits = torch.tensor([[1.0, -2.0]])
    weights = torch.tensor([[0.25, 0.75]])
    p = 0.25 * sigmoid(1.0) + 0.75 * sigmoid(-2.0)
    got = mixture_log_likelihood(logits, weights.log())
    assert math.isclose(got.item(), math.log(p), rel_tol=1e-6)
    assert math.isclose(torch.sigmoid(mixture_logit(logits, weights.log())).item(), p, rel_tol=1e-6)


def test_one_component_mixture_is_bt():
    logits = torch.tensor([[0.3], [-1.7]])
    assert torch.allclose(mixture_logit(logits, torch.zeros(2, 1)), logits.squeeze(-1), atol=1e-6)


def test_logits_per_user_in_blocks_matches_one_user_at_a_time():
    from pluralign.data.features import PairFeatures
    from pluralign.methods.common import logits_per_user
    from pluralign.methods.pal import PalANetwork

    torch.manual_seed(0)
    network = PalANetwork(0, 3, n_users=1, k=3, pref_dim=4, hidden=())
    pairs = PairFeatures(torch.zeros(5, 0), torch.randn(5, 3), torch.randn(5, 3), torch.full((5,), -1))
    users = torch.softmax(torch.randn(7, 3), -1)
    expected = torch.stack([network.logits(pairs.prompt, pairs.chosen, pairs.rejected, u.expand(5, -1)) for u in users])
    for max_rows in (1, 10, 11, 1000):  # blocks of 1, 2, 2 (uneven) and all 7 users
        assert torch.allclose(logits_per_user(network, pairs, users, max_rows=max_rows), expected, atol=1e-6)
