import json

import pytest
import torch

from conftest import two_group_rows
from pluralign.data import PreferenceSet
from pluralign.eval import evaluate
from pluralign.methods import BradleyTerry, ConfigError, PreferenceModel


def embeddings(rows, column):
    return torch.tensor([r[column] for r in rows])


@pytest.fixture(scope="module")
def fitted():
    train, test = two_group_rows(n_users=3, pairs=120)
    majority_only = [r for r in train if r["group"] == "a"]
    model = BradleyTerry(epochs=15, lr=3e-3, hidden=[32]).fit(majority_only, progress=False)
    return model, train, test


def test_learns_the_majority_direction(fitted):
    model, _, test = fitted
    report = evaluate(model, PreferenceSet.from_rows(test))
    assert report["groups"]["a"]["accuracy"] > 0.8
    assert report["groups"]["b"]["accuracy"] < 0.3  # one reward averages the minority away
    assert report["fit"]["pairs_per_second"] > 0
    assert report["fit"]["peak_memory_mb"] > 0


def test_prefer_proba_is_the_reward_difference(fitted):
    model, train, _ = fitted
    a, b = embeddings(train[:8], "chosen_embedding"), embeddings(train[:8], "rejected_embedding")
    expected = torch.sigmoid(model.score(None, a) - model.score(None, b))
    assert torch.allclose(model.prefer_proba(None, a, b), expected, atol=1e-6)
    assert torch.allclose(model.prefer_proba(None, a, b) + model.prefer_proba(None, b, a), torch.ones(8), atol=1e-6)


def test_save_load_round_trip(fitted, tmp_path):
    model, train, _ = fitted
    model.save_pretrained(tmp_path)
    loaded = PreferenceModel.from_pretrained(tmp_path)
    assert isinstance(loaded, BradleyTerry) and loaded.hidden == [32]
    environment = json.loads((tmp_path / "config.json").read_text())["environment"]  # what produced the weights
    assert environment["pluralign"] and environment["libraries"]["lightning"]
    a, b = embeddings(train[:8], "chosen_embedding"), embeddings(train[:8], "rejected_embedding")
    assert torch.equal(model.prefer_proba(None, a, b), loaded.prefer_proba(None, a, b))
    with pytest.raises(ValueError, match="not a"):
        class Other(BradleyTerry):
            name = "other"

        Other.from_pretrained(tmp_path)


def test_bt_has_no_user_vector(fitted):
    model, train, _ = fitted
    vector = model.infer_user(train[:4])
    assert vector.mean.shape == (0,) and vector.n_pairs == 0  # the 4 pairs changed nothing, and it says so


def test_a_user_id_gets_the_one_reward_and_a_number_is_no_user(fitted):
    model, train, _ = fitted
    a, b = embeddings(train[:8], "chosen_embedding"), embeddings(train[:8], "rejected_embedding")
    # BT ignores user ids in training, so any id (seen or not) is scored by the pooled reward, as eval does
    assert torch.equal(model.prefer_proba(None, a, b, user="u000"), model.prefer_proba(None, a, b))
    with pytest.raises(TypeError, match=r"bt: user=float must be a user id, a UserVector or a few labelled pairs"):
        model.prefer_proba(None, a, b, user=3.5)


def test_config_errors_are_readable():
    with pytest.raises(ConfigError, match=r"bt: epochs=0 must be at least 1"):
        BradleyTerry(epochs=0)
    with pytest.raises(ConfigError, match="dropout"):
        BradleyTerry(dropout=1.5)


def test_predict_before_fit_is_a_clear_error():
    with pytest.raises(RuntimeError, match="call fit"):
        BradleyTerry().prefer_proba(None, torch.zeros(1, 2), torch.ones(1, 2))
