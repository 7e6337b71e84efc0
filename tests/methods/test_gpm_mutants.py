"""GPM by hand: the eigenvalues of a non-uniform user, the unit-sphere embedding, the few-shot fit of the block
weights and its prior, the prompt gate's switch and the checks on the arguments; planted networks, no training."""

from __future__ import annotations


import pytest
import torch

from pluralign.data.features import PairFeatures
from pluralign.methods import GPM, ConfigError
from pluralign.methods.gpm import PreferenceEmbeddingNetwork


def identity_network(dim: int = 4, tau: float = 1.0, normalize: bool = False) -> PreferenceEmbeddingNetwork:
    """v(y) = y on a 0-wide prompt, dim / 2 blocks, no prompt gate, no training users."""
    network = PreferenceEmbeddingNetwork(0, dim, dim // 2, [], tau=tau, normalize=normalize, prompt_gate=False,
                                         n_users=0)
    with torch.no_grad():
        network.embed[-1].weight.copy_(torch.eye(dim))
        network.embed[-1].bias.zero_()
    return network


def pairs(chosen: list[list[float]], rejected: list[list[float]]) -> PairFeatures:
    c, r = torch.tensor(chosen), torch.tensor(rejected)
    return PairFeatures(torch.zeros(len(c), 0), c, r, torch.full((len(c),), -1))


def fitted_by_hand(network: PreferenceEmbeddingNetwork, **options) -> GPM:
    """A GPM whose network is set by hand (what few-shot and active queries read), no training."""
    model = GPM(n_blocks=network.user_dim, **options)
    model.network_ = network
    return model


def test_a_users_block_weights_scale_the_eigenvalues() -> None:
    """No gate: λ = k · softmax(log w) = k · w, so w = (.75, .25) gives λ = (1.5, .5) (softmax of w itself would
    give 2 · (σ(.5), σ(−.5)) = (1.245, .755)); the population user is uniform, λ ≡ 1."""
    network = identity_network()
    eigenvalues = network.eigenvalues(torch.zeros(2, 0), torch.tensor([[0.75, 0.25], [0.5, 0.5]]))
    assert torch.allclose(eigenvalues, torch.tensor([[1.5, 0.5], [1.0, 1.0]]))
    assert network.population_user().tolist() == [0.5, 0.5]


def test_normalize_puts_the_embeddings_on_the_unit_sphere() -> None:
    """v_c = (3, 4) → (.6, .8), v_r = (1, 0): s = a₂b₁ − a₁b₂ = .8 (4 without normalizing), τ = .5: logit 1.6."""
    c, r = torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.0]])
    on_sphere, raw = identity_network(2, tau=0.5, normalize=True), identity_network(2, tau=0.5)
    users = torch.ones(1, 1)
    assert on_sphere.logits(torch.zeros(1, 0), c, r, users).item() == pytest.approx(1.6, abs=1e-6)
    assert raw.logits(torch.zeros(1, 0), c, r, users).item() == pytest.approx(8.0, abs=1e-6)


def test_prompt_gate_false_means_no_gate() -> None:
    """``prompt_gate=False`` with a wide prompt: λ ≡ 1 for the population user, whatever the prompt."""
    network = PreferenceEmbeddingNetwork(3, 2, 2, [], tau=1.0, normalize=False, prompt_gate=False, n_users=0)
    assert network.gate is None
    prompt = torch.tensor([[5.0, -1.0, 2.0]])
    assert torch.equal(network.eigenvalues(prompt, torch.tensor([[0.5, 0.5]])), torch.ones(1, 2))


def test_few_shot_block_weights_are_on_the_simplex_and_held_back_by_the_prior() -> None:
    """Block 1 scores the pair +5, block 2 −5: logit = 2w₁·5 − 2w₂·5 = 10(w₁ − w₂). With w = softmax(u), u = (t, −t),
    the fit minimizes −ln σ(10(2σ(2t) − 1)) + λ · 2t²: λ = 5 puts the optimum at t = 0.1172, w₁ = σ(0.2343) = 0.558;
    without a prior w₁ runs towards 1 (> 0.9)."""
    network = identity_network()
    one = pairs([[0.0, 1.0, 0.0, 1.0]], [[5.0, 0.0, -5.0, 0.0]])
    held = fitted_by_hand(network, adapt_prior=5.0, adapt_steps=100, adapt_lr=0.05).infer_user(one).mean
    free = fitted_by_hand(network, adapt_prior=0.0, adapt_steps=60, adapt_lr=0.2).infer_user(one).mean
    assert held.sum().item() == pytest.approx(1.0, abs=1e-6) and free.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert held[0].item() == pytest.approx(0.558, abs=0.005)
    assert free[0].item() > 0.9


def test_active_queries_draw_the_block_weights_from_adapt_prior() -> None:
    """Block scores ±1: logit = 2(w₁ − w₂) = 2 tanh((u₁ − u₂)/2) ≈ u₁ − u₂, sd 1/√λ under N(0, I / (2λ)):
    λ = 50 gives sd 0.141, so P ≈ ½ + (u₁ − u₂)/4 has sd ≈ 0.035 (λ = 1 would give about 0.2)."""
    model = fitted_by_hand(identity_network(), adapt_prior=50.0, adapt_draws=4000)
    predictions, weights = model.query_predictions(pairs([[0.0, 1.0, 0.0, 1.0]], [[1.0, 0.0, -1.0, 0.0]]), None)
    assert predictions.shape == (4000, 1) and torch.allclose(weights, torch.full((4000,), 1 / 4000))
    assert 0.032 < predictions.std().item() < 0.038


def test_tau_must_be_positive() -> None:
    with pytest.raises(ConfigError, match=r"gpm: tau=0.* must be positive"):
        GPM(tau=0.0)



def test_training_users_rule_queries_the_training_users_weights() -> None:
    """``few_shot="training-users"``: the points are the two training users' weights, w_a = (.75, .25) and
    w_b = (.25, .75). Block scores ±1 give logits 2(w₁ − w₂) = +1 and −1, so P = (σ(1), σ(−1)) = (0.7311, 0.2689);
    equal weights without a context, and after the pair itself as the context weights ∝ (σ(1), σ(−1))."""
    network = PreferenceEmbeddingNetwork(0, 4, 2, [], tau=1.0, normalize=False, prompt_gate=False, n_users=2)
    with torch.no_grad():
        network.embed[-1].weight.copy_(torch.eye(4))
        network.embed[-1].bias.zero_()
        network.known.logits.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]) * torch.log(torch.tensor(3.0)))
    model = fitted_by_hand(network, few_shot="training-users")
    model.user_ids_ = ["a", "b"]
    pool = pairs([[0.0, 1.0, 0.0, 1.0]], [[1.0, 0.0, -1.0, 0.0]])
    predictions, weights = model.query_predictions(pool, None)
    assert predictions[:, 0].tolist() == pytest.approx([0.731059, 0.268941], abs=1e-5)
    assert weights.tolist() == pytest.approx([0.5, 0.5])
    assert model.query_predictions(pool, pool)[1].tolist() == pytest.approx([0.731059, 0.268941], abs=1e-5)
