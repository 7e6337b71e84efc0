"""PAL by hand, where mutation testing found the suite silent: the logit scale's clamp and its place in the reward,
the ideal point f(P w) of a nonlinear projector, the prototypes' placement, the Dirichlet moments, the
estimator's arguments reaching the network and the objective, and the few-shot fit's start, prior and step size.

Every network here is tiny and set by hand; nothing trains (the few-shot fit is a few dozen Adam steps on K = 2
numbers)."""

from __future__ import annotations

import math

import pytest
import torch

from pluralign.data.features import PairFeatures
from pluralign.methods.pal import PalA, PalANetwork, PalB
from pluralign.methods.pal.model import dirichlet_moments


def identity_(linear: torch.nn.Linear) -> None:
    with torch.no_grad():
        linear.weight.copy_(torch.eye(linear.weight.shape[0], linear.weight.shape[1]))
        linear.bias.zero_()


def hand_network(n_users: int = 1, **options) -> PalANetwork:
    """PAL-A with f the identity on 2-d responses and prototypes (0, 0) and (2, 0): the ideal point of w is
    (2·w₂, 0)."""
    net = PalANetwork(0, 2, n_users=n_users, k=2, pref_dim=2, hidden=(), **options)
    identity_(net.item_projector[0])
    with torch.no_grad():
        net.prototypes.copy_(torch.tensor([[0.0, 0.0], [2.0, 0.0]]))
    return net


def pairs(chosen: list[list[float]], rejected: list[list[float]]) -> PairFeatures:
    n = len(chosen)
    return PairFeatures(torch.zeros(n, 0), torch.tensor(chosen), torch.tensor(rejected), torch.full((n,), -1))


# ---- the network -------------------------------------------------------------------------------------------
def test_the_logit_scale_is_clamped_at_100() -> None:
    """exp(logit_scale) = 1000 is read as the paper's cap of 100: the hand pair's distance gap 4 − 1 = 3 gives a
    logit of 300, not 3000."""
    net = hand_network(distance="squared")
    with torch.no_grad():
        net.logit_scale.fill_(math.log(1000.0))
    assert net.scale().item() == pytest.approx(100.0)
    logit = net.logits(torch.zeros(1, 0), torch.tensor([[1.0, 1.0]]), torch.tensor([[3.0, 0.0]]),
                       torch.tensor([[0.5, 0.5]]))
    assert logit.item() == pytest.approx(300.0, rel=1e-5)


def test_the_reward_carries_the_logit_scale() -> None:
    """init_scale 2, ideal point (1, 0): r(1, 1) = −2·1 = −2 and r(3, 0) = −2·4 = −8 (squared distance), so the
    reward difference is the logit, 6."""
    net = hand_network(distance="squared", init_scale=2.0)
    users = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    reward = net.reward(torch.zeros(2, 0), torch.tensor([[1.0, 1.0], [3.0, 0.0]]), users)
    assert reward.tolist() == pytest.approx([-2.0, -8.0], rel=1e-5)
    logit = net.logits(torch.zeros(1, 0), torch.tensor([[1.0, 1.0]]), torch.tensor([[3.0, 0.0]]), users[:1])
    assert logit.item() == pytest.approx(reward[0].item() - reward[1].item(), rel=1e-5)


def test_the_ideal_point_is_f_of_the_mixed_prototype() -> None:
    """f(x) = GELU(x₀) (one hidden unit, then the identity), prototypes (−2, 0) and (2, 0), w = (½, ½): the ideal
    point is f(P w) = GELU(0) = 0, not the mix of the prototypes' images w·f(P) = ½(GELU(−2) + GELU(2)) = 0.954."""
    net = PalANetwork(0, 2, n_users=1, k=2, pref_dim=1, hidden=(1,))
    with torch.no_grad():
        net.item_projector[0].weight.copy_(torch.tensor([[1.0, 0.0]]))
        net.item_projector[0].bias.zero_()
        net.item_projector[2].weight.fill_(1.0)
        net.item_projector[2].bias.zero_()
        net.prototypes.copy_(torch.tensor([[-2.0, 0.0], [2.0, 0.0]]))
    ideal = net.ideal_points(torch.zeros(1, 0), torch.tensor([[0.5, 0.5]]))
    assert ideal.item() == pytest.approx(0.0, abs=1e-7)


def test_prototypes_are_placed_around_the_data() -> None:
    """Inputs (99, 10) and (101, 10): feature 1 does not vary, so every prototype has it at exactly 10; feature 0
    has mean 100 and sd √2, so the prototypes sit within 5 sd of 100 (its seeded draws are within 2.1 sd)."""
    net = PalANetwork(0, 2, n_users=1, k=4, pref_dim=2, hidden=())
    torch.manual_seed(0)
    net.init_prototypes(torch.tensor([[99.0, 10.0], [101.0, 10.0]]))
    assert net.prototypes[:, 1].tolist() == [10.0] * 4
    assert (net.prototypes[:, 0] - 100.0).abs().max().item() < 5 * math.sqrt(2.0)


# ---- the Dirichlet prior of few_shot="posterior-mean" ----------------------------------------------------------
def test_dirichlet_moments_by_hand() -> None:
    """Points (0.2, 0.8) and (0.6, 0.4): m = (0.4, 0.6), sample variances (n − 1) 0.08 each, so the precision
    s = 0.4·0.6 / 0.08 − 1 = 2 and α = m·s = (0.8, 1.2) (the population variance 0.04 would give (2, 3))."""
    alpha = dirichlet_moments(torch.tensor([[0.2, 0.8], [0.6, 0.4]], dtype=torch.float64))
    assert alpha.tolist() == pytest.approx([0.8, 1.2])


def test_points_that_do_not_vary_give_the_flat_prior() -> None:
    """Every training user at the same point (e.g. one user type): no spread to read a precision from (0 / 0), so
    α = 1, the flat Dirichlet, not a NaN prior; one point alone gives the same."""
    same = torch.tensor([[0.3, 0.7]] * 3, dtype=torch.float64)
    assert dirichlet_moments(same).tolist() == [1.0, 1.0] and dirichlet_moments(same[:1]).tolist() == [1.0, 1.0]


def test_dirichlet_precision_pools_the_components() -> None:
    """K = 3, points (0.6, 0.2, 0.2) and (0.2, 0.4, 0.4): m = (0.4, 0.3, 0.3), variances 0.08, 0.02, 0.02;
    s + 1 = (0.24 + 0.21 + 0.21) / (0.08 + 0.02 + 0.02) = 5.5, α = 4.5 m = (1.8, 1.35, 1.35). (The average of the
    per-component precisions, 2, 9.5 and 9.5, would give s = 7.)"""
    alpha = dirichlet_moments(torch.tensor([[0.6, 0.2, 0.2], [0.2, 0.4, 0.4]], dtype=torch.float64))
    assert alpha.tolist() == pytest.approx([1.8, 1.35, 1.35])


def test_a_component_no_user_weighs_does_not_set_the_precision() -> None:
    """Users at (0.9, 0.1), (0.1, 0.9), (0.85, 0.15), (0.15, 0.85), and a third component at 1e-6 for all:
    v = (0.18833, 0.18833, 0), s + 1 = (0.25 + 0.25 + 1e-6) / 0.37667 = 1.32744, α₁ = α₂ = 0.5 · 0.32744 = 0.1637,
    as without the third component. Averaged per component, its m (1 − m) / v ≈ 1e-6 / 0 gave s = 1e4: a prior
    that held every new user at (0.5, 0.5)."""
    two = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.85, 0.15], [0.15, 0.85]], dtype=torch.float64)
    three = torch.cat([two * (1 - 1e-6), torch.full((4, 1), 1e-6, dtype=torch.float64)], -1)
    assert dirichlet_moments(two).tolist() == pytest.approx([0.1637, 0.1637], abs=1e-4)
    assert dirichlet_moments(three)[:2].tolist() == pytest.approx([0.1637, 0.1637], abs=1e-4)


def test_points_that_vary_in_some_components_keep_their_mean() -> None:
    """K = 3 with the first component fixed at 0.5: the points do vary (in the other two), so α is not the
    uniform fallback of points that do not vary at all; whatever the precision, α / Σα is the mean point."""
    alpha = dirichlet_moments(torch.tensor([[0.5, 0.3, 0.2], [0.5, 0.2, 0.3]], dtype=torch.float64))
    assert (alpha / alpha.sum()).tolist() == pytest.approx([0.5, 0.25, 0.25])
    assert not torch.allclose(alpha, torch.ones(3, dtype=alpha.dtype))


def test_the_prior_draws_follow_the_models_seed() -> None:
    """``few_shot="posterior-mean"`` draws its prior points from the model's seed: the same seed, the same points;
    another seed, other points."""
    net = hand_network(n_users=3)
    with torch.no_grad():
        net.weights.logits.copy_(torch.tensor([[0.1, 0.0], [0.0, 0.1], [0.05, 0.0]]))

    def points(seed: int) -> torch.Tensor:
        with torch.no_grad():  # as adapt and query_predictions call it
            return PalA(k=2, few_shot="posterior-mean", few_shot_draws=8, seed=seed).prior_points(net)

    assert torch.equal(points(1), points(1))
    assert not torch.allclose(points(1), points(2))


# ---- what the estimator passes on -------------------------------------------------------------------------
def test_the_estimator_passes_distance_and_init_scale_to_the_network() -> None:
    """PAL-A's preset distance is the euclidean one and reaches the network; init_scale sets exp(logit_scale)."""
    assert PalA().build_network(0, 2, 1).distance == "euclidean"
    assert PalA(distance="squared").build_network(0, 2, 1).distance == "squared"
    assert PalA(init_scale=2.0).build_network(0, 2, 1).scale().item() == pytest.approx(2.0)
    assert PalB(init_scale=5.0).build_network(0, 2, 1).scale().item() == pytest.approx(5.0)


def test_the_estimators_margin_reaches_the_hinge() -> None:
    """The hand pair has logit 3 (squared distances 4 and 1 at scale 1): the hinge max(0, 4 − 3) = 1 with
    margin 4, where the default margin 1 gives 0."""
    model = PalA(k=2, loss="hinge", margin=4.0)
    model.network_ = hand_network(distance="squared")
    features = PairFeatures(torch.zeros(1, 0), torch.tensor([[1.0, 1.0]]), torch.tensor([[3.0, 0.0]]),
                            torch.tensor([0]))
    assert model.objective(features)(features.as_batch())["loss"].item() == pytest.approx(1.0, rel=1e-5)


# ---- few-shot by MAP (the default rule) -------------------------------------------------------------------
POPULATION = (0.8, 0.2)


def fitted_pal(**options) -> PalA:
    """PAL-A with the hand network and one training user at w = (0.8, 0.2), the population; under w the pair
    (2, 0) ≻ (0, 0) has logit ‖(0, 0) − a‖² − ‖(2, 0) − a‖² = 8·w₂ − 4."""
    model = PalA(k=2, distance="squared", **options)
    model.network_ = hand_network(distance="squared")
    with torch.no_grad():
        model.network_.weights.logits.copy_(torch.tensor([POPULATION]).log() / model.user_gain)
    return model


def test_few_shot_starts_from_the_population_and_stays_on_the_simplex() -> None:
    """A pair of two equal responses says nothing (logit 0 for every w): the fit does not move from its start, the
    population (0.8, 0.2), not the uniform (0.5, 0.5), and the user is a point of the simplex."""
    vector = fitted_pal().infer_user(pairs([[1.0, 0.0]], [[1.0, 0.0]]))
    assert vector.mean.tolist() == pytest.approx(list(POPULATION), abs=1e-5)


def test_the_few_shot_prior_holds_the_user_near_the_population() -> None:
    """The pair (2, 0) ≻ (0, 0) pulls w₂ from 0.2 toward 1: without the prior the fit goes there; with a strong
    prior (weight 100) it stays near the population."""
    free = fitted_pal(few_shot_prior=0.0).infer_user(pairs([[2.0, 0.0]], [[0.0, 0.0]])).mean
    held = fitted_pal(few_shot_prior=100.0).infer_user(pairs([[2.0, 0.0]], [[0.0, 0.0]])).mean
    assert free[1].item() > 0.9
    assert abs(held[1].item() - POPULATION[1]) < 0.05


def test_the_few_shot_learning_rate_is_used() -> None:
    """60 Adam steps of lr 1e-4 move the logits by at most 0.006, so w₂ stays within 0.01 of 0.2 even on the
    pair that pulls it toward 1 (the default lr 0.2 moves it past 0.5)."""
    slow = fitted_pal(few_shot_lr=1e-4).infer_user(pairs([[2.0, 0.0]], [[0.0, 0.0]])).mean
    assert abs(slow[1].item() - POPULATION[1]) < 0.01
    assert fitted_pal().infer_user(pairs([[2.0, 0.0]], [[0.0, 0.0]])).mean[1].item() > 0.5


def test_prior_points_can_be_read_outside_no_grad() -> None:
    """``prior_points`` is public: called on a network whose weights train, it raised "Can't call numpy() on Tensor
    that requires grad" (the Dirichlet draws go through numpy)."""
    network = PalANetwork(0, 2, n_users=3, k=2)
    with torch.no_grad():
        network.weights.logits.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.0]]))  # users that differ
    points = PalA(k=2, few_shot="posterior-mean", few_shot_draws=16).prior_points(network)
    assert points.shape == (16, 2) and not points.requires_grad
