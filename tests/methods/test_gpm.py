import math
import random

import pytest
import torch

from pluralign.data import PreferenceSet
from pluralign.data.features import PairFeatures
from pluralign.methods import GPM, BradleyTerry, ConfigError, PreferenceModel
from pluralign.methods.gpm import PreferenceEmbeddingNetwork, complementary_sigmoid, skew_score
from pluralign.methods.network import PreferenceObjective


def plane_rows(seed: int = 0, users: int = 4, pairs: int = 60) -> list[dict]:
    """Cyclic preferences: users u0, u2 read the skew score on plane (0, 1), users u1, u3 on plane (2, 3)."""
    rng = random.Random(seed)
    rows = []
    for u in range(users):
        plane = 2 * (u % 2)
        for _ in range(pairs):
            a, b = [rng.gauss(0, 1) for _ in range(4)], [rng.gauss(0, 1) for _ in range(4)]
            s = a[plane + 1] * b[plane] - a[plane] * b[plane + 1]
            p = 1 / (1 + math.exp(-4 * s))
            if rng.random() > p:
                a, b = b, a
            rows.append({"chosen_embedding": a, "rejected_embedding": b, "user_id": f"u{u}"})
    return rows


def triangle_rows(reps: int = 20) -> list[dict]:
    """Rock ≻ scissors ≻ paper ≻ rock, always: no scalar reward orders more than 2 of the 3 pairs."""
    items = [[math.cos(t), math.sin(t)] for t in (0, 2 * math.pi / 3, 4 * math.pi / 3)]
    cycle = [(items[1], items[0]), (items[2], items[1]), (items[0], items[2])]
    return [{"chosen_embedding": c, "rejected_embedding": r} for _ in range(reps) for c, r in cycle]


@pytest.fixture(scope="module")
def fitted():
    return GPM(n_blocks=2, epochs=30, lr=5e-2, batch_size=32, seed=0, adapt_steps=80, adapt_lr=0.2).fit(
        plane_rows(users=2, pairs=150), progress=False)


def test_skew_score_by_hand():
    a, b = torch.tensor([[1.0, 2.0, 0.0, 1.0]]), torch.tensor([[3.0, 4.0, 2.0, 0.0]])
    # block 1: a₂b₁ − a₁b₂ = 2·3 − 1·4 = 2; block 2: 1·2 − 0·0 = 2; λ = (0.5, 1.5) → 0.5·2 + 1.5·2 = 4
    assert skew_score(a, b, torch.tensor([[0.5, 1.5]])).item() == 4.0
    R = torch.tensor([[0, -0.5, 0, 0], [0.5, 0, 0, 0], [0, 0, 0, -1.5], [0, 0, 1.5, 0]])
    assert skew_score(a, b, torch.tensor([[0.5, 1.5]])).item() == (a @ R @ b.T).item()  # v_cᵀ R v_r


def test_loss_by_hand():
    net = PreferenceEmbeddingNetwork(0, 2, 1, [], tau=0.5, normalize=False, prompt_gate=False, n_users=0)
    with torch.no_grad():
        net.embed[-1].weight.copy_(torch.eye(2))
        net.embed[-1].bias.zero_()
    batch = PairFeatures(torch.zeros(1, 0), torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0]]),
                         torch.tensor([-1])).as_batch()
    loss = PreferenceObjective(net)(batch)["loss"]  # s = 2, logit = 2 / 0.5 = 4, loss = −log σ(4)
    assert math.isclose(loss.item(), math.log1p(math.exp(-4.0)), rel_tol=1e-6)  # 0.018150


def test_skew_symmetry_is_exact(fitted):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(200, 4, generator=g), torch.randn(200, 4, generator=g)
    for user in (None, "u1", fitted.infer_user(plane_rows(seed=5, users=1, pairs=6))):
        ab, ba = fitted.prefer_proba(None, a, b, user), fitted.prefer_proba(None, b, a, user)
        assert torch.equal(ab + ba, torch.ones(200))
        assert torch.equal(fitted.prefer_proba(None, a, a, user), torch.full((200,), 0.5))


def test_skew_symmetry_with_prompt_gate():
    net = PreferenceEmbeddingNetwork(3, 4, 3, [8], tau=0.1, normalize=True, prompt_gate=True, n_users=2)
    g = torch.Generator().manual_seed(1)
    x, a, b = torch.randn(50, 3, generator=g), torch.randn(50, 4, generator=g), torch.randn(50, 4, generator=g)
    users = net.known_users(torch.tensor([0, 1]).repeat(25))
    with torch.no_grad():
        ab, ba = net.logits(x, a, b, users), net.logits(x, b, a, users)
        assert torch.equal(ab, -ba) and torch.equal(net.logits(x, a, a, users), torch.zeros(50))
        assert torch.equal(complementary_sigmoid(ab) + complementary_sigmoid(ba), torch.ones(50))
        assert torch.allclose(net.eigenvalues(x, users).mean(-1), torch.ones(50))  # k · softmax: mean 1


def test_score_is_a_clear_error(fitted):
    with pytest.raises(NotImplementedError, match="GPM has no scalar reward.*prefer_proba"):
        fitted.score(None, torch.zeros(2, 4))
    with pytest.raises(NotImplementedError, match="no scalar reward"):
        fitted.network_.reward(torch.zeros(2, 0), torch.zeros(2, 4), torch.ones(2, 2) / 2)


def test_fits_a_cycle_bt_cannot():
    rows = triangle_rows()
    a = torch.tensor([r["chosen_embedding"] for r in rows[:3]])
    b = torch.tensor([r["rejected_embedding"] for r in rows[:3]])
    gpm = GPM(n_blocks=2, personalize=False, epochs=100, lr=5e-2).fit(rows, progress=False)
    bt = BradleyTerry(hidden=[], epochs=100, lr=5e-2).fit(rows, progress=False)
    assert (gpm.prefer_proba(None, a, b) > 0.5).all()
    assert (bt.prefer_proba(None, a, b) > 0.5).sum() <= 2


def test_save_load_round_trip(fitted, tmp_path):
    fitted.save_pretrained(tmp_path)
    loaded = PreferenceModel.from_pretrained(tmp_path)
    assert isinstance(loaded, GPM) and loaded.user_ids_ == fitted.user_ids_
    a, b = torch.randn(10, 4), torch.randn(10, 4)
    for user in (None, "u0"):
        assert torch.equal(fitted.prefer_proba(None, a, b, user), loaded.prefer_proba(None, a, b, user))


def test_infer_user_lands_near_the_learned_vector(fitted):
    rows = plane_rows(users=2, pairs=150)
    for u, other in (("u0", "u1"), ("u1", "u0")):
        inferred = fitted.infer_user([r for r in rows if r["user_id"] == u][:30]).mean
        own, theirs = fitted.known_user(u).mean, fitted.known_user(other).mean
        assert (inferred - own).norm() < (inferred - theirs).norm()


def test_training_users_rule_by_hand():
    """E[w | C] over the training users' own block weights, each weighted by the product of σ(logit) of the
    k pairs (computed here user by user); a user's own pairs land on that user; active queries read the same
    posterior."""
    rows = plane_rows(users=4, pairs=80)
    model = GPM(n_blocks=2, epochs=30, lr=5e-2, batch_size=32, seed=0, few_shot="training-users").fit(
        rows, progress=False)
    context = [r for r in rows if r["user_id"] == "u1"][:6]
    network, features = model.head_inputs(model.featurize(PreferenceSet.from_rows(context)))
    trained = torch.stack([model.known_user(u).mean for u in model.user_ids_])
    with torch.no_grad():
        log_likelihood = torch.stack([torch.nn.functional.logsigmoid(network.logits(
            features.prompt, features.chosen, features.rejected, w.expand(6, -1))).sum() for w in trained])
    inferred = model.infer_user(context).mean
    assert torch.allclose(inferred, torch.softmax(log_likelihood, 0) @ trained, atol=1e-5)
    own = model.infer_user([r for r in rows if r["user_id"] == "u2"][:30]).mean
    assert (own - model.known_user("u2").mean).norm() < (own - model.known_user("u1").mean).norm()
    assert model.next_query(context, context[:2]) in range(6)
    # k = 0 is the same rule given no pairs, the training users' mean weights, not the uniform ones
    assert torch.allclose(model.infer_user([]).mean, trained.mean(0), atol=1e-6)
    assert not torch.allclose(trained.mean(0), torch.full((2,), 0.5), atol=1e-3)
    assert torch.equal(GPM(n_blocks=2, epochs=1, seed=0).fit(rows, progress=False).infer_user(None).mean,
                       torch.full((2,), 0.5))  # the gradient fit's prior is centred on the uniform weights
    with pytest.raises(ConfigError, match="needs personalize=True"):
        GPM(personalize=False, few_shot="training-users")


def test_a_weight_that_underflowed_to_zero_leaves_finite_gradients():
    """A user's logits 110 apart give a weight of exactly 0 in float32: log(0)'s gradient made W_u NaN."""
    net = PreferenceEmbeddingNetwork(4, 2, 2, [], tau=1.0, normalize=False, prompt_gate=True, n_users=1)
    with torch.no_grad():
        net.known.logits.copy_(torch.tensor([[0.0, -110.0]]))
    users = net.known_users(torch.tensor([0]))
    assert users[0, 1].item() == 0.0
    net.logits(torch.randn(1, 4), torch.randn(1, 2), torch.randn(1, 2), users).sum().backward()
    assert all(bool(torch.isfinite(p.grad).all()) for p in net.parameters() if p.grad is not None)


def test_prompt_gate_eigenvalues_by_hand():
    """λ = k · softmax(log softmax(gate(x) / √d) + log w_u): gate(x)/√4 = (ln 3, 0), a uniform user: (1.5, 0.5)."""
    net = PreferenceEmbeddingNetwork(4, 2, 2, [], tau=1.0, normalize=False, prompt_gate=True, n_users=0)
    with torch.no_grad():
        net.gate.weight.copy_(torch.tensor([[2 * math.log(3.0), 0, 0, 0], [0, 0, 0, 0]]))
    eigenvalues = net.eigenvalues(torch.tensor([[1.0, 0, 0, 0]]), torch.tensor([[0.5, 0.5]]))
    assert torch.allclose(eigenvalues, torch.tensor([[1.5, 0.5]]))
