"""Active queries, shared by every method with a posterior over users: the information gain by hand, each
method's choice of the pair the two groups disagree on (VPL's: tests/methods/test_vpl.py), the importance
posterior against its exact value, and the sequential order the evaluation protocol asks in."""

import pytest
import torch

from conftest import two_group_rows
from pluralign.data import PreferenceSet
from pluralign.data.features import PairFeatures
from pluralign.methods import METHODS
from pluralign.methods.active import expected_information_gain, greedy_order, information_gain, question_order
from pluralign.methods.few_shot import gaussian_draws, importance_posterior
from pluralign.methods.network import PreferenceNetwork


def test_information_gain_by_hand():
    # two posterior points that disagree (0.9 vs 0.1): H(0.5) − H(0.9) = 0.693147 − 0.325083
    assert information_gain(torch.tensor([[0.9], [0.1]])).item() == pytest.approx(0.368064, abs=1e-5)
    assert information_gain(torch.tensor([[0.5], [0.5]])).item() == pytest.approx(0.0, abs=1e-6)
    # weighted 0.8 / 0.2: H(0.8·0.9 + 0.2·0.1 = 0.74) − H(0.9) = 0.573057 − 0.325083
    weighted = information_gain(torch.tensor([[0.9], [0.1]]), torch.tensor([0.8, 0.2]))
    assert weighted.item() == pytest.approx(0.247974, abs=1e-5)
    # a point of weight 0 tells nothing
    assert information_gain(torch.tensor([[0.9], [0.1]]), torch.tensor([1.0, 0.0])).item() == pytest.approx(0, abs=1e-6)


@pytest.fixture(scope="module")
def data():
    return two_group_rows(n_users=6, pairs=48)


# the groups disagree on the first feature; identical responses tell nothing, nor does a pair that differs
# only on a feature nobody cares about
CHOSEN = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.5], [1.5, 0.0, 0.0, 0.0]])
REJECTED = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, -1.5], [-1.5, 0.0, 0.0, 0.0]])


@pytest.mark.parametrize("method, options", [("pal-a", dict(k=2, hidden=[16], pref_dim=8, epochs=15, lr=2e-2)),
                                             ("pal-b", dict(k=2, hidden=[16], pref_dim=8, epochs=15, lr=2e-2)),
                                             ("maxmin", dict(n_groups=2, hidden=[], epochs=5, lr=0.05)),
                                             ("gpm", dict(n_blocks=2, hidden=[], epochs=15, lr=2e-2))])
def test_the_pair_the_groups_disagree_on_is_asked(method, options, data):
    model = METHODS[method](**options).fit(data[0], progress=False)
    assert model.has_active_queries
    pool = PairFeatures(torch.zeros(3, 0), CHOSEN, REJECTED, torch.full((3,), -1))
    assert model.next_query(pool) == 2 and model.select_queries(pool, 3)[0] == 2
    swapped = PairFeatures(pool.prompt, REJECTED, CHOSEN, pool.user)
    assert model.next_query(swapped) == 2  # the stored orientation (maybe the label) does not matter
    # eight answers of group a's kind pin the user down: the disagreement pair is then worth less
    context = model.featurize(PreferenceSet.from_rows(
        [{"chosen_embedding": [1.5, 0.0, 0.0, 0.0], "rejected_embedding": [-1.5, 0.0, 0.0, 0.0]}] * 8))
    prior_gain, posterior_gain = expected_information_gain(model, pool), expected_information_gain(model, pool, context)
    assert posterior_gain[2] < 0.5 * prior_gain[2]
    assert torch.equal(posterior_gain, expected_information_gain(model, pool, context))  # deterministic


def test_micro_asks_where_its_heads_disagree(data):
    """Pooled pairs of 6 users do not split MiCRo's heads (models/micro.md), so the heads are set by hand:
    r_1 = 3·x_0, r_2 = −3·x_0. Only the pair that differs on x_0 tells which head routes the user."""
    model = METHODS["micro"](n_heads=2, hidden=[], epochs=1).fit(data[0], progress=False)
    with torch.no_grad():
        for head, sign in zip(model.network_.heads, (1.0, -1.0)):
            linear = head.head[-1]
            linear.weight.zero_()
            linear.bias.zero_()
            linear.weight[0, 0] = 3.0 * sign
        model.network_.router_bias.zero_()
    pool = PairFeatures(torch.zeros(3, 0), CHOSEN, REJECTED, torch.full((3,), -1))
    gain = expected_information_gain(model, pool)
    assert model.next_query(pool) == 2
    assert gain[0] == pytest.approx(0, abs=1e-6) and gain[1] == pytest.approx(0, abs=1e-6)
    context = model.featurize(PreferenceSet.from_rows(
        [{"chosen_embedding": [1.5, 0.0, 0.0, 0.0], "rejected_embedding": [-1.5, 0.0, 0.0, 0.0]}] * 8))
    assert expected_information_gain(model, pool, context)[2] < 0.5 * gain[2]
    flat = METHODS["micro"](n_heads=2, hidden=[], epochs=1, adapt_prior=0.0).fit(data[0], progress=False)
    with pytest.raises(ValueError, match="adapt_prior=0.0 must be positive for active queries"):
        flat.next_query(pool)


class SlopeNetwork(PreferenceNetwork):
    """logit(c ≻ r | u) = u · (c_0 − r_0): a one-dimensional user, for posteriors by quadrature."""
    user_dim = 1

    def logits(self, prompt, chosen, rejected, users):
        return users[:, 0] * (chosen[:, 0] - rejected[:, 0])


def test_a_flat_prior_has_no_draws():
    with pytest.raises(ValueError, match=r"prior_weight=0.0: a flat prior has no draws"):
        gaussian_draws(torch.zeros(2), 0.0, 3)


def test_gaussian_draws_and_importance_posterior_match_quadrature():
    draws = gaussian_draws(torch.tensor([0.5]), prior_weight=0.1, draws=20000, seed=3)
    assert draws.mean().item() == pytest.approx(0.5, abs=0.05) and draws.var().item() == pytest.approx(5.0, rel=0.05)
    assert torch.equal(draws, gaussian_draws(torch.tensor([0.5]), 0.1, 20000, seed=3))  # seeded
    # prior N(0, 1/(2·0.5) = 1); three pairs with c_0 − r_0 = 1, 1, −0.5
    chosen = torch.tensor([[1.0], [1.0], [0.0]])
    rejected = torch.tensor([[0.0], [0.0], [0.5]])
    context = PairFeatures(torch.zeros(3, 0), chosen, rejected, torch.full((3,), -1))
    users = gaussian_draws(torch.zeros(1), 0.5, 20000, seed=0)
    weights = importance_posterior(SlopeNetwork(), context, users)
    grid = torch.linspace(-8, 8, 16001, dtype=torch.float64)
    log_density = -0.5 * grid**2 + torch.nn.functional.logsigmoid(grid[:, None] * torch.tensor([1.0, 1.0, -0.5],
                                                                   dtype=torch.float64)).sum(1)
    density = torch.softmax(log_density, 0)
    exact_mean = (density * grid).sum().item()
    assert (weights.double() @ users[:, 0].double()).item() == pytest.approx(exact_mean, abs=0.02)
    assert torch.allclose(importance_posterior(SlopeNetwork(), None, users), torch.full((20000,), 1 / 20000))


def test_question_order_is_greedy_and_keeps_order_without_a_posterior(data):
    model = METHODS["maxmin"](n_groups=2, hidden=[], epochs=5, lr=0.05).fit(data[0], progress=False)
    pool = PairFeatures(torch.zeros(3, 0), CHOSEN, REJECTED, torch.full((3,), -1))
    order = question_order(model, pool)
    assert order[0] == 2 and sorted(order) == [0, 1, 2] and question_order(model, pool, 1) == order[:1]
    rows = PreferenceSet.from_rows([r for r in data[1] if r.get("role") == "context" and r["user_id"] == "new0"])
    features = model.featurize(rows)
    assert question_order(model, features, 5) == question_order(model, features, 12)[:5]
    bt = METHODS["bt"](epochs=1).fit(data[0], progress=False)
    assert question_order(bt, features, 4) == [0, 1, 2, 3]


@pytest.mark.parametrize("method, options", [("pal-a", dict(k=2, hidden=[16], pref_dim=8, epochs=15, lr=2e-2)),
                                             ("maxmin", dict(n_groups=2, hidden=[], epochs=5, lr=0.05)),
                                             ("gpm", dict(n_blocks=2, hidden=[], epochs=15, lr=2e-2))])
def test_reweighted_points_ask_what_the_posterior_asks_step_by_step(method, options, data):
    """The fast order (the points' predictions once, reweighted by each answer) is the order of asking
    query_predictions for the posterior after every answer."""
    model = METHODS[method](**options).fit(data[0], progress=False)
    assert model.reweights_prior_points
    for user in ("new0", "new1"):
        pool = model.featurize(PreferenceSet.from_rows(
            [r for r in data[1] if r.get("role") == "context" and r["user_id"] == user]))
        def gain(asked, left):  # the posterior given the answers so far, asked of the model afresh
            return expected_information_gain(model, pool[left], pool[asked] if asked else None)

        step_by_step = greedy_order(gain, len(pool), 8)
        assert question_order(model, pool, 8) == step_by_step


@pytest.mark.parametrize("method, options", [("pal-a", dict(k=2, hidden=[16], pref_dim=8, epochs=15, lr=2e-2)),
                                             ("vpl", dict(epochs=3, latent_dim=4, hidden=[16]))])
def test_a_question_depends_only_on_the_answers_before_it(method, options, data):
    """No label leaks into the choice: flipping the stored answer of every pool pair not yet asked leaves the
    next question as it was (the gain is symmetric in a ≻ b; only asked pairs' answers enter the posterior)."""
    model = METHODS[method](**options).fit(data[0], progress=False)
    pool = model.featurize(PreferenceSet.from_rows(
        [r for r in data[1] if r.get("role") == "context" and r["user_id"] == "new1"]))
    order = question_order(model, pool, 6)
    for asked in range(6):
        flip = torch.tensor([i not in order[:asked] for i in range(len(pool))])
        flipped = PairFeatures(pool.prompt, torch.where(flip[:, None], pool.rejected, pool.chosen),
                               torch.where(flip[:, None], pool.chosen, pool.rejected), pool.user)
        assert question_order(model, flipped, asked + 1) == order[: asked + 1]


def test_vpl_asks_its_most_informative_question_first(data):
    """VPL's order is the encoder's posterior after each answer: its first question is the pool's largest gain,
    here put last in the file (an order that kept the file's would ask pair 0)."""
    model = METHODS["vpl"](epochs=3, latent_dim=4, hidden=[16]).fit(data[0], progress=False)
    pool = model.featurize(PreferenceSet.from_rows(
        [r for r in data[1] if r.get("role") == "context" and r["user_id"] == "new1"]))
    best = int(torch.argmax(expected_information_gain(model, pool)))
    order = [i for i in range(len(pool)) if i != best] + [best]
    assert question_order(model, pool[order], 1) == [len(pool) - 1]


def test_an_answered_pair_is_asked_last_either_way_round_and_only_under_its_prompt() -> None:
    """select_queries puts a pool pair the context has answered last: stored the other way round too, but not a
    pair of the same responses under another prompt."""
    from pluralign.methods.active import answered

    prompts = torch.tensor([[0.0], [1.0], [0.0]])
    pool = PairFeatures(prompts, CHOSEN[:, :1].clone(), REJECTED[:, :1].clone(), torch.full((3,), -1))
    context = PairFeatures(torch.tensor([[0.0], [5.0]]), torch.stack([pool.rejected[2], pool.chosen[1]]),
                           torch.stack([pool.chosen[2], pool.rejected[1]]), torch.full((2,), -1))
    assert answered(pool, context).tolist() == [False, False, True]  # pair 2 swapped; pair 1 under prompt 5


def test_methods_without_a_user_posterior_say_so(data):
    bt = METHODS["bt"](epochs=1).fit(data[0], progress=False)
    assert not bt.has_active_queries
    with pytest.raises(ValueError, match="bt: no posterior over users to choose questions by"):
        bt.select_queries([r for r in data[1] if r.get("role") == "context"][:3])


def test_active_queries_benchmark_runs(benchmark_script, tmp_path):
    """benchmarks/active_queries.py for a method other than VPL, on a feature benchmark (smoke)."""
    result = benchmark_script("active_queries").main(
        ["--method", "maxmin", "--benchmark", "ideal-points", "--seeds", "0", "--budgets", "1", "2", "--draws", "2",
         "--set", "epochs=2", "--out", str(tmp_path)])
    assert set(result["mean"]) == {"random", "active"} and set(result["mean"]["active"]) == {"1", "2"}
    table = (tmp_path / "results.md").read_text()
    assert (tmp_path / "active_queries.png").exists() and "ideal-points, maxmin" in table and "± 95%" in table
    assert "| active − random at k = 2 |" in table
    # --render writes the same results.md from results.json, fitting nothing
    (tmp_path / "results.md").unlink()
    benchmark_script("active_queries").main(["--render", str(tmp_path)])
    assert (tmp_path / "results.md").read_text() == table


def test_active_queries_paired_interval_by_hand(benchmark_script):
    """Per-user differences active k=1 − random k=2 of two seeds' users: 0.1, 0.3 and −0.1, 0.1; mean 0.1, sd
    √(0.08 / 3): +10.0 ± t₃ 3.182 · 16.33 / 2 points (4 users, 3 degrees of freedom)."""
    module = benchmark_script("active_queries")
    runs = {0: {"per_user": {"active": {"1": [0.6, 0.8]}, "random": {"2": [0.5, 0.5]}}},
            1: {"per_user": {"active": {"1": [0.4, 0.7]}, "random": {"2": [0.5, 0.6]}}}}
    mean, half = module.paired_interval(runs, ("active", 1), ("random", 2))
    assert mean == pytest.approx(10.0) and half == pytest.approx(318.245 * (0.08 / 3) ** 0.5 / 2, abs=1e-3)
