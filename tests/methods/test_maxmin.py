import math

import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from conftest import two_group_rows
from pluralign.data import DataError
from pluralign.methods import BradleyTerry, ConfigError, MaxMin, PreferenceModel
from pluralign.methods.maxmin import em


@pytest.fixture(scope="module")
def data():
    return two_group_rows(n_users=6, pairs=40)  # users u0, u3 in group b (opposed), the rest in group a


@pytest.fixture(scope="module")
def fitted(data):
    return MaxMin(n_groups=2, hidden=[], epochs=8, em_epochs=4, lr=2e-2, batch_size=32, seed=0).fit(data[0], progress=False)


def embeddings(rows, column):
    return torch.tensor([r[column] for r in rows])


def test_em_pieces_by_hand():
    logits = torch.tensor([[2.0, -1.0], [0.0, 1.0], [1.0, 1.0]])
    user = torch.tensor([0, 0, 1])
    ll = em.user_log_likelihood(logits, user, 2)
    ls = lambda x: -math.log1p(math.exp(-x))  # log σ(x)
    assert torch.allclose(ll, torch.tensor([[ls(2) + ls(0), ls(-1) + ls(1)], [ls(1), ls(1)]]))
    weights = torch.tensor([[1.0, 0.0], [0.25, 0.75], [0.5, 0.5]])
    expected = -(ls(2) + 0.25 * ls(0) + 0.75 * ls(1) + ls(1)) / 3  # 0.4353
    assert math.isclose(em.responsibility_nll(logits, weights).item(), expected, rel_tol=1e-6)
    post = em.posterior(ll, torch.log(torch.tensor([0.5, 0.5])))
    assert torch.allclose(post[1], torch.tensor([0.5, 0.5]))
    assert torch.equal(em.harden(post)[0], torch.tensor([1.0, 0.0]))


def test_em_recovers_planted_groups(fitted, data):
    truth = {r["user_id"]: r["group"] for r in data[0]}
    found = fitted.assignments()
    users = list(found)
    assert adjusted_rand_score([truth[u] for u in users], [found[u] for u in users]) == 1.0
    stats = fitted.fit_stats_
    assert stats["em_converged"] and sorted(stats["group_sizes"]) == [2.0, 4.0] and math.isfinite(stats["bic"])
    # the fit reports the same: its groups against the rows' own, with the users in each pair of them
    group_b = found["u0"]
    assert stats["group_recovery"] == {"adjusted_rand": 1.0, "users": 6,
                                       "table": {"a": {str(1 - group_b): 4}, "b": {str(group_b): 2}}}


def test_group_recovery_by_hand(fitted, data):
    """Rows that call u4 and u5 (found in the majority group) "b": the contingency table is a: 2 in the majority's
    group; b: 2 in the minority's, 2 in the majority's. ARI by hand: index Σ C(n_ij, 2) = 3, row and column
    sums both give Σ C(n, 2) = 1 + 6 = 7, so expected 7·7/C(6, 2) = 49/15 and max 7."""
    group_b = fitted.assignments()["u0"]
    rows = [{**r, "group": "b" if r["user_id"] in ("u4", "u5") else r["group"]} for r in data[0]]
    recovery = fitted.group_recovery(rows)
    expected = (3 - 49 / 15) / (7 - 49 / 15)  # -0.0714: no better than chance
    assert recovery["adjusted_rand"] == pytest.approx(expected, abs=1e-4) and recovery["users"] == 6
    assert recovery["table"] == {"a": {str(1 - group_b): 2}, "b": {str(group_b): 2, str(1 - group_b): 2}}
    # no single group per user (or none at all): nothing to compare with
    assert fitted.group_recovery([{**r, "group": r["group"] + str(i % 2)} for i, r in enumerate(data[0])]) is None
    assert fitted.group_recovery([{k: v for k, v in r.items() if k != "group"} for r in data[0]]) is None


def test_one_group_maxmin_is_bt(data):
    config = dict(hidden=[8], epochs=3, lr=1e-2, seed=3)
    bt = BradleyTerry(**config).fit(data[0], progress=False)
    maxmin = MaxMin(n_groups=1, **config).fit(data[0], progress=False)
    a, b = embeddings(data[1][:20], "chosen_embedding"), embeddings(data[1][:20], "rejected_embedding")
    assert torch.allclose(maxmin.prefer_proba(None, a, b), bt.prefer_proba(None, a, b), atol=1e-6)
    assert torch.allclose(maxmin.prefer_proba(None, a, b, "u1"), bt.prefer_proba(None, a, b), atol=1e-6)


def test_infer_user_is_the_group_posterior(fitted, data):
    for user in ("u0", "u1"):
        own = [r for r in data[0] if r["user_id"] == user]
        assert torch.allclose(fitted.infer_user(own).mean, fitted.known_user(user).mean, atol=0.01)
        assert fitted.infer_user(own[:16]).mean.argmax() == fitted.known_user(user).mean.argmax()
    population = fitted.infer_user([]).mean  # k = 0: the mixing weights
    assert torch.equal(population, fitted.network_.proportions)
    assert torch.allclose(population.sort().values, torch.tensor([2 / 6, 4 / 6]))


def test_minority_is_served(fitted, data):
    minority = [r for r in data[1] if r["group"] == "b" and "role" not in r]
    a, b = embeddings(minority, "chosen_embedding"), embeddings(minority, "rejected_embedding")
    assert (fitted.prefer_proba(None, a, b, "u0") > 0.5).float().mean() > 0.7


def test_maxmin_score_and_best_of_n(fitted):
    candidates = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    scores = fitted.maxmin_score(None, candidates)
    per_group = fitted.network_.standardized_rewards(torch.zeros(8, 0), candidates)
    assert torch.allclose(scores, per_group.min(-1).values)
    best = fitted.best_of_n(None, candidates)
    assert best.index == int(scores.argmax()) and torch.equal(best.candidate, candidates[best.index])
    with pytest.raises(ValueError, match=r"^maxmin: best_of_n of no candidates; give at least one$"):
        fitted.best_of_n(None, candidates[:0])  # was torch's "argmax(): Expected reduction dim"


def test_save_load_round_trip(fitted, data, tmp_path):
    fitted.save_pretrained(tmp_path)
    loaded = PreferenceModel.from_pretrained(tmp_path)
    assert isinstance(loaded, MaxMin) and loaded.assignments() == fitted.assignments()
    a, b = embeddings(data[1][:10], "chosen_embedding"), embeddings(data[1][:10], "rejected_embedding")
    for user in (None, "u0", "u1"):
        assert torch.equal(fitted.prefer_proba(None, a, b, user), loaded.prefer_proba(None, a, b, user))
    assert torch.equal(fitted.maxmin_score(None, a), loaded.maxmin_score(None, a))


def test_config_errors_are_readable():
    with pytest.raises(ConfigError, match=r"maxmin: n_groups=0 must be at least 1"):
        MaxMin(n_groups=0)
    with pytest.raises(ConfigError, match="init"):
        MaxMin(init="kmeans++")


def test_too_few_users_for_the_groups_is_one_line(data):
    rows = [r for r in data[0] if r["user_id"] == "u1"]
    with pytest.raises(DataError, match=r"maxmin: .*1 user\(s\) with a user_id, fewer than n_groups=2"):
        MaxMin(n_groups=2, epochs=1).fit(rows, progress=False)


def test_model_selection_prefers_the_planted_number_of_groups(data):
    model = MaxMin(n_groups=1, hidden=[], epochs=8, em_epochs=4, lr=2e-2, batch_size=32, seed=0)
    selection = model.select_groups(data[0], candidates=(1, 2))
    assert selection["best"] == 2
    scores = selection["scores"]
    assert scores[2]["heldout_nll"] < scores[1]["heldout_nll"] and scores[2]["bic"] < scores[1]["bic"]


def test_group_posterior_weighs_the_prior_by_hand():
    # a flat likelihood gives back the prior; likelihoods 1 : 1/3 against a prior .25 : .75 balance out
    ll = torch.tensor([[-1.0, -1.0], [0.0, -math.log(3.0)]])
    post = em.posterior(ll, torch.log(torch.tensor([0.25, 0.75])))
    assert torch.allclose(post, torch.tensor([[0.25, 0.75], [0.5, 0.5]]))


def test_group_rewards_are_standardized_over_the_training_responses():
    """maxmin_score compares groups on one scale: each group's reward has mean 0 and sd 1 over the responses it
    was fitted on."""
    train, _ = two_group_rows(n_users=6, pairs=40)
    model = MaxMin(n_groups=2, hidden=[], epochs=3, em_epochs=2, lr=2e-2, seed=0).fit(train, progress=False)
    responses = torch.tensor([r["chosen_embedding"] for r in train] + [r["rejected_embedding"] for r in train])
    z = model.network_.standardized_rewards(torch.zeros(len(responses), 0), responses)
    assert torch.allclose(z.mean(0), torch.zeros(2), atol=1e-4) and torch.allclose(z.std(0), torch.ones(2), atol=1e-3)


def test_random_init_recovers_the_planted_groups_and_follows_the_seed(data) -> None:
    """``init="random"``: EM from a random hard assignment (drawn by the model's seed) finds the same two groups
    the gradient signatures do, and the same seed draws the same start."""
    config = dict(n_groups=2, hidden=[], epochs=8, em_epochs=4, lr=2e-2, batch_size=32, init="random")
    first = MaxMin(seed=0, **config).fit(data[0], progress=False)
    truth = {r["user_id"]: r["group"] for r in data[0]}
    found = first.assignments()
    assert adjusted_rand_score([truth[u] for u in found], list(found.values())) == 1.0
    network = first.network_
    starts = [MaxMin(seed=s, **config) for s in (0, 0, 1)]
    for model in starts:
        model.user_ids_, model.network_ = first.user_ids_, network
    drawn = [m._initial_assignment(None) for m in starts]
    assert all(bool((d.sum(-1) == 1).all()) for d in drawn) and torch.equal(drawn[0], drawn[1])
    assert not torch.equal(drawn[0], drawn[2])
    # no group starts empty (an empty group's π = 0 kept it empty under soft EM): 4 users in 4 groups, any seed
    for seed in range(20):
        few = MaxMin(seed=seed, **{**config, "n_groups": 4})
        few.user_ids_ = ["a", "b", "c", "d"]
        assert few._initial_assignment(None).sum(0).tolist() == [1.0] * 4
