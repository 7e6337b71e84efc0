"""Active queries, shared by every method with a posterior over users: the information gain by hand, and
PAL's and MaxMin's choice of the pair the two groups disagree on (VPL's: tests/methods/test_vpl.py)."""

import pytest
import torch

from conftest import two_group_rows
from pluralign.data import PreferenceSet
from pluralign.data.features import PairFeatures
from pluralign.methods import METHODS
from pluralign.methods.active import expected_information_gain, information_gain


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
                                             ("maxmin", dict(n_groups=2, hidden=[], epochs=5, lr=0.05))])
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
