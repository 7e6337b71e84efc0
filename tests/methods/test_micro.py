import copy
import math

import pytest
import torch

from conftest import two_group_rows
from pluralign.data.features import PairFeatures
from pluralign.methods import BradleyTerry, ConfigError, MiCRo, PreferenceModel
from pluralign.methods.micro import MixtureObjective, RoutedMixtureNetwork, routing_balance


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def planted(network: RoutedMixtureNetwork, directions: list[list[float]]) -> RoutedMixtureNetwork:
    """Linear heads set by hand: head k's reward is directions[k] · y."""
    with torch.no_grad():
        for head, w in zip(network.heads, directions):
            head.head[-1].weight.copy_(torch.tensor([w]))
            head.head[-1].bias.zero_()
    return network


def pairs(chosen, rejected, prompt_dim: int = 0) -> PairFeatures:
    chosen, rejected = torch.tensor(chosen), torch.tensor(rejected)
    return PairFeatures(torch.zeros(len(chosen), prompt_dim), chosen, rejected, torch.full((len(chosen),), -1))


@pytest.fixture(scope="module")
def data():
    return two_group_rows(n_users=6, pairs=40)


@pytest.fixture(scope="module")
def fitted(data):
    return MiCRo(n_heads=2, hidden=[], epochs=4, lr=1e-2, seed=0, adapt_steps=60, adapt_lr=0.2).fit(data[0], progress=False)


def test_mixture_loss_by_hand():
    net = planted(RoutedMixtureNetwork(0, 2, 2, []), [[1.0, 0.0], [0.0, 2.0]])
    with torch.no_grad():
        net.router_bias.copy_(torch.tensor([math.log(0.25), math.log(0.75)]))
    batch = pairs([[1.0, 1.0]], [[0.0, 2.0]]).as_batch()  # head logits: 1 − 0 = 1 and 2 − 4 = −2
    out = MixtureObjective(net, balance_weight=0.5)(batch)
    nll = -math.log(0.25 * sigmoid(1.0) + 0.75 * sigmoid(-2.0))  # = 1.0906
    balance = 0.25 * math.log(0.25) + 0.75 * math.log(0.75)  # = −0.5623
    assert math.isclose(out["nll"].item(), nll, rel_tol=1e-5)
    assert math.isclose(out["loss"].item(), nll + 0.5 * balance, rel_tol=1e-5)
    assert math.isclose(routing_balance(torch.tensor([[0.5, 0.5]]).log()).item(), -math.log(2), rel_tol=1e-6)


def test_one_head_micro_is_bt(data):
    config = dict(hidden=[8], epochs=3, lr=1e-2, seed=3)
    bt = BradleyTerry(**config).fit(data[0], progress=False)
    micro = MiCRo(n_heads=1, **config).fit(data[0], progress=False)
    a = torch.tensor([r["chosen_embedding"] for r in data[1][:20]])
    b = torch.tensor([r["rejected_embedding"] for r in data[1][:20]])
    assert torch.allclose(micro.prefer_proba(None, a, b), bt.prefer_proba(None, a, b), atol=1e-5)
    assert torch.allclose(micro.score(None, a), bt.score(None, a), atol=1e-5)


def test_save_load_round_trip(fitted, data, tmp_path):
    fitted.save_pretrained(tmp_path)
    loaded = PreferenceModel.from_pretrained(tmp_path)
    assert isinstance(loaded, MiCRo) and loaded.n_heads == 2
    a = torch.tensor([r["chosen_embedding"] for r in data[1][:10]])
    b = torch.tensor([r["rejected_embedding"] for r in data[1][:10]])
    assert torch.equal(fitted.prefer_proba(None, a, b), loaded.prefer_proba(None, a, b))
    user = data[1][:6]
    assert torch.allclose(fitted.infer_user(user).mean, loaded.infer_user(user).mean)


def test_trains_without_user_ids(fitted):
    assert fitted.user_ids_ == [] and fitted.fit_stats_["n_users"] == 0
    assert torch.equal(fitted.infer_user([]).mean, torch.zeros(2))  # k = 0: the population routing


def test_routing_adaptation_finds_the_users_head(fitted):
    fitted = copy.deepcopy(fitted)
    """Stage 2: pairs labelled by head 1 move the routing to head 1; heads and router stay frozen."""
    planted(fitted.network_, [[1.0, 0.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0]])
    before = {k: v.clone() for k, v in fitted.network_.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 4, generator=g), torch.randn(16, 4, generator=g)
    chosen = torch.where((x[:, :1] < y[:, :1]), x, y)  # head 1 prefers the lower first feature
    rejected = torch.where((x[:, :1] < y[:, :1]), y, x)
    vector = fitted.infer_user(pairs(chosen.tolist(), rejected.tolist()))
    assert vector.n_pairs == 16 and vector.extra["routing"][1] > 0.8
    assert all(torch.equal(before[k], v) for k, v in fitted.network_.state_dict().items())
    proba = fitted.prefer_proba(None, chosen, rejected, vector)
    assert proba.mean() > 0.7 > fitted.prefer_proba(None, chosen, rejected).mean()


def test_head_specialization_reports_correlations(fitted):
    fitted = copy.deepcopy(fitted)
    planted(fitted.network_, [[1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0]])
    g = torch.Generator().manual_seed(1)
    rows = []
    for _ in range(30):
        a, b = torch.randn(4, generator=g).tolist(), torch.randn(4, generator=g).tolist()
        rows.append({"chosen_embedding": a, "rejected_embedding": b,
                     "chosen_attributes": {"x": a[0], "y": a[1]}, "rejected_attributes": {"x": b[0], "y": b[1]}})
    report = fitted.head_specialization(rows)
    assert report["attributes"] == ["x", "y"] and report["best_head"] == {"x": 0, "y": 1}
    assert report["correlation"][0][0] == pytest.approx(1.0, abs=1e-5)
    assert report["correlation"][1][1] == pytest.approx(-1.0, abs=1e-5)


def test_config_errors_are_readable():
    with pytest.raises(ConfigError, match=r"micro: n_heads=0 must be at least 1"):
        MiCRo(n_heads=0)
    with pytest.raises(ConfigError, match="balance_weight"):
        MiCRo(balance_weight=-1)


def test_pooled_identifiability_script(tmp_path, benchmark_script):
    """The script that bounds MiCRo on `attributes` runs; with the true features the generator's mixture
    explains the pooled labels better than one BT reward, but only by a few thousandths of a nat a pair."""
    module = benchmark_script("pooled_identifiability")
    record = module.main(["--seeds", "0", "--contexts", "random", "--restarts", "1", "--epochs", "1",
                          "--out", str(tmp_path / "out.json")])
    run = record["runs"][0]
    assert 0 < run["nll_bt"] - run["nll_true_mixture"] < 0.02
    assert len(run["fitted_components"]) == 4 and sum(run["fitted_weights"]) == pytest.approx(1, abs=1e-2)
    assert 0.5 < run["micro_random"]["seen"][0] <= 1 and (tmp_path / "out.json").exists()


def test_routing_reads_the_prompt_by_hand():
    """π(x) = softmax(W x + b): router logits ±ln3/2 give π = (.75, .25); heads r₁(y) = y₀ and r₂(y) = 2·y₁."""
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    net = RoutedMixtureNetwork(1, 2, 2, [])
    with torch.no_grad():
        for head, weight in zip(net.heads, ([0.0, 1.0, 0.0], [0.0, 0.0, 2.0])):
            head.head[-1].weight.copy_(torch.tensor([weight]))
            head.head[-1].bias.zero_()
        net.router_weight.copy_(torch.tensor([[1.0], [-1.0]]))
    x = torch.tensor([[math.log(3.0) / 2]])
    logit = net.logits(x, torch.tensor([[1.0, 1.0]]), torch.tensor([[0.0, 2.0]]), torch.zeros(1, 2))
    assert torch.sigmoid(logit).item() == pytest.approx(0.75 * sigmoid(1.0) + 0.25 * sigmoid(-2.0), rel=1e-5)
    # the routed reward Σ_k π_k r_k of y = (1, 1): .75 · 1 + .25 · 2
    assert net.reward(x, torch.tensor([[1.0, 1.0]]), torch.zeros(1, 2)).item() == pytest.approx(1.25)
