"""The shared estimator (``pluralign.methods.base``) and the checks of prediction inputs
(``pluralign.methods.inputs``) by hand, where mutation testing found the suite silent: the checks that rows
and tensors match the fit, a refit starting over, the feature center on every path, no autograd graph in
what prediction returns, and the messages that count things. Tiny inline rows, no backbone (a stand-in
encoder where text is needed)."""

from __future__ import annotations

import itertools
import math
import re
from types import SimpleNamespace

import pytest
import torch

from conftest import StandInEncoder
from pluralign.data import DataError, PreferenceSet
from pluralign.data.cache import EmbeddingCache
from pluralign.data.features import PairFeatures
from pluralign.io import write_jsonl
from pluralign.methods import METHODS, ConfigError, UserVector
from pluralign.methods.base import TrainingDiverged
from pluralign.methods.tuned import TunedNetwork


def pairs(chosen: list[list[float]], rejected: list[list[float]], **extra) -> list[dict]:
    """Embedding rows, one per (chosen, rejected); ``extra`` columns are the same on every row."""
    return [{"chosen_embedding": c, "rejected_embedding": r, **extra} for c, r in zip(chosen, rejected)]


def bt(rows: list[dict], **config):
    return METHODS["bt"](**{"epochs": 1, "hidden": [], **config}).fit(rows, progress=False)


ROWS = pairs([[1.0, 0.0], [0.0, 2.0]], [[0.0, 1.0], [2.0, 0.0]], user_id="u0")
TEXT = [{"prompt": "p", "chosen": "aa", "rejected": "b", "user_id": "u0"}]


def stand_in(model, tmp_path):
    """The model's backbone and cache as the stand-in encoder (a text's vector: its length, its first character's
    code) and an empty cache of its own."""
    model._encoder, model._cache = StandInEncoder(), EmbeddingCache(tmp_path / "cache")
    model._encoder_settings, model._cache_dir = (model.backbone, model.pooling, model.max_length), model.cache_dir
    return model


def test_text_rows_for_a_run_fitted_on_embeddings_are_refused_by_the_python_api(tmp_path) -> None:
    """Mutant: featurize skips check_rows_kind for a fitted model. Only the CLI checked the kind itself; through
    infer_user the text went to the backbone (here a stand-in of the fit's width 2, so no error at all)."""
    model = stand_in(bt(ROWS), tmp_path)
    with pytest.raises(DataError, match=r"^<rows>: the run \(bt\) was fitted on embedding features of width 2; "
                                        r"these rows are text"):
        model.infer_user(TEXT)


def test_prompt_embeddings_of_another_width_are_refused() -> None:
    """Mutant: check_widths compares the response width only. A fit on 1-wide prompt vectors met rows with 3-wide
    ones: BT's infer_user never runs the network, so nothing failed at all."""
    model = bt([{**r, "prompt_embedding": [1.0]} for r in ROWS])
    assert model.dims_ == (1, 2)
    wide = [{**r, "prompt_embedding": [1.0, 2.0, 3.0]} for r in ROWS]
    with pytest.raises(DataError, match=r"^<rows>: the run \(bt\) was fitted on prompt embedding features of width "
                                        r"1; these rows give width 3$"):
        model.infer_user(wide)


def test_finetune_layers_with_embedding_rows_is_refused_before_anything_loads() -> None:
    """Mutant: fit drops the check that finetune_layers needs text rows (it trained the head, then failed or
    loaded the backbone in fine-tuning)."""
    with pytest.raises(ConfigError, match=r"^bt: finetune_layers=1 needs text rows; <rows> hold precomputed "
                                          r"embeddings$"):
        METHODS["bt"](epochs=1, hidden=[], finetune_layers=1).fit(ROWS, progress=False)


class Reached(Exception):
    """Raised by a stubbed step: the fit got past its checks."""


def test_finetune_layers_may_be_every_layer_of_the_backbone(monkeypatch) -> None:
    """Mutant: finetune_layers <= layers became <. A backbone of 2 layers (stubbed config) takes
    finetune_layers=2 and the fit goes on to embed; 3 is refused."""
    model = METHODS["bt"](epochs=1, hidden=[], finetune_layers=2)
    monkeypatch.setattr(type(model), "backbone_layers", lambda self: 2)
    monkeypatch.setattr(type(model), "featurize", lambda self, *a, **k: (_ for _ in ()).throw(Reached()))
    with pytest.raises(Reached):
        model.fit(TEXT, progress=False)
    model.finetune_layers = 3
    with pytest.raises(ConfigError, match="finetune_layers=3 is more than the 2 transformer layers"):
        model.fit(TEXT, progress=False)


def test_a_refit_on_rows_of_another_width_starts_over() -> None:
    """Mutant: fit keeps the earlier network_. The refit's featurize then took itself for prediction and checked
    the new rows against the old fit's widths."""
    model = bt(ROWS)
    wider = pairs([[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    assert model.fit(wider, progress=False).dims_ == (0, 3)


def test_a_refit_computes_its_own_feature_center() -> None:
    """Mutant: fit keeps the earlier feature_center_. The refit's rows were centred by the old center before
    theirs was taken: rows 10 higher gave a center of (10, 10), not their mean (10.75, 10.75); a refit without
    center_features kept the old center."""
    model = bt(ROWS, center_features=True)
    assert model.feature_center_.response.tolist() == [0.75, 0.75]  # (1+0+0+2)/4, (0+2+1+0)/4
    higher = pairs([[x + 10 for x in r["chosen_embedding"]] for r in ROWS],
                   [[x + 10 for x in r["rejected_embedding"]] for r in ROWS])
    assert model.fit(higher, progress=False).feature_center_.response.tolist() == [10.75, 10.75]
    model.center_features = False
    assert model.fit(ROWS, progress=False).feature_center_ is None


def test_bt_keeps_no_user_ids() -> None:
    """Mutant: fit keeps the data's user ids whatever uses_user_ids says. BT trains on pooled pairs: it knows no
    user, and its fit counts none."""
    model = bt(pairs([[1.0], [2.0]], [[0.0], [0.0]], user_id="u0") + pairs([[1.0]], [[3.0]], user_id="u1"))
    assert model.user_ids_ == [] and model.fit_stats_["n_users"] == 0


def test_an_overflowing_step_leaves_no_half_fitted_model(monkeypatch) -> None:
    """Mutant: the overflow branch keeps network_. The built, untrained network then predicted as if fitted."""
    model = METHODS["bt"](epochs=1, hidden=[])

    def overflow(*args):
        raise RuntimeError("value cannot be converted to type float without overflow")

    monkeypatch.setattr(type(model), "fit_features", overflow)
    with pytest.raises(TrainingDiverged, match=r"^bt: the optimizer's step overflowed float32 .*; lower lr=0.001$"):
        model.fit(ROWS, progress=False)
    assert model.network_ is None
    with pytest.raises(RuntimeError, match="call fit"):
        model.prefer_proba(None, torch.zeros(1, 2), torch.zeros(1, 2))


@pytest.mark.parametrize("poison, message", [
    ({"head.0.weight": [[float("inf"), 0.0]]}, "head.0.weight holds NaN or inf after the fit; lower lr=0.001"),
    ({"head.0.weight": [[float("nan"), 0.0]], "head.0.bias": [float("-inf")]},
     "head.0.weight holds NaN or inf after the fit (2 weight tensors in all); lower lr=0.001"),
], ids=["one-inf", "two-tensors"])
def test_a_fit_whose_weights_are_not_finite_is_refused(monkeypatch, poison, message) -> None:
    """Mutants: the divergence check looks for all-NaN tensors only (one inf weight passed), and "(N weight
    tensors in all)" is added for a single tensor too. The stubbed training writes the weights."""
    model = METHODS["bt"](epochs=1, hidden=[])

    def train(self, *args):
        state = self.network_.state_dict()
        self.network_.load_state_dict({**state, **{k: torch.tensor(v) for k, v in poison.items()}})

    monkeypatch.setattr(type(model), "fit_features", train)
    with pytest.raises(TrainingDiverged, match=f"^bt: training diverged: {re.escape(message)}$"):
        model.fit(ROWS, progress=False)
    assert model.network_ is None


def test_finite_weights_whose_predictions_overflow_are_refused(monkeypatch) -> None:
    """Weights of 1e30 are finite, but a pair's logit (1e30 · 1e30) is inf, and inf − inf NaN: such a fit was
    accepted, and predict wrote NaN, eval scored it as 0% accuracy. Refused after the fit; and a model whose
    weights were made so after it refuses to predict or score, in one line."""
    model = METHODS["bt"](epochs=1, hidden=[])

    def train(self, *args):
        self.network_.head[0].weight.data.fill_(1e30)

    monkeypatch.setattr(type(model), "fit_features", train)
    rows = [{**r, "chosen_embedding": [1e30, 1e30], "rejected_embedding": [-1e30, 1e30]} for r in ROWS]
    with pytest.raises(TrainingDiverged, match=r"^bt: training diverged: the weights are finite, but its predictions "
                                               r"on training pairs are NaN or inf; lower lr=0.001$"):
        model.fit(rows, progress=False)
    assert model.network_ is None
    monkeypatch.undo()
    model.fit(ROWS, progress=False)
    model.network_.head[0].weight.data.fill_(1e30)
    huge = torch.full((2, 2), 1e30)
    with pytest.raises(TrainingDiverged, match=r"^bt: 2 of 2 predictions are NaN or inf: the weights overflow; "
                                               r"refit with a lower lr=0.001$"):
        model.prefer_proba(None, huge, -huge)
    with pytest.raises(TrainingDiverged, match=r"^bt: 2 of 2 rewards are NaN or inf"):
        model.score(None, huge)
    assert model.prefer_proba(None, torch.zeros(1, 2), torch.zeros(1, 2)).tolist() == [0.5]  # finite: as before


def test_fit_stats_count_the_epochs_run_and_the_pairs_per_second(monkeypatch) -> None:
    """The epochs every stage ran (``trained_epochs_``: MaxMin's EM steps and fine-tuning included; those a --resume
    checkpoint had already run not), and pairs_per_second counts them. A clock that ticks 1 s per reading:
    fit_seconds 1.0; 3 epochs run of 4 pairs (epochs=5, 2 resumed): 12.0 pairs per second. MaxMin counted its
    `epochs` alone and reported half its rate."""
    clock = itertools.count()
    monkeypatch.setattr("pluralign.methods.base.time", SimpleNamespace(perf_counter=lambda: float(next(clock))))
    model = METHODS["bt"](epochs=5, hidden=[])
    monkeypatch.setattr(type(model), "fit_features",
                        lambda self, *a: (setattr(self, "resumed_epochs_", 2), setattr(self, "trained_epochs_", 3)))
    stats = model.fit(ROWS + ROWS, progress=False).fit_stats_
    assert (stats["n_pairs"], stats["epochs"], stats["embed_seconds"], stats["fit_seconds"]) == (4, 3, 1.0, 1.0)
    assert stats["pairs_per_second"] == 12.0


def users(n: int) -> list[dict]:
    return [row for u in range(n) for row in pairs([[1.0, float(u)]], [[0.0, 1.0]], user_id=f"u{u}")]


@pytest.mark.parametrize("n, known", [(0, "none"), (5, "u0, u1, u2, u3, u4"), (6, "u0, u1, u2, u3, u4 ...")])
def test_an_unknown_user_names_at_most_five_known_ones(n, known, monkeypatch) -> None:
    """Mutants: " ..." after exactly five users (>= 5), and no "none" for a run without user ids (such a fit is
    refused now, but runs saved before that still load: the check is stubbed out to make one)."""
    model = METHODS["pal-a"](epochs=1, k=2)
    if not n:
        monkeypatch.setattr(type(model), "check_training_users", lambda self, data: None)
    model.fit(users(n) or pairs([[1.0]], [[0.0]]), progress=False)
    with pytest.raises(KeyError) as err:
        model.known_user("x")
    assert str(err.value) == (f"pal-a: unknown user 'x' (known: {known}); pass a few labelled pairs of theirs to adapt "
                              "instead")


def test_user_vectors_carry_no_autograd_graph() -> None:
    """Mutants: known_user without no_grad, population_user without detach. A vector that requires grad cannot
    become a NumPy array (nor is it the plain number a user vector is)."""
    model = METHODS["pal-a"](epochs=1, k=2).fit(users(2), progress=False)
    for vector in (model.known_user("u1"), model.population_user(), model.resolve_user(None)):
        assert not vector.mean.requires_grad and vector.mean.grad_fn is None
        assert vector.mean.numpy().shape == (model.network_.user_dim,)
    with torch.no_grad():
        assert torch.equal(model.known_user("u1").mean, model.network_.known_users(torch.tensor([1]))[0])


def test_infer_user_of_no_pairs_is_the_population() -> None:
    """Mutant: an empty PreferenceSet (as a split's subset of no rows is) is not taken as k = 0; it went on to
    featurize and failed with an IndexError on its first row."""
    model = METHODS["pal-a"](epochs=1, k=2).fit(users(2), progress=False)
    vector = model.infer_user(PreferenceSet([], checked=True))
    assert torch.equal(vector.mean, model.population_user().mean) and vector.n_pairs == 0


def test_a_folder_named_like_a_user_is_read_as_their_pairs(tmp_path, monkeypatch) -> None:
    """Mutant: infer_user refuses a trained user's id even where a path of that name exists (here the folder u1/
    holding train.jsonl): the "no such file" hint is for ids that are not paths."""
    model = METHODS["pal-a"](epochs=1, k=2).fit(users(2), progress=False)
    (tmp_path / "u1").mkdir()
    write_jsonl(tmp_path / "u1" / "train.jsonl", users(2)[1:] * 3)
    monkeypatch.chdir(tmp_path)
    assert model.infer_user("u1").n_pairs == 3


def test_pairs_of_one_user_give_no_warning(caplog) -> None:
    """Mutant: the several-users warning comes for one user (len(users) >= 1)."""
    model = METHODS["pal-a"](epochs=1, k=2).fit(users(2), progress=False)
    model.infer_user(users(2)[1:] * 2)
    assert "users" not in caplog.text
    model.infer_user(users(2))
    assert "<rows> holds the pairs of 2 users (u0, u1, ...): they are read as one user's" in caplog.text


def test_the_warning_names_three_users_and_not_a_missing_id(caplog) -> None:
    """Mutants: the warning names two users, not three; rows without a user_id count as a user "None"."""
    model = METHODS["pal-a"](epochs=1, k=2).fit(users(2), progress=False)
    model.infer_user(users(1) + pairs([[0.0, 1.0]], [[1.0, 0.0]]))  # u0's pair and a pair of no one's
    assert "users" not in caplog.text
    model.infer_user(users(4))
    assert "<rows> holds the pairs of 4 users (u0, u1, u2, ...): they are read as one user's" in caplog.text


def test_infer_user_of_zero_pair_features_is_the_population() -> None:
    """Mutant: infer_user hands zero pairs (PairFeatures of no rows) to adapt, which fits a user to nothing."""
    model = METHODS["pal-a"](epochs=1, k=2).fit(users(2), progress=False)
    none = PairFeatures(torch.zeros(0, 0), torch.zeros(0, 2), torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    vector = model.infer_user(none)
    assert torch.equal(vector.mean, model.population_user().mean) and vector.n_pairs == 0


def test_a_raw_tensor_is_no_user() -> None:
    """Mutant: resolve_user takes a tensor for labelled pairs (it then failed in the readers, naming no argument)."""
    model = METHODS["pal-a"](epochs=1, k=2).fit(users(2), progress=False)
    with pytest.raises(TypeError, match=r"^pal-a: user=Tensor must be a user id, a UserVector or a few labelled "
                                        r"pairs \(wrap a raw vector as UserVector\(mean\)\)$"):
        model.prefer_proba(None, torch.zeros(1, 2), torch.zeros(1, 2), user=torch.zeros(2))


def test_each_users_vector_in_a_list_is_checked() -> None:
    """Mutant: a list of per-row users skips checked_user_vector: a vector of the wrong width (or NaN) in the list
    reached the network."""
    model = METHODS["pal-a"](epochs=1, k=2).fit(users(2), progress=False)
    width = model.network_.user_dim
    a, b = torch.zeros(2, 2), torch.ones(2, 2)
    with pytest.raises(ValueError, match=rf"^pal-a: a user vector of shape \(9,\); this run's users are vectors "
                                         rf"of width {width} "):
        model.prefer_proba(None, a, b, user=["u0", UserVector(torch.zeros(9))])
    with pytest.raises(ValueError, match="^pal-a: the user vector holds NaN or inf$"):
        model.prefer_proba(None, a, b, user=[UserVector(torch.full((width,), float("nan"))), "u1"])


class Floats(torch.nn.Module):
    """Stands in for a tuned backbone: a row of token ids is its float values."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return ids.float()


def test_a_tuned_backbone_refuses_embedding_tensors() -> None:
    """Mutant: _texts_to_features lets tensors through to a fine-tuned backbone, which read them as token ids."""
    model = bt(ROWS)
    model.network_ = TunedNetwork(Floats(), model.network_)
    with pytest.raises(TypeError, match=r"^bt: a fine-tuned backbone reads text \(token ids\), not precomputed "
                                        r"embeddings$"):
        model.prefer_proba(None, torch.zeros(1, 2), torch.ones(1, 2))


def test_text_for_a_run_fitted_on_embeddings_is_refused(tmp_path) -> None:
    """Mutant: _texts_to_features embeds text for a run fitted on embeddings (with a backbone of the fit's width,
    as the stand-in here, it answered without a word)."""
    model = stand_in(bt(ROWS), tmp_path)
    with pytest.raises(TypeError, match="^bt: this model was trained on embeddings; pass tensors, not text$"):
        model.prefer_proba("p", "aa", "b")


def text_bt(tmp_path, **config):
    """BT fitted on TEXT through the stand-in encoder, then set by hand to r(x, y) = y[0] − 1 (the response
    vector's first entry, a text's length, less one)."""
    model = stand_in(METHODS["bt"](**{"epochs": 1, "hidden": [], **config}), tmp_path).fit(TEXT, progress=False)
    with torch.no_grad():
        model.network_.head[0].weight.copy_(torch.tensor([[0.0, 0.0, 1.0, 0.0]]))  # [prompt (2), response (2)]
        model.network_.head[0].bias.fill_(-1.0)
    return model


def test_as_many_prompts_as_responses(tmp_path) -> None:
    """Mutant: the prompt count is not checked against the responses'; the columns were then split at the prompt
    count (a failed unpacking, or pairs made of the wrong texts)."""
    model = text_bt(tmp_path)
    assert model.score(["p", "q"], ["aa", "bbb"]).tolist() == [1.0, 2.0]
    assert model.score("p", ["aa", "bbb"]).tolist() == [1.0, 2.0]  # one prompt for every response
    with pytest.raises(ValueError, match=r"^bt: prompts and responses must have the same length \(got 2 prompts and "
                                         r"1, 1 responses\)$"):
        model.prefer_proba(["p", "q"], ["aa"], ["b"])
    with pytest.raises(ValueError, match=r"\(got 1 prompts and 2, 2 responses\)$"):
        model.prefer_proba(["p"], ["aa", "b"], ["b", "aa"])


def test_texts_are_centred_as_tensors_are(tmp_path) -> None:
    """Mutant: text_features returns the backbone's vectors without the feature center. The center of TEXT's
    responses "aa" (2, 97) and "b" (1, 98) is (1.5, 97.5): r = len − 1.5 − 1 for a centred model."""
    model = text_bt(tmp_path, center_features=True)
    assert model.feature_center_.response.tolist() == [1.5, 97.5]
    assert model.score("p", ["aa", "b", "cccc"]).tolist() == [-0.5, -1.5, 1.5]
    assert model.score(torch.tensor([1.0, 112.0]), torch.tensor([[2.0, 97.0]])).tolist() == [-0.5]


def test_predictions_carry_no_autograd_graph(tmp_path) -> None:
    """Mutants: score and prefer_proba without no_grad (a result that requires grad cannot become NumPy)."""
    model = text_bt(tmp_path)
    assert model.score("p", ["aa"]).numpy().tolist() == [1.0]
    expected = 1 / (1 + math.exp(-1.0))  # σ(r(aa) − r(b)) = σ(1 − 0)
    assert model.prefer_proba("p", "aa", "b").numpy().tolist() == pytest.approx([expected])


def test_an_encoder_and_cache_follow_the_settings_they_were_built_with(tmp_path) -> None:
    """``model.pooling = "cls"`` then a refit: the mean-pooling encoder built before embedded the fit, while
    config.json recorded cls, which a reloaded model then embeds with (its predictions moved)."""
    model = METHODS["bt"](epochs=1, cache_dir=str(tmp_path / "a"))
    encoder, cache = model.encoder, model.cache
    assert model.encoder is encoder and model.cache is cache  # built once while nothing changes
    model.pooling, model.max_length = "cls", 64
    assert model.encoder is not encoder and (model.encoder.pooling, model.encoder.max_length) == ("cls", 64)
    model.cache_dir = str(tmp_path / "b")
    assert model.cache is not cache and model.cache.root == EmbeddingCache(tmp_path / "b").root


def test_a_fitted_network_keeps_no_gradients() -> None:
    """Lightning clears gradients before a step, not after the last: every fitted model held a second copy of its
    trainable weights as .grad."""
    assert all(p.grad is None for p in bt(ROWS * 4).network_.parameters())
