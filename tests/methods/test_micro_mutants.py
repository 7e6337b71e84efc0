"""MiCRo by hand: the stage-1 loss over several pairs (mean, accuracy, the balance term's gradient), the stage-2
prior, and the checks on the arguments; tiny planted networks, no training."""

from __future__ import annotations

import math

import pytest
import torch

from pluralign.data.features import PairFeatures
from pluralign.methods import MiCRo
from pluralign.methods.micro import MixtureObjective, RoutedMixtureNetwork


def planted(weights: list[list[float]], bias: list[float] | None = None) -> RoutedMixtureNetwork:
    """Linear heads on a 0-wide prompt: head k's reward is weights[k] · y; the router's bias as given (or 0)."""
    network = RoutedMixtureNetwork(0, len(weights[0]), len(weights), [])
    with torch.no_grad():
        for head, w in zip(network.heads, weights):
            head.head[-1].weight.copy_(torch.tensor([w]))
            head.head[-1].bias.zero_()
        if bias is not None:
            network.router_bias.copy_(torch.tensor(bias))
    return network


def pairs(chosen: list[list[float]], rejected: list[list[float]]) -> PairFeatures:
    c, r = torch.tensor(chosen), torch.tensor(rejected)
    return PairFeatures(torch.zeros(len(c), 0), c, r, torch.full((len(c),), -1))


def fitted_by_hand(network: RoutedMixtureNetwork, **options) -> MiCRo:
    """A MiCRo whose network is set by hand (what stage 2 and active queries read), no stage 1."""
    model = MiCRo(n_heads=len(network.heads), **options)
    model.network_ = network
    return model


def test_stage_one_loss_is_the_mean_over_pairs_and_accuracy_reads_the_mixture() -> None:
    """Heads r₁(y) = y₀, r₂(y) = y₁, uniform routing. Pair A: head logits (1, 0), P = ½σ(1) + ½σ(0) = 0.615529;
    pair B: (1, −2), P = ½σ(1) + ½σ(−2) = 0.425131. NLL = mean(0.485273, 0.855359) = 0.670316 (the sum would be
    1.340632); loss = NLL + ½ · (−ln 2). Accuracy 0.5: the mixture gets A right and B wrong (head 1 alone: 1.0)."""
    network = planted([[1.0, 0.0], [0.0, 1.0]])
    out = MixtureObjective(network, balance_weight=0.5)(pairs([[1.0, 0.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]])
                                                        .as_batch())
    assert out["nll"].item() == pytest.approx(0.670316, abs=1e-5)
    assert out["loss"].item() == pytest.approx(0.670316 - 0.5 * math.log(2), abs=1e-5)
    assert out["accuracy"].item() == 0.5


def test_the_balance_term_pulls_the_router_towards_uniform() -> None:
    """Zero heads: every pair has P = ½ whatever the routing, so the NLL has no gradient on the router and the
    gradient of the loss is λ ∂/∂b_k Σ_j π_j ln π_j = λ π_k (ln π_k − Σ_j π_j ln π_j). π = (.25, .75), λ = .5:
    ±0.5 · 0.205990 = ∓0.102995, so a descent step raises π₁ (no gradient at all were the term detached)."""
    network = planted([[0.0, 0.0], [0.0, 0.0]], bias=[math.log(0.25), math.log(0.75)])
    out = MixtureObjective(network, balance_weight=0.5)(pairs([[1.0, 0.0]], [[0.0, 1.0]]).as_batch())
    out["loss"].backward()
    assert network.router_bias.grad.tolist() == pytest.approx([-0.102995, 0.102995], abs=1e-5)


def test_routing_adaptation_is_held_back_by_its_prior() -> None:
    """Heads ±10·y₀, one pair that only head 1 explains: P ≈ π₁, so the fit minimizes −ln σ(u₁ − u₂) + λ|u|²
    (one pair). Its optimum is u = (t, −t) with 2λt = 1 − σ(2t): λ = 0.5 gives t = 0.3367, π₁ = σ(0.6733) = 0.662;
    without a prior the routing runs to head 1 (> 0.95). The reported routing is softmax(u)."""
    network = planted([[10.0], [-10.0]])
    one = pairs([[1.0]], [[0.0]])
    held = fitted_by_hand(network, adapt_prior=0.5, adapt_steps=100, adapt_lr=0.2).infer_user(one)
    free = fitted_by_hand(network, adapt_prior=0.0, adapt_steps=30, adapt_lr=0.2).infer_user(one)
    assert held.mean.tolist() == pytest.approx([0.3367, -0.3367], abs=0.01)
    assert held.extra["routing"] == pytest.approx(torch.softmax(held.mean, -1).tolist(), abs=1e-6)
    assert held.extra["routing"][0] == pytest.approx(0.662, abs=0.005)
    assert free.extra["routing"][0] > 0.95


def test_the_reported_routing_is_the_routers_not_the_offsets() -> None:
    """Router bias (ln ¼, ln ¾) and one pair of identical responses: every head explains it equally, so the
    offset stays u = 0, and π = softmax(b + u) = (¼, ¾). It was reported as softmax(u) = (½, ½)."""
    network = planted([[10.0], [-10.0]], bias=[math.log(0.25), math.log(0.75)])
    vector = fitted_by_hand(network, adapt_prior=0.5, adapt_steps=20).infer_user(pairs([[1.0]], [[1.0]]))
    assert vector.mean.tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    assert vector.extra["routing"] == pytest.approx([0.25, 0.75], abs=1e-6)


def test_the_reported_routing_is_the_mean_over_the_users_prompts() -> None:
    """Router weight ±ln 3 on a 1-wide prompt: x = +½ routes (¾, ¼), x = −½ routes (¼, ¾); identical responses keep
    u = 0. The report averages π over the user's prompts, (½, ½), not the first prompt's (¾, ¼)."""
    network = RoutedMixtureNetwork(1, 1, 2, [])
    with torch.no_grad():
        network.router_weight.copy_(torch.tensor([[math.log(3.0)], [-math.log(3.0)]]))
    model = fitted_by_hand(network, adapt_prior=0.5, adapt_steps=5)
    two = PairFeatures(torch.tensor([[0.5], [-0.5]]), torch.ones(2, 1), torch.ones(2, 1), torch.full((2,), -1))
    assert model.infer_user(two).extra["routing"] == pytest.approx([0.5, 0.5], abs=1e-6)


def test_active_queries_draw_the_offset_from_adapt_prior() -> None:
    """Heads ±10·y₀ on one pool pair: a draw u predicts P ≈ σ(u₁ − u₂), and the prior N(0, I / (2λ)) gives
    u₁ − u₂ sd 1/√λ: λ = 50 makes it 0.141, so P has sd ≈ 0.141 / 4 = 0.035 (λ = 1 would give about 0.2)."""
    model = fitted_by_hand(planted([[10.0], [-10.0]]), adapt_prior=50.0, adapt_draws=4000)
    predictions, weights = model.query_predictions(pairs([[1.0]], [[0.0]]), None)
    assert predictions.shape == (4000, 1) and torch.allclose(weights, torch.full((4000,), 1 / 4000))
    assert 0.032 < predictions.std().item() < 0.038


def test_zero_balance_weight_and_zero_adapt_prior_are_allowed() -> None:
    """λ = 0 is plain mixture likelihood, a flat stage-2 prior is the MLE: both valid settings."""
    assert MiCRo(balance_weight=0.0).balance_weight == 0.0
    assert MiCRo(adapt_prior=0.0).adapt_prior == 0.0
