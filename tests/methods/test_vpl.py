"""VPL: ELBO and KL schedule against hand-computed values, amortized few-shot, active queries, save/load."""

import copy
import json
import math

import pyro
import pytest
import torch

from conftest import two_group_rows
from pluralign.data import DataError, PreferenceSet
from pluralign.data.features import PairFeatures
from pluralign.eval import evaluate
from pluralign.methods import METHODS, ConfigError, PreferenceModel
from pluralign.methods.vpl import VPL, VPLNetwork, kl_weight_at
from pluralign.methods.vpl.estimator import kl_to_prior, training_user_readout
from pluralign.methods.vpl.model import ELBOObjective

FAST = dict(epochs=25, lr=1e-2, latent_dim=4, hidden=[32], encoder_hidden=[32], encoder_width=32, kl_cycle=5,
            context_max=8)


def test_kl_schedule_by_hand():
    # cycle 10, ramp over the first half, baseline 0.1: 0.1 + 0.9 · (1 − cos(π · position)) / 2
    assert kl_weight_at(0, 1.0, 10) == pytest.approx(0.1)
    assert kl_weight_at(1, 1.0, 10) == pytest.approx(0.1 + 0.9 * (1 - math.cos(0.2 * math.pi)) / 2)  # 0.18594
    assert kl_weight_at(5, 1.0, 10) == pytest.approx(1.0)
    assert kl_weight_at(7, 1.0, 10) == pytest.approx(1.0)
    assert kl_weight_at(10, 1.0, 10) == pytest.approx(0.1)  # cyclical: restarts
    assert kl_weight_at(5, 0.5, 10, ramp=1.0, baseline=0.0) == pytest.approx(0.25)  # the reference's shape
    assert [kl_weight_at(e, 0.5, 1) for e in range(3)] == [0.5, 0.5, 0.5]  # one-epoch cycles: no annealing
    assert kl_weight_at(1, 1.0, 2) == pytest.approx(1.0)  # the shortest cycle that ramps: baseline, then full


def test_kl_to_prior_by_hand():
    assert kl_to_prior(torch.tensor(1.0), torch.tensor(0.0)).item() == pytest.approx(0.5)
    assert kl_to_prior(torch.tensor(0.0), torch.tensor(math.log(2))).item() == pytest.approx(0.5 * (1 - math.log(2)))


def _tiny_objective(n_users: int, encoder_bias: float, per_pair: bool = False) -> tuple[ELBOObjective, dict]:
    """Decoder logit = chosen[0] − rejected[0] whatever z is; encoder q = N(encoder_bias, I)."""
    net = VPLNetwork(0, 2, n_users, latent_dim=2, hidden=(), encoder_hidden=(4,), encoder_width=4)
    with torch.no_grad():
        net.decoder[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
        net.decoder[0].bias.zero_()
        for head, bias in ((net.encoder.mean, encoder_bias), (net.encoder.log_var, 0.0)):
            head.weight.zero_()
            head.bias.fill_(bias)
    users = torch.arange(n_users).repeat_interleave(2)
    chosen = torch.tensor([[2.0, 0.0], [-1.0, 0.0]]).repeat(n_users, 1)
    features = PairFeatures(torch.zeros(2 * n_users, 0), chosen, torch.zeros_like(chosen), users)
    objective = ELBOObjective(net, features, kl_weight=1.0, kl_cycle=1, kl_ramp=1.0, kl_baseline=1.0,
                              context_min=1, context_max=1, context_per_pair=per_pair)
    return objective, {**features.as_batch(), "row": torch.arange(2 * n_users)}


def test_elbo_by_hand():
    nll = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(1.0))) / 2  # logits 2 and −1
    objective, batch = _tiny_objective(1, encoder_bias=0.0)  # q = prior: log q(z) − log p(z) = 0 exactly
    assert objective(batch)["loss"].item() == pytest.approx(nll, rel=1e-5)
    # q = N(1, I): KL = ½ per dimension, 1 nat for L = 2; per query pair (2 per user) that is ½; Trace_ELBO
    # estimates it by sampling, so average over many users
    objective, batch = _tiny_objective(2000, encoder_bias=1.0)
    torch.manual_seed(0)
    assert objective(batch)["loss"].item() == pytest.approx(nll + 0.5, abs=0.05)
    assert len(pyro.get_param_store()) == 0  # module-local: nothing in Pyro's global store


def test_the_logged_accuracy_reads_this_steps_posterior_means():
    """The step's accuracy is the decoder's on the batch at the means q(z | C) of the contexts the ELBO drew (read
    from the guide, no second encoder pass): checked against the encoder run again on the contexts it was given."""
    torch.manual_seed(0)
    net = VPLNetwork(0, 2, 3, latent_dim=2, hidden=(8,), encoder_hidden=(4,), encoder_width=4)
    users = torch.arange(3).repeat_interleave(10)
    features = PairFeatures(torch.zeros(30, 0), torch.randn(30, 2), torch.randn(30, 2), users)
    objective = ELBOObjective(net, features, kl_weight=1.0, kl_cycle=1, kl_ramp=1.0, kl_baseline=1.0,
                              context_min=3, context_max=3, context_per_pair=False)
    rows = torch.tensor([0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23])
    contexts, draw = [], objective.guide.z_dist
    objective.guide.z_dist = lambda context: contexts.append(context) or draw(context)
    logged = objective({**features[rows].as_batch(), "row": rows})["accuracy"]
    with torch.no_grad():
        (context,) = contexts
        mean, _ = net.encode(context["prompt"], context["chosen"], context["rejected"], context["mask"])
        queries = features[rows]
        logits = net.logits(queries.prompt, queries.chosen, queries.rejected, mean[users[rows]])
    assert logged.item() == ((logits > 0).float().mean()).item()
    at_zero = net.logits(queries.prompt, queries.chosen, queries.rejected, torch.zeros(12, 2))
    assert logged.item() != ((at_zero > 0).float().mean()).item()  # the means matter here


def test_elbo_by_hand_one_context_per_pair():
    nll = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(1.0))) / 2
    objective, batch = _tiny_objective(1, encoder_bias=0.0, per_pair=True)
    assert objective(batch)["loss"].item() == pytest.approx(nll, rel=1e-5)
    # one z per query pair: KL(N(1, I) ‖ N(0, I)) = 1 nat for L = 2 on *every* query pair
    objective, batch = _tiny_objective(2000, encoder_bias=1.0, per_pair=True)
    torch.manual_seed(0)
    assert objective(batch)["loss"].item() == pytest.approx(nll + 1.0, abs=0.05)


def test_per_pair_contexts_are_the_users_other_pairs():
    from pluralign.methods.vpl.model import ContextSampler

    users = torch.tensor([0, 0, 0, 1, 1, 2, 0, 1])  # user 2 has a single pair: an empty context, the prior
    features = PairFeatures(torch.zeros(8, 0), torch.arange(8.0).unsqueeze(1), torch.zeros(8, 1), users)
    sampler = ContextSampler(features, min_size=1, max_size=3)
    torch.manual_seed(0)
    for _ in range(20):
        rows = torch.arange(8)
        context = sampler.per_pair(rows)
        for row in rows.tolist():
            picked = context["chosen"][row, context["mask"][row], 0].long().tolist()
            assert len(picked) in ((0,) if row == 5 else (1, 2, 3)) and len(set(picked)) == len(picked)
            assert all(users[p] == users[row] for p in picked) and row not in picked


def test_basis_decoder_by_hand():
    # R(x, y) = W [x, y] + b with L + 1 = 3 outputs; r = R_0 z_0 + R_1 z_1 + R_2 (linear in z)
    net = VPLNetwork(1, 1, 0, latent_dim=2, hidden=(), decoder="basis")
    with torch.no_grad():
        net.decoder[0].weight.copy_(torch.tensor([[1.0, 2.0], [0.0, -1.0], [3.0, 0.0]]))
        net.decoder[0].bias.copy_(torch.tensor([0.5, 0.0, -1.0]))
    prompt, response, z = torch.tensor([[1.0]]), torch.tensor([[2.0]]), torch.tensor([[2.0, -1.0]])
    # R = (1 + 4 + 0.5, −2, 3 − 1) = (5.5, −2, 2): r = 5.5·2 + (−2)(−1) + 2 = 15
    assert net.reward(prompt, response, z).item() == pytest.approx(15.0)
    # the BT logit of two responses is the z-weighted difference of their basis rewards: y = 2 vs y = 0
    # R(1, 0) = (1.5, 0, 2): logit = (5.5 − 1.5)·2 + (−2 − 0)(−1) + 0 = 10
    assert net.logits(prompt, response, torch.tensor([[0.0]]), z).item() == pytest.approx(10.0)


def test_config_is_validated():
    with pytest.raises(ConfigError, match="vpl: context_max=1"):
        VPL(context_min=2, context_max=1)
    with pytest.raises(ConfigError, match="vpl: decoder='mlp'"):
        VPL(decoder="mlp")
    assert METHODS["vpl"] is VPL


def test_rows_without_users_are_refused_in_one_line(data):
    pooled = [{k: v for k, v in r.items() if k != "user_id"} for r in data[0][:20]]
    with pytest.raises(DataError, match="vpl: .*no row has a user_id"):
        VPL(epochs=1).fit(pooled, progress=False)


@pytest.fixture(scope="module")
def data():
    return two_group_rows(n_users=6, pairs=48)


@pytest.fixture(scope="module")
def fitted(data):
    return VPL(**FAST).fit(data[0], progress=False)


def test_learns_both_groups_and_adapts(fitted, data):
    report = evaluate(fitted, PreferenceSet.from_rows(data[1]), shots=(0, 8))
    assert report["worst_group"]["accuracy"] > 0.75
    assert report["unseen"]["8"]["accuracy"] > report["unseen"]["0"]["accuracy"] + 0.1


def test_collapse_diagnostic(fitted, data):
    stats = fitted.fit_stats_["collapse"]
    assert stats["latent_dim"] == 4 and len(stats["kl_per_dim"]) == 4
    assert stats["active_units_variance"] >= 1 and not stats["collapsed"]  # two opposed groups need z
    again = fitted.collapse_diagnostic(data[0])
    assert again["kl_per_dim"] == stats["kl_per_dim"]
    assert stats["decoder_spread"] > 0.1 and not stats["decoder_ignores_z"]  # the groups' z flip predictions
    deaf = copy.deepcopy(fitted)  # a decoder whose weights on z are 0 reads none of it, whatever the KL
    with torch.no_grad():
        deaf.network_.decoder[0].weight[:, -deaf.latent_dim:] = 0
    blind = deaf.collapse_diagnostic(data[0])
    assert blind["kl_total"] == again["kl_total"] and not blind["collapsed"]
    assert blind["decoder_spread"] == 0 and blind["decoder_ignores_z"]


def test_a_latent_the_decoder_ignores_is_warned_of_at_fit(data, caplog):
    """One group of users: z tells nothing, the users' predictions do not differ, and the fit says so (the
    two-group fit, whose z flips predictions, says nothing)."""
    one_group = [r for r in data[0] if r["group"] == "a"]
    with caplog.at_level("WARNING", logger="pluralign"):
        model = VPL(**FAST).fit(one_group, progress=False)
    assert model.fit_stats_["collapse"]["decoder_ignores_z"]
    assert "vpl: the latent is ignored by the decoder: " in caplog.text
    assert "few-shot users will get about the population's predictions" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="pluralign"):
        VPL(**FAST).fit(data[0], progress=False)  # the fixture's fit
    assert "the latent" not in caplog.text


def test_a_fit_that_diverges_inside_pyro_is_one_line_and_leaves_no_checkpoint(data, tmp_path):
    """lr=1e6: Pyro's distributions get NaN parameters; its ValueError was 34 lines of tensors and trace shapes, and
    the diverged model's checkpoint stayed for a --resume."""
    from pluralign.methods.base import TrainingDiverged

    with pytest.raises(TrainingDiverged, match=r"^vpl: training diverged: the loc of a distribution in the ELBO became "
                                               r"NaN or inf during training; lower lr=1000000.0$"):
        VPL(**{**FAST, "epochs": 3, "lr": 1e6}).fit(data[0][:80], out_dir=str(tmp_path), progress=False)
    assert not list(tmp_path.rglob("*.ckpt"))


def test_infer_user_is_one_encoder_pass(fitted, data):
    context = [r for r in data[1] if r.get("role") == "context"][:6]
    before = {k: v.clone() for k, v in fitted.network_.state_dict().items()}
    for p in fitted.network_.parameters():
        p.grad = None  # training leaves gradients behind; a gradient step would leave new ones
    first, second = fitted.infer_user(context), fitted.infer_user(context)
    assert torch.equal(first.mean, second.mean) and torch.equal(first.variance, second.variance)
    # the encoder's σ²(C) is positive; the readout's spread over the known latents may round to 0 in a unit
    assert (torch.tensor(first.extra["posterior_variance"]) > 0).all() and (first.variance >= 0).all()
    assert first.mean.shape == (4,)
    assert all(torch.equal(before[k], v) for k, v in fitted.network_.state_dict().items())
    assert all(p.grad is None for p in fitted.network_.parameters())


def test_infer_user_lands_near_the_learned_vector(fitted, data):
    learned = fitted.network_.user_means
    for user in ("u0", "u1"):  # u0 in the minority group b, u1 in the majority a
        inferred = fitted.infer_user([r for r in data[0] if r["user_id"] == user][:16]).mean
        distance = (learned - inferred).norm(dim=-1)
        same = [i for i in range(6) if (i % 3 == 0) == (user == "u0")]
        other = [i for i in range(6) if i not in same]
        assert distance[same].max() < distance[other].min()


def test_save_load_round_trip(fitted, data, tmp_path):
    test = data[1]
    a, b = (torch.tensor([r[c] for r in test]) for c in ("chosen_embedding", "rejected_embedding"))
    fitted.save_pretrained(tmp_path)
    loaded = PreferenceModel.from_pretrained(tmp_path)
    assert loaded.fit_stats_["collapse"] == fitted.fit_stats_["collapse"]
    context = [r for r in test if r.get("role") == "context"][:4]
    for user in ("u0", "u4", None, context):
        assert torch.equal(fitted.prefer_proba(None, a, b, user), loaded.prefer_proba(None, a, b, user))


def test_basis_decoder_learns_adapts_and_round_trips(data, tmp_path):
    model = VPL(**{**FAST, "hidden": []}, decoder="basis").fit(data[0], progress=False)
    report = evaluate(model, PreferenceSet.from_rows(data[1]), shots=(0, 8))
    assert report["worst_group"]["accuracy"] > 0.75
    assert report["unseen"]["8"]["accuracy"] > report["unseen"]["0"]["accuracy"] + 0.1
    model.save_pretrained(tmp_path)
    loaded = PreferenceModel.from_pretrained(tmp_path)
    assert loaded.decoder == "basis"
    a, b = (torch.tensor([r[c] for r in data[1]]) for c in ("chosen_embedding", "rejected_embedding"))
    assert torch.equal(model.prefer_proba(None, a, b, "u0"), loaded.prefer_proba(None, a, b, "u0"))


def test_training_user_readout_by_hand():
    users = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    mean, log_var = torch.tensor([0.5, 0.0]), torch.log(torch.tensor([1.0, 4.0]))
    # log q(z_u) up to a constant: −½((0.5)²/1) = −0.125 and −½((1.5)²/1) = −1.125; w = softmax(−0.125, −1.125)
    w1 = 1 / (1 + math.exp(1.0))  # the weight of the user at (2, 0)
    expected = torch.tensor([2.0 * w1, 0.0])
    point, spread = training_user_readout(users, mean, log_var)
    assert torch.allclose(point, expected)
    # its variance: w0 (0 − 2 w1)² + w1 (2 − 2 w1)² = 4 w1 (1 − w1) on the first unit, 0 on the second
    assert torch.allclose(spread, torch.tensor([4 * w1 * (1 - w1), 0.0]))
    # the distances are scaled by the variance, not the sd: variance 4 on the first axis, −½(2.25 − 0.25)/4 apart
    wide = torch.log(torch.tensor([4.0, 1.0]))
    w1 = 1 / (1 + math.exp(0.25))
    assert torch.allclose(training_user_readout(users, mean, wide)[0], torch.tensor([2.0 * w1, 0.0]), atol=1e-6)


def test_training_users_readout_adapts_among_the_known_latents(fitted, data, tmp_path):
    model = copy.deepcopy(fitted)  # the readout changes prediction only: the fitted network serves as it is
    model.readout = "training-users"
    context = [r for r in data[1] if r.get("role") == "context"][:8]
    vector = model.infer_user(context)
    encoded = model.infer_user(context)  # the encoder's own posterior stays in the vector
    means = model.network_.user_means
    expected, spread = training_user_readout(means, torch.tensor(vector.extra["posterior_mean"]),
                                             torch.tensor(vector.extra["posterior_variance"]).log())
    assert torch.allclose(vector.mean, expected) and torch.equal(vector.mean, encoded.mean)
    assert torch.allclose(vector.variance, spread)  # the readout's own variance, not σ²(C) of the encoder's mean
    report = evaluate(model, PreferenceSet.from_rows(data[1]), shots=(0, 8))
    assert report["unseen"]["8"]["accuracy"] > report["unseen"]["0"]["accuracy"] + 0.1
    model.save_pretrained(tmp_path)
    loaded = PreferenceModel.from_pretrained(tmp_path)
    assert loaded.readout == "training-users" and torch.equal(loaded.infer_user(context).mean, vector.mean)
    with pytest.raises(ConfigError, match="vpl: readout='nearest'"):
        VPL(readout="nearest")


def test_active_query_prefers_the_informative_pair(fitted):
    # the groups disagree on the first feature; identical responses tell nothing, nor does a pair that
    # differs only on a feature nobody cares about
    chosen = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.5], [1.5, 0.0, 0.0, 0.0]])
    rejected = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, -1.5], [-1.5, 0.0, 0.0, 0.0]])
    pool = PairFeatures(torch.zeros(3, 0), chosen, rejected, torch.full((3,), -1))
    assert fitted.next_query(pool) == 2
    assert fitted.select_queries(pool, 3)[0] == 2
    swapped = PairFeatures(pool.prompt, rejected, chosen, pool.user)
    assert fitted.next_query(swapped) == 2  # the pair's stored orientation (maybe its label) does not matter
    # once the context pins the user down, the disagreement pair is worth less than before
    context = [{"chosen_embedding": [1.5, 0.0, 0.0, 0.0], "rejected_embedding": [-1.5, 0.0, 0.0, 0.0]}] * 8
    from pluralign.methods.active import expected_information_gain

    prior_gain = expected_information_gain(fitted, pool)
    posterior_gain = expected_information_gain(fitted, pool, fitted.featurize(PreferenceSet.from_rows(context)))
    assert posterior_gain[2] < prior_gain[2]


def test_elbo_weighs_the_kl_by_beta():
    # q = N(1, I): KL ½ per query pair, weighted by β = ¼
    nll = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(1.0))) / 2
    objective, batch = _tiny_objective(2000, encoder_bias=1.0)
    objective.beta = 0.25
    torch.manual_seed(0)
    assert objective(batch)["loss"].item() == pytest.approx(nll + 0.25 * 0.5, abs=0.03)


def test_the_kl_schedule_reaches_training(monkeypatch):
    """β per epoch as kl_weight_at gives it (cycle 3, the reference's ramp from 0): 0, ¼, ¾."""
    seen = []
    forward = ELBOObjective.forward

    def spy(self, batch):
        seen.append(round(self.beta, 6))
        return forward(self, batch)

    monkeypatch.setattr(ELBOObjective, "forward", spy)
    train, _ = two_group_rows(n_users=3, pairs=10)
    VPL(epochs=3, kl_weight=1.0, kl_cycle=3, kl_ramp=1.0, kl_baseline=0.0, latent_dim=2, hidden=[4],
        encoder_hidden=[4], encoder_width=4, batch_size=1000).fit(train, progress=False)
    assert seen == [0.0, 0.25, 0.75]


def test_active_samples_are_draws_of_the_encoders_gaussian(fitted, data):
    from pluralign.methods.vpl.active import posterior_samples

    context = fitted.featurize(PreferenceSet.from_rows([r for r in data[1] if r.get("role") == "context"][:4]))
    with torch.no_grad():
        mean, log_var = fitted.network_.encode(context.prompt, context.chosen, context.rejected)
    z = posterior_samples(fitted, context, 20000)
    assert torch.allclose(z.mean(0), mean, atol=0.05)
    assert torch.allclose(z.std(0), (0.5 * log_var).exp(), rtol=0.03)


def test_mean_readout_is_the_encoders_posterior_mean(fitted, data, tmp_path) -> None:
    """``readout="mean"`` (the paper's): a new user is μ(C) itself, the point the training-users readout keeps in
    ``extra["posterior_mean"]``; a run saved before ``readout`` existed loads with it."""
    context = [r for r in data[1] if r.get("role") == "context"][:8]
    ours = copy.deepcopy(fitted)
    ours.readout = "training-users"
    papers = copy.deepcopy(fitted)
    papers.readout = "mean"
    weighted, encoded = ours.infer_user(context), papers.infer_user(context)
    assert encoded.mean.tolist() == weighted.extra["posterior_mean"] and not encoded.extra
    assert encoded.variance.tolist() == weighted.extra["posterior_variance"]
    assert not torch.allclose(encoded.mean, weighted.mean) and not torch.allclose(encoded.variance, weighted.variance)
    ours.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["config"]["readout"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    old = PreferenceModel.from_pretrained(tmp_path)
    assert old.readout == "mean" and torch.equal(old.infer_user(context).mean, encoded.mean)


def test_pairs_without_a_user_are_left_out_of_training(data, caplog) -> None:
    """VPL's context is a user's own pairs: rows without a user_id cannot have one. They are left out, with a
    warning that counts them, and the fit is the fit of the other rows."""
    config = dict(FAST, epochs=2)
    anonymous = [{k: v for k, v in r.items() if k != "user_id"} for r in data[0][:5]]
    with caplog.at_level("WARNING", logger="pluralign"):
        mixed = VPL(**config).fit(anonymous + data[0], progress=False)
    assert "vpl: 5 pairs without a user_id left out of training" in caplog.text
    alone = VPL(**config).fit(data[0], progress=False)
    assert mixed.fit_stats_["n_pairs"] == alone.fit_stats_["n_pairs"] == len(data[0])
    assert all(torch.equal(a, b) for a, b in zip(mixed.network_.state_dict().values(),
                                                  alone.network_.state_dict().values()))


def test_users_of_many_pairs_are_encoded_in_chunks(monkeypatch) -> None:
    """The known users' posteriors were one padded batch of every user's every pair: attention scores of
    users × pairs², gigabytes for a few users of thousands of pairs (UltraFeedback-P, PersonalLLM). Sets up to
    ENCODE_PAIRS give one pass's posterior whatever the batching; a longer set is the average over its chunks."""
    import pluralign.methods.vpl.model as model

    torch.manual_seed(0)
    network = VPLNetwork(0, 6, 3, latent_dim=4).eval()
    features = PairFeatures(torch.zeros(90, 0), torch.randn(90, 6), torch.randn(90, 6), torch.arange(90) % 3)
    sets = [torch.nonzero(features.user == u).flatten() for u in range(3)]
    context = model.pad_contexts(features, sets)
    one_pass = network.encode(context["prompt"], context["chosen"], context["rejected"], context["mask"])
    seen = []
    encode = network.encode
    monkeypatch.setattr(network, "encode", lambda *a: seen.append(tuple(a[3].shape)) or encode(*a))
    monkeypatch.setattr(model, "ENCODE_CELLS", 2 * 30 ** 2)  # two sets of 30 pairs a batch
    mean, log_var = model.encode_sets(network, features, sets)
    assert seen == [(2, 30), (1, 30)]
    assert torch.allclose(mean, one_pass[0], atol=1e-6) and torch.allclose(log_var, one_pass[1], atol=1e-6)
    seen.clear()
    monkeypatch.setattr(model, "ENCODE_PAIRS", 12)  # 30 pairs: chunks of 10
    mean, log_var = model.encode_sets(network, features, sets)
    assert seen == [(9, 10)]  # nine chunks of 10 fit one batch
    first = [encode(features.prompt[c], features.chosen[c], features.rejected[c]) for c in sets[0].split(10)]
    assert torch.allclose(mean[0], torch.stack([m for m, _ in first]).mean(0), atol=1e-6)
    assert torch.allclose(log_var[0], torch.stack([v for _, v in first]).mean(0), atol=1e-6)
    # narrow sets are bounded by their gathered inputs (sets × pairs × 12 floats here), not their scores alone
    seen.clear()
    monkeypatch.setattr(model, "ENCODE_CELLS", 4 * 10 * 12)
    model.encode_sets(network, features, sets)
    assert seen == [(4, 10), (4, 10), (1, 10)]  # 10² × 9 would have fit one batch
    # an empty set is the prior, not tensor_split's "number of sections must be larger than 0"
    mean, log_var = model.encode_sets(network, features, [torch.arange(0), sets[1]])
    assert torch.equal(mean[0], torch.zeros(4)) and torch.equal(log_var[0], torch.zeros(4))
