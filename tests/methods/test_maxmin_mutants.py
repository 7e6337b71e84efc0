"""MaxMin by hand: EM's loop with a scripted M-step (warm start, epochs, convergence, proportions, BIC), the E-step
with and without its prior, the gradient-signature start, a new user's posterior, unknown users in the M-step,
the expected reward and the min over populated groups; planted linear groups, no Lightning run."""

from __future__ import annotations

import math

import pytest
import torch

from pluralign.data import DataError
from pluralign.data.features import PairFeatures
from pluralign.methods import MaxMin
from pluralign.methods.maxmin import GroupRewardNetwork
from pluralign.methods.maxmin.model import ResponsibilityObjective

UP, DOWN = [3.0, 0.0], [-3.0, 0.0]  # group 0 rewards 3·y₀, group 1 rewards −3·y₀


def plant(network: GroupRewardNetwork, *weights: list[float]) -> None:
    with torch.no_grad():
        for group, w in zip(network.groups, weights):
            group.head[-1].weight.copy_(torch.tensor([w]))
            group.head[-1].bias.zero_()


def planted(n_users: int = 0, proportions: list[float] | None = None) -> GroupRewardNetwork:
    network = GroupRewardNetwork(0, 2, 2, [], n_users)
    plant(network, UP, DOWN)
    if proportions is not None:
        network.proportions.copy_(torch.tensor(proportions))
    return network


def by_hand(network: GroupRewardNetwork, users: int = 0, **options) -> MaxMin:
    """A MaxMin whose network is set by hand: what the E-step, few-shot and scores read, no EM run."""
    model = MaxMin(n_groups=len(network.groups), hidden=[], **options)
    model.network_, model.user_ids_, model.dims_ = network, [f"u{i}" for i in range(users)], (0, 2)
    return model


def pairs(chosen: list[list[float]], rejected: list[list[float]], user: list[int] | None = None) -> PairFeatures:
    c, r = torch.tensor(chosen), torch.tensor(rejected)
    return PairFeatures(torch.zeros(len(c), 0), c, r, torch.tensor(user if user is not None else [-1] * len(c)))


class ScriptedMaxMin(MaxMin):
    """MaxMin whose M-step plants the groups instead of training them: the pooled run sets group 0 to y₀, every
    later run sets the groups to ±3·y₀. Records each run's name, epochs, responsibilities and the groups' weights
    as the run found them; the initial assignment is ``start`` (one group index per user) where given."""

    start: list[int] | None = None
    runs: list[tuple] = []

    def run_lightning(self, objective, features, val_features, options, epochs, name="fit", lr=None):
        weights = [g.head[-1].weight.detach().clone() for g in self.network_.groups]
        ScriptedMaxMin.runs.append((name, epochs, objective.responsibilities.clone(), weights,
                                    features.chosen[:, 1].tolist()))
        if name == "pooled":
            plant(self.network_, [1.0, 0.0])
        else:
            plant(self.network_, UP, DOWN)

    def _initial_assignment(self, features):
        if self.start is None:
            return super()._initial_assignment(features)
        return torch.nn.functional.one_hot(torch.tensor(self.start), self.n_groups).float()


def rows_of(user: str, up: bool, n: int = 2) -> list[dict]:
    """n pairs whose chosen response is one higher on y₀ (``up``) or one lower; y₁ = the pair's index."""
    rows = []
    for i in range(n):
        high, low = [1.0, float(i)], [0.0, float(i)]
        rows.append({"user_id": user, "chosen_embedding": high if up else low,
                     "rejected_embedding": low if up else high})
    return rows


def test_em_loop_by_hand() -> None:
    """Users u0, u1, u2 prefer high y₀, u3 low, two pairs each; the start puts u2 with u3. The pooled run gets
    everyone in group 0 and ``epochs``; group 1 then starts as a copy of the pooled group 0; the first EM run gets
    ``epochs`` too and the start, its E-step moves u2 (1 change), the second run (``em_epochs``) moves nobody:
    converged, π = (.75, .25). Each user's pairs have log σ(±3) twice: ℓ = (−0.0972, −6.0972) for the up users,
    reversed for u3; the marginal is 3 · ln(.75e^−0.0972 + .25e^−6.0972) + ln(.75e^−6.0972 + .25e^−0.0972) =
    3 · (−0.3840) − 1.4761 = −2.6282, and the BIC counts 2·3 weights plus one free proportion:
    7 · ln 8 + 5.2563 = 19.8124."""
    rows = rows_of("u0", True) + rows_of("u1", True) + rows_of("u2", True) + rows_of("u3", False)
    ScriptedMaxMin.runs, ScriptedMaxMin.start = [], [0, 0, 1, 1]
    model = ScriptedMaxMin(n_groups=2, hidden=[], epochs=7, em_epochs=3, em_iterations=5).fit(rows, progress=False)
    assert [(name, epochs) for name, epochs, *_ in ScriptedMaxMin.runs] == [("pooled", 7), ("em0", 7), ("em1", 3)]
    pooled, em0, em1 = (run[2].argmax(-1).tolist() for run in ScriptedMaxMin.runs)
    assert pooled == [0, 0, 0, 0] and em0 == [0, 0, 1, 1] and em1 == [0, 0, 0, 1]
    assert all(w.tolist() == [[1.0, 0.0]] for w in ScriptedMaxMin.runs[1][3])  # warm start: a copy of group 0
    stats = model.fit_stats_
    assert stats["em_changes"] == [1, 0] and stats["em_converged"] and stats["group_sizes"] == [3.0, 1.0]
    assert model.assignments() == {"u0": 0, "u1": 0, "u2": 0, "u3": 1}
    assert model.network_.proportions.tolist() == [0.75, 0.25]
    assert stats["log_likelihood"] == pytest.approx(-2.628, abs=1e-3)
    assert stats["bic"] == pytest.approx(19.812, abs=1e-3)


def test_as_many_users_as_groups_is_enough() -> None:
    """EM assigns whole users: two users can fill two groups."""
    ScriptedMaxMin.runs, ScriptedMaxMin.start = [], [0, 1]
    model = ScriptedMaxMin(n_groups=2, hidden=[], epochs=1, em_epochs=1, em_iterations=2)
    model.fit(rows_of("u0", True) + rows_of("u1", False), progress=False)
    assert model.assignments() == {"u0": 0, "u1": 1}
    with pytest.raises(DataError, match="fewer than n_groups=2"):
        ScriptedMaxMin(n_groups=2, hidden=[], epochs=1).fit(rows_of("u0", True), progress=False)


def test_select_groups_holds_out_each_users_last_pairs() -> None:
    """Five pairs a user (y₁ = 0 … 4), holdout .2: every model trains on pairs 0–3 of each user, pair 4 is held out."""
    ScriptedMaxMin.runs, ScriptedMaxMin.start = [], None
    model = ScriptedMaxMin(n_groups=1, hidden=[], epochs=1)
    model.select_groups(rows_of("u0", True, 5) + rows_of("u1", False, 5), candidates=(1,), holdout=0.2)
    assert [run[0] for run in ScriptedMaxMin.runs] == ["pooled"]
    assert ScriptedMaxMin.runs[0][4] == [0.0, 1.0, 2.0, 3.0] * 2


def test_e_step_hard_ignores_the_prior_and_soft_weighs_it() -> None:
    """User 0 of 10 has two pairs: y₀ one higher (logits +3 / −3) and y₀ 1.2 lower (−3.6 / +3.6): ℓ = (ln σ(3) +
    ln σ(−3.6), ln σ(−3) + ln σ(3.6)) = (−3.6755, −3.0755), 0.6 nats for group 1. Responsibilities (9 users in group 0,
    1 in group 1) give the prior (.9, .1). Hard (the paper, no prior): group 1. Soft: p₁ = .1e^0.6 / (.9 + .1e^0.6) =
    0.16837 (0.64566 under a flat prior); a user without pairs keeps the prior."""
    features = pairs([[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [1.2, 0.0]], user=[0, 0])
    responsibilities = torch.tensor([[1.0, 0.0]] * 9 + [[0.0, 1.0]])
    hard, _ = by_hand(planted(10), users=10)._e_step(features, responsibilities)
    soft, log_likelihood = by_hand(planted(10), users=10, hard=False)._e_step(features, responsibilities)
    assert log_likelihood[0].tolist() == pytest.approx([-3.67554, -3.07554], abs=1e-4)
    assert hard[0].tolist() == [0.0, 1.0]
    assert soft[0].tolist() == pytest.approx([1 - 0.16837, 0.16837], abs=1e-4)
    assert soft[1].tolist() == pytest.approx([0.9, 0.1], abs=1e-6)


def test_new_user_posterior_weighs_the_proportions() -> None:
    """The same two pairs for a new user, π = (.9, .1): p(g | pairs) = (0.83163, 0.16837); active queries read that
    posterior given a context and π without one."""
    model = by_hand(planted(proportions=[0.9, 0.1]))
    context = pairs([[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [1.2, 0.0]])
    assert model.infer_user(context).mean.tolist() == pytest.approx([0.83163, 0.16837], abs=1e-4)
    pool = pairs([[1.0, 0.0]], [[0.0, 0.0]])
    predictions, weights = model.query_predictions(pool, context)
    assert weights.tolist() == pytest.approx([0.83163, 0.16837], abs=1e-4)
    assert predictions[:, 0].tolist() == pytest.approx([1 / (1 + math.exp(-3)), 1 / (1 + math.exp(3))], abs=1e-6)
    assert model.query_predictions(pool, None)[1].tolist() == pytest.approx([0.9, 0.1])


def test_initial_assignment_clusters_mean_gradient_signatures() -> None:
    """Pooled reward 2·y₀; each pair adds (1 − σ(logit)) · (y_c − y_r) to its user's signature, averaged over the
    user's pairs: u0 (y_c − y_r = (1, 0)): (0.119, 0); u1 ((−1, 0)): (−0.881, 0); u2 ((0, 1), logit 0): (0, 0.5);
    u3 (three pairs like u1's): (−0.881, 0). Two clusters: {u0, u2} and {u1, u3}. (σ in place of 1 − σ puts u0
    alone; sums in place of means put u3 alone.)"""
    network = GroupRewardNetwork(0, 2, 2, [], 4)
    plant(network, [2.0, 0.0], [2.0, 0.0])
    features = pairs([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]] + [[0.0, 0.0]] * 3,
                     [[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]] + [[1.0, 0.0]] * 3, user=[0, 1, 2, 3, 3, 3])
    labels = by_hand(network, users=4, init="gradient", seed=0)._initial_assignment(features).argmax(-1).tolist()
    assert labels[0] == labels[2] != labels[1] == labels[3]


def test_initial_assignment_leaves_group_zero_training_with_its_dropout() -> None:
    """The signatures are read without dropout, and group 0 goes back to train mode after: Lightning does not
    switch it back, so it took the first EM M-step (a full run) without the dropout the other groups had."""
    network = GroupRewardNetwork(0, 2, 2, [3], 4, dropout=0.5).train()
    features = pairs([[1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]], user=[0, 1])
    by_hand(network, users=2, init="gradient", seed=0)._initial_assignment(features)
    assert all(group.head.training for group in network.groups)


def test_unknown_users_pairs_weigh_by_the_proportions() -> None:
    """A pair of an unknown user (−1) in the M-step weighs by the mean responsibility (.25, .75): group logits +3 and
    −3 give −(.25 ln σ(3) + .75 ln σ(−3)) = 2.29859; the mixture P = .25σ(3) + .75σ(−3) < ½: accuracy 0."""
    responsibilities = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    out = ResponsibilityObjective(planted(4), responsibilities)(pairs([[1.0, 0.0]], [[0.0, 0.0]]).as_batch())
    assert out["loss"].item() == pytest.approx(2.298587, abs=1e-5)
    assert out["accuracy"].item() == 0.0


def test_reward_is_the_users_expected_group_reward() -> None:
    """y = (1, 0): group rewards (3, −3); a user (.25, .75) gets .25 · 3 − .75 · 3 = −1.5."""
    network = planted()
    reward = network.reward(torch.zeros(1, 0), torch.tensor([[1.0, 0.0]]), torch.tensor([[0.25, 0.75]]))
    assert reward.item() == pytest.approx(-1.5)


def test_maxmin_score_skips_an_empty_group() -> None:
    """Proportions (1, 0): group 1 holds nobody, so the worst-off group of y = (1, 0) is group 0 (3), not group 1
    (−3); both populated, the min is −3."""
    response = torch.tensor([[1.0, 0.0]])
    assert by_hand(planted(proportions=[1.0, 0.0])).maxmin_score(None, response).tolist() == [3.0]
    assert by_hand(planted(proportions=[0.5, 0.5])).maxmin_score(None, response).tolist() == [-3.0]
