"""VPL by hand, where mutation testing found the suite silent: the encoder's masked pooling and log-variance
clamp, z on the sphere of radius √L, the guide's standard deviation, the context sampler's exclusion of the
batch's rows, the training accuracy's orientation, the collapse diagnostic's thresholds, the population vector
and the prior draws of active queries.

Networks are set by hand (one-unit encoders whose attention and heads are read off their weights); one test
fits a model for one epoch."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import two_group_rows
from pluralign.data.features import PairFeatures
from pluralign.methods.vpl import VPL, VPLGuide, VPLNetwork
from pluralign.methods.vpl.active import posterior_samples
from pluralign.methods.vpl.model import ContextSampler, ELBOObjective


def set_linear(linear: torch.nn.Linear, weight: float | list[list[float]], bias: float | list[float] = 0.0) -> None:
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(weight, dtype=torch.float32).expand_as(linear.weight))
        linear.bias.copy_(torch.as_tensor(bias, dtype=torch.float32).expand_as(linear.bias))


def hand_encoder(latent_dim: int = 1, attention: float = 0.0, log_var: float = 0.0, **options) -> VPLNetwork:
    """An encoder of width 1 on 1-d responses: h = chosen; query a·h, key h, value h (scores a·h_i·h_j, √1 = 1);
    the mean head the identity (on every latent unit), the log-variance head the constant ``log_var``."""
    net = VPLNetwork(0, 1, 0, latent_dim=latent_dim, hidden=(), encoder_hidden=(), encoder_width=1, **options)
    encoder = net.encoder
    set_linear(encoder.pair[0], [[1.0, 0.0]])
    set_linear(encoder.query, attention)
    set_linear(encoder.key, 1.0)
    set_linear(encoder.value, 1.0)
    set_linear(encoder.mean, 1.0)
    set_linear(encoder.log_var, 0.0, log_var)
    return net


def contexts(chosen: list[list[float]], mask: list[list[bool]]) -> dict[str, torch.Tensor]:
    """Padded context sets [U, C, ·] of 1-d responses (rejected all 0, no prompt)."""
    values = torch.tensor(chosen).unsqueeze(-1)
    return {"prompt": torch.zeros(*values.shape[:2], 0), "chosen": values, "rejected": torch.zeros_like(values),
            "mask": torch.tensor(mask)}


# ---- the encoder and the latent ------------------------------------------------------------------------------
def test_padded_pairs_are_neither_keys_nor_pooled() -> None:
    """a = ln 3 / 2. The real pairs h = 1 and −1 attend with weights σ(±2a) = ¾, ¼: the row of h = 1 reads
    tanh(a) = ½, that of h = −1 reads −½, and their mean, the posterior mean, is 0. The padded slot (h = 2) would
    read tanh(2a) = 0.8; pooled with the others it would move the mean to 0.8 / 3. The padded batch gives each
    user what its context gives alone."""
    net = hand_encoder(attention=math.log(3.0) / 2)
    batch = contexts([[1.0, -1.0, 2.0], [2.0, 5.0, 5.0]], [[True, True, False], [True, False, False]])
    mean, _ = net.encode(batch["prompt"], batch["chosen"], batch["rejected"], batch["mask"])
    assert mean.flatten().tolist() == pytest.approx([0.0, 2.0], abs=1e-6)
    alone, _ = net.encode(torch.zeros(2, 0), torch.tensor([[1.0], [-1.0]]), torch.zeros(2, 1))
    assert alone.item() == pytest.approx(0.0, abs=1e-6)


def test_the_log_variance_is_clamped() -> None:
    """log σ² from the head (±20) is clamped to [−8, 4], so exp(log σ²) stays finite early in training."""
    for raw, clamped in ((20.0, 4.0), (-20.0, -8.0)):
        batch = contexts([[1.0]], [[True]])
        _, log_var = hand_encoder(log_var=raw).encode(batch["prompt"], batch["chosen"], batch["rejected"])
        assert log_var.item() == clamped


def test_normalized_z_lies_on_the_sphere_of_radius_sqrt_l() -> None:
    """normalize_z: each row z ↦ √L · z / ‖z‖; L = 2: (3, 4) ↦ √2 (0.6, 0.8) and (0, 2) ↦ √2 (0, 1)."""
    net = VPLNetwork(0, 1, 0, latent_dim=2, hidden=(), normalize_z=True)
    latent = net.latent(torch.tensor([[3.0, 4.0], [0.0, 2.0]]))
    root2 = math.sqrt(2.0)
    assert latent.flatten().tolist() == pytest.approx([0.6 * root2, 0.8 * root2, 0.0, root2])
    plain = VPLNetwork(0, 1, 0, latent_dim=2, hidden=())
    assert plain.latent(torch.tensor([[3.0, 4.0]])).tolist() == [[3.0, 4.0]]


def test_the_guide_uses_the_standard_deviation() -> None:
    """log σ² = log 4: the guide's q(z | C) has sd 2 (variance 4), not exp(log σ²) = 4."""
    net = hand_encoder(latent_dim=2, log_var=math.log(4.0))
    q = VPLGuide(net).z_dist(contexts([[1.5]], [[True]]))
    assert q.mean.flatten().tolist() == pytest.approx([1.5, 1.5])
    assert q.variance.flatten().tolist() == pytest.approx([4.0, 4.0], rel=1e-5)


# ---- training ------------------------------------------------------------------------------------------------
def test_contexts_leave_out_the_batchs_own_rows() -> None:
    """User 0 owns rows 0, 1, 2 (chosen = the row's number). With rows 0 and 1 in the batch, a context of up to 3
    pairs holds row 2 alone; with all three in the batch there is nothing else: the user is named as left without
    a set (their rows then get one each), where their own rows once made the context, labels and all."""
    users = torch.tensor([0, 0, 0, 1])
    features = PairFeatures(torch.zeros(4, 0), torch.arange(4.0).unsqueeze(1), torch.zeros(4, 1), users)
    sampler = ContextSampler(features, min_size=3, max_size=3)
    torch.manual_seed(0)
    left, inside = sampler(torch.tensor([0]), torch.tensor([0, 1]))
    assert left["chosen"][0, left["mask"][0], 0].tolist() == [2.0] and inside.tolist() == [False]
    overlap, inside = sampler(torch.tensor([0]), torch.tensor([0, 1, 2]))
    assert not overlap["mask"].any() and inside.tolist() == [True]


def test_the_training_accuracy_reads_chosen_over_rejected() -> None:
    """Decoder logit = chosen₀ − rejected₀ whatever z: pairs with logits 2 and 1 are both right, accuracy 1."""
    net = VPLNetwork(0, 2, 1, latent_dim=2, hidden=(), encoder_hidden=(4,), encoder_width=4)
    set_linear(net.decoder[0], [[1.0, 0.0, 0.0, 0.0]])
    chosen = torch.tensor([[2.0, 0.0], [1.0, 0.0]])
    features = PairFeatures(torch.zeros(2, 0), chosen, torch.zeros_like(chosen), torch.zeros(2, dtype=torch.long))
    objective = ELBOObjective(net, features, kl_weight=1.0, kl_cycle=1, kl_ramp=1.0, kl_baseline=1.0,
                              context_min=1, context_max=1)
    torch.manual_seed(0)
    assert objective(features.as_batch())["accuracy"].item() == 1.0


# ---- diagnostics, population, active queries -------------------------------------------------------------------
def diagnose(chosen: list[float]) -> dict:
    """The collapse diagnostic of users 0, 1, ... with one pair each: with uniform attention the encoder's mean is
    the user's chosen value, log σ² = 0."""
    model = VPL(latent_dim=1)
    model.network_ = hand_encoder(attention=0.0)
    n = len(chosen)
    features = PairFeatures(torch.zeros(n, 0), torch.tensor(chosen).unsqueeze(1), torch.zeros(n, 1), torch.arange(n))
    return model.collapse_diagnostic(features)


def test_collapse_diagnostic_by_hand() -> None:
    """Means ±0.08: KL = ½ · 0.08² = 0.0032 nats and the spread of the means (population variance) 0.0064, both
    under 0.01: collapsed (the n − 1 variance, 0.0128, would count one active unit). Means 0.5 and 0.5: KL 0.125,
    one active unit, spread 0: not collapsed, since a unit carries information."""
    small = diagnose([0.08, -0.08])
    assert small["kl_total"] == pytest.approx(0.0032, abs=1e-4)
    assert (small["active_units_kl"], small["active_units_variance"], small["collapsed"]) == (0, 0, True)
    same = diagnose([0.5, 0.5])
    assert same["kl_total"] == pytest.approx(0.125, abs=1e-4)
    assert (same["active_units_kl"], same["active_units_variance"], same["collapsed"]) == (1, 0, False)


def test_the_population_is_the_mean_of_the_users_posterior_means() -> None:
    """k = 0 gets the centre of the training latents (the mean of the users' posterior means), not the prior
    mean 0."""
    train, _ = two_group_rows(n_users=3, pairs=10)
    model = VPL(epochs=1, latent_dim=2, hidden=[4], encoder_hidden=[4], encoder_width=4, batch_size=1000)
    model.fit(train, progress=False)
    means = model.network_.user_means
    population = model.population_user().mean
    assert torch.allclose(population, means.mean(0))
    assert not torch.allclose(population, torch.zeros(2))


def test_active_draws_without_context_come_from_the_prior_with_the_models_seed() -> None:
    """No context: z ~ N(0, I) (not the population vector, here (5, −5)); the model's seed fixes the draws."""
    def draws(seed: int, n: int) -> torch.Tensor:
        model = VPL(latent_dim=2, seed=seed)
        model.network_ = VPLNetwork(0, 1, 0, latent_dim=2, hidden=())
        model.network_.population.copy_(torch.tensor([5.0, -5.0]))
        return posterior_samples(model, None, n)

    z = draws(3, 20000)
    assert z.mean(0).tolist() == pytest.approx([0.0, 0.0], abs=0.05)
    assert z.std(0).tolist() == pytest.approx([1.0, 1.0], rel=0.03)
    assert torch.equal(draws(3, 4), draws(3, 4)) and not torch.allclose(draws(3, 4), draws(4, 4))


def test_no_query_reads_its_own_label_in_its_context() -> None:
    """User 0's rows 0-2 are all in the batch; user 1 keeps rows 4, 5 outside it. User 1's rows share one set of
    outside pairs; each of user 0's rows gets a set of user 0's other rows, never itself (the sets once fell back
    to the batch's rows, the query's label included: 1.8% of pairs on PRISM-like data). An empty set is the prior."""
    users = torch.tensor([0, 0, 0, 1, 1, 1])
    features = PairFeatures(torch.zeros(6, 0), torch.arange(6.0).unsqueeze(1), torch.zeros(6, 1), users)
    net = VPLNetwork(0, 1, 2, latent_dim=2, hidden=(), encoder_hidden=(4,), encoder_width=4)
    objective = ELBOObjective(net, features, kl_weight=1.0, kl_cycle=1, kl_ramp=1.0, kl_baseline=1.0,
                              context_min=2, context_max=2)
    seen = []
    z_dist = objective.guide.z_dist
    objective.guide.z_dist = lambda context: seen.append(context) or z_dist(context)
    torch.manual_seed(0)
    objective(features[torch.tensor([0, 1, 2, 3])].as_batch() | {"row": torch.tensor([0, 1, 2, 3])})
    sets = [seen[0]["chosen"][k, seen[0]["mask"][k], 0].long().tolist() for k in range(len(seen[0]["mask"]))]
    assert sets[0] == [] and sorted(sets[1]) == [4, 5]  # user 0: no outside pair (the prior, no KL); user 1: two
    assert [sorted(s) for s in sets[2:]] == [[1, 2], [0, 2], [0, 1]]  # rows 0, 1, 2: the other two of user 0
    mean, log_var = net.encode(torch.zeros(1, 2, 0), torch.ones(1, 2, 1), torch.zeros(1, 2, 1),
                               torch.zeros(1, 2, dtype=torch.bool))
    assert mean.tolist() == [[0.0, 0.0]] and log_var.tolist() == [[0.0, 0.0]]
