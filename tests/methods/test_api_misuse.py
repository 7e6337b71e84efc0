"""The Python API met with a researcher's slips (from an outside audit): one-line errors before any work, no
silently mislabelled figures, and no change to the caller's random generators."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
import torch

from conftest import two_group_rows
from pluralign.data import DataError, PreferenceSet
from pluralign.eval import evaluate
from pluralign.methods import METHODS, ConfigError, UserVector


@pytest.fixture(scope="module")
def rows():
    return two_group_rows(n_users=4, pairs=12)


@pytest.mark.parametrize("argument, message", [
    (dict(epochs=2.5), "pal-a: epochs=2.5 must be an integer"),
    (dict(k=True), "pal-a: k=True must be an integer"),
    (dict(seed=1.5), "pal-a: seed=1.5 must be an integer"),  # Lightning would fit it as seed 1
    (dict(batch_size=2.5), "pal-a: batch_size=2.5 must be an integer"),
    (dict(user_gain=float("inf")), "pal-a: user_gain=inf must be a finite number"),
    (dict(cache_dir=3), "pal-a: cache_dir=3 must be a string or null"),
])
def test_a_model_built_in_python_is_checked_as_a_config_is(rows, argument, message) -> None:
    with pytest.raises(ConfigError, match=f"^{message}$"):
        METHODS["pal-a"](**{"epochs": 1, **argument}).fit(rows[0], progress=False)


def test_fit_leaves_the_callers_generators_as_they_were(rows) -> None:
    def draws():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    random.seed(1), np.random.seed(5), torch.manual_seed(5)
    expected = draws()
    random.seed(1), np.random.seed(5), torch.manual_seed(5)
    first = METHODS["pal-a"](epochs=1, seed=3).fit(rows[0], progress=False)
    assert draws() == expected and "PL_GLOBAL_SEED" not in os.environ
    threads = torch.get_num_threads()
    second = METHODS["pal-a"](epochs=1, seed=3).fit(rows[0], progress=False, threads=threads + 1)
    assert torch.get_num_threads() == threads  # the fit's own count, not left to the caller (it once was)
    assert all(torch.equal(a, b) for a, b in zip(first.network_.state_dict().values(),
                                                  second.network_.state_dict().values()))


def test_evaluate_takes_rows_and_refuses_shot_counts_it_cannot_mean(rows) -> None:
    model = METHODS["pal-a"](epochs=1).fit(rows[0], progress=False)
    assert list(evaluate(model, rows[1], shots=4)["unseen"]) == ["4"]  # a list of rows, one k
    for shots in ((-1,), (2.5,)):  # -1 sliced every context row but the last, reported as "-1"
        with pytest.raises(ValueError, match=r"shot counts must be non-negative integers"):
            evaluate(model, rows[1], shots=shots)


def test_infer_user_says_when_the_pairs_are_several_users(rows, caplog) -> None:
    model = METHODS["pal-a"](epochs=1).fit(rows[0], progress=False)
    model.infer_user([r for r in rows[1] if r.get("role") == "context"])
    assert "<rows> holds the pairs of 2 users (new0, new1, ...): they are read as one user's" in caplog.text


def test_select_queries_does_not_ask_what_the_user_answered(rows) -> None:
    model = METHODS["pal-a"](epochs=1).fit(rows[0], progress=False)
    pool = [r for r in rows[1] if r.get("user_id") == "new0"][:6]
    swapped = {**pool[1], "chosen_embedding": pool[1]["rejected_embedding"],
               "rejected_embedding": pool[1]["chosen_embedding"]}  # the same question, answered the other way
    order = model.select_queries(pool, 6, context=[pool[0], swapped])
    assert sorted(order[-2:]) == [0, 1] and sorted(order) == list(range(6))
    assert model.select_queries(pool, 2, context=[]) == model.select_queries(pool, 2)  # no answers yet
    with pytest.raises(ValueError, match=r"n=2.5 must be a whole number, at least 1"):
        model.select_queries(pool, 2.5)
    with pytest.raises(ValueError, match=r"^pal-a: the pool of candidate pairs is empty$"):
        model.select_queries([], 1)


def test_a_model_prints_as_the_call_that_builds_it() -> None:
    """repr names the class and every constructor argument, so a notebook shows which model it holds."""
    model = METHODS["pal-a"](k=3, epochs=2)
    text = repr(model)
    assert text.startswith("PalA(") and "k=3" in text and "epochs=2" in text
    rebuilt = eval(text, {"PalA": type(model)})  # the text is a call that builds the same model
    assert rebuilt.get_config() == model.get_config()


@pytest.fixture(scope="module")
def fitted(rows):
    return {name: METHODS[name](epochs=1).fit(rows[0], progress=False) for name in ("bt", "pal-a", "vpl")}


@pytest.mark.parametrize("a, b, message", [
    (torch.full((3, 4), float("nan")), torch.zeros(3, 4), r"a\[0\] holds NaN or inf"),  # was NaN, exit 0
    (torch.zeros(3, 4), torch.tensor([[0.0] * 4, [0.0] * 3 + [float("inf")], [0.0] * 4]), r"b\[1\] holds NaN or inf"),
    (torch.zeros(3, 5), torch.zeros(3, 5), "a has rows 5 wide; the run was fitted on response embeddings of width 4"),
    (torch.zeros(3, 4), torch.zeros(2, 4), "b has 2 rows and a has 3; give one row per pair"),
    (torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), r"a has shape \(2, 3, 4\); expected \[rows, 4\]"),
    (torch.zeros(3, 4), [[0.0] * 4] * 3, "b is list while the other responses are tensors"),
])
def test_embedding_tensors_are_checked_before_the_network(fitted, a, b, message) -> None:
    for name, model in fitted.items():
        with pytest.raises((ValueError, TypeError), match=f"^{name}: {message}"):
            model.prefer_proba(None, a, b)


def test_embedding_tensors_of_one_row_or_none_or_integers(fitted) -> None:
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    for model in fitted.values():
        assert torch.equal(model.prefer_proba(None, a[0], b[0]), model.prefer_proba(None, a[:1], b[:1]))
        assert model.prefer_proba(None, torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0,)
        assert torch.equal(model.score(None, torch.ones(2, 4, dtype=torch.long)), model.score(None, torch.ones(2, 4)))
    with pytest.raises(TypeError, match="prompt embeddings of width 2; pass prompts as a \\[rows, 2\\] tensor"):
        prompted = METHODS["bt"](epochs=1).fit([{**r, "prompt_embedding": [0.0, 1.0]} for r in fitted_rows()],
                                               progress=False)
        prompted.prefer_proba(None, a, b)


def fitted_rows() -> list[dict]:
    return two_group_rows(n_users=2, pairs=4)[0]


def test_user_vectors_are_checked_against_the_runs_users(fitted) -> None:
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    pal, vpl, bt = fitted["pal-a"], fitted["vpl"], fitted["bt"]
    width = pal.population_user().mean.shape[0]
    with pytest.raises(ValueError, match=rf"^pal-a: a user vector of shape \(99,\); this run's users are vectors "
                                         rf"of width {width} "):
        pal.prefer_proba(None, a, b, user=UserVector(torch.zeros(99)))
    with pytest.raises(ValueError, match=r"^bt: a user vector of shape \(2,\); this run's users are vectors "
                                         r"of width 0"):
        bt.prefer_proba(None, a, b, user=UserVector(torch.zeros(2)))  # BT ignored it without a word
    nan_user = UserVector(torch.full((vpl.population_user().mean.shape[0],), float("nan")))
    with pytest.raises(ValueError, match="^vpl: the user vector holds NaN or inf$"):
        vpl.prefer_proba(None, a, b, user=nan_user)
    as_list = UserVector(pal.known_user("u1").mean.tolist())  # a list of numbers is the tensor it means
    assert torch.equal(pal.prefer_proba(None, a, b, user=as_list), pal.prefer_proba(None, a, b, user="u1"))
    with pytest.raises(TypeError, match="UserVector.mean must be a tensor or a list of numbers"):
        UserVector("u1")
    with pytest.raises(TypeError, match="^pal-a: user is a list of numbers; wrap a raw vector as UserVector"):
        pal.prefer_proba(None, a, b, user=[0.1] * 7)


def test_a_user_vector_of_another_fit_is_refused(fitted, rows, tmp_path) -> None:
    """A vector carries its fit's id: the same run after save and load takes it (JSON round trip included); another
    fit of the same method (its prototypes elsewhere) refuses it, where it scored near chance without a word; a
    vector made by hand, or saved before the id existed, is not checked."""
    from pluralign.methods import PreferenceModel

    pal = fitted["pal-a"]
    vector = pal.infer_user(rows[1][:4])
    assert vector.fit == pal.fit_id and len(pal.fit_id) == 16
    pal.save_pretrained(tmp_path / "pal")
    loaded = PreferenceModel.from_pretrained(tmp_path / "pal")
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    saved = UserVector.from_dict(json.loads(json.dumps(vector.to_dict())))
    assert saved.fit == vector.fit and torch.equal(loaded.prefer_proba(None, a, b, user=saved),
                                                   pal.prefer_proba(None, a, b, user=vector))
    other = METHODS["pal-a"](epochs=1, seed=1).fit(rows[0], progress=False)
    with pytest.raises(ValueError, match=rf"^pal-a: a user vector of another fit \(fit {vector.fit}, this run's "
                                         rf"{other.fit_id}\); infer the user again with this model$"):
        other.prefer_proba(None, a, b, user=saved)
    unchecked = {k: v for k, v in vector.to_dict().items() if k != "fit"}
    assert other.prefer_proba(None, a, b, user=UserVector.from_dict(unchecked)).shape == (3,)


def test_a_list_of_users_gives_one_per_row(fitted) -> None:
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    pal = fitted["pal-a"]
    # it was read as labelled pairs: "<rows>, row 1: expected a record (mapping), got str"
    with pytest.raises(ValueError, match=r"^pal-a: 2 users for 3 rows; give one user per row, or one user"):
        pal.prefer_proba(None, a, b, user=["u0", "u1"])
    mixed = pal.prefer_proba(None, a, b, user=["u0", None, pal.known_user("u1")])
    assert torch.allclose(mixed[1:2], pal.prefer_proba(None, a[1:2], b[1:2]), atol=1e-6)  # batch sizes round apart
    assert torch.allclose(mixed[2:], pal.prefer_proba(None, a[2:], b[2:], user="u1"), atol=1e-6)
    assert not torch.allclose(mixed[:1], pal.prefer_proba(None, a[:1], b[:1], user="u1"), atol=1e-4)


def test_an_unknown_user_and_a_user_id_given_as_pairs(fitted) -> None:
    pal = fitted["pal-a"]
    with pytest.raises(KeyError) as err:
        pal.known_user("zzz")
    assert str(err.value) == ("pal-a: unknown user 'zzz' (known: u0, u1, u2, u3); pass a few labelled pairs of theirs "
                              "to adapt instead")  # no quotes around it, as KeyError's own text has
    with pytest.raises(DataError, match=r"^u1: no such file; infer_user reads labelled pairs .* is known_user\('u1'\)"):
        pal.infer_user("u1")


def test_pair_proba_says_when_the_rows_name_users_it_scores_as_nobody(fitted, rows, caplog) -> None:
    """user=None is the population model for every row, the rows' own user_id notwithstanding: a warning says so
    where the model knows those users, and their ids per row score each as their user."""
    import logging

    pal, bt = fitted["pal-a"], fitted["bt"]
    data = PreferenceSet.from_rows(rows[0][:6])
    with caplog.at_level(logging.WARNING, logger="pluralign"):
        population = pal.pair_proba(data)
        bt.pair_proba(data)  # one model for everyone: nothing to warn of
    assert [r.getMessage().split(", but")[0] for r in caplog.records] == [
        "pal-a.pair_proba: <data> names 1 user(s) the model knows"]
    assert torch.equal(population, pal.pair_proba(data, user=pal.population_user()))
    assert torch.equal(population, pal.pair_proba(pal.featurize(data)))  # features: the same rows, no ids to read
    own = pal.pair_proba(data, user=data.column("user_id"))
    assert torch.equal(own, pal.pair_proba(data, user=data.column("user_id")[0])) and not torch.equal(own, population)


def test_a_path_given_as_the_user_is_read_as_their_pairs(fitted, rows, tmp_path) -> None:
    """user="pairs.jsonl" adapts on that file's pairs, as infer_user(path) does; it was looked up as a user id
    (bt: silently the population; pal-a: "unknown user ...; pass a few labelled pairs", which the caller had)."""
    from pluralign.io import write_jsonl

    pal = fitted["pal-a"]
    write_jsonl(tmp_path / "pairs.jsonl", rows[1][:4])
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    expected = pal.prefer_proba(None, a, b, user=pal.infer_user(str(tmp_path / "pairs.jsonl")))
    assert torch.equal(pal.prefer_proba(None, a, b, user=str(tmp_path / "pairs.jsonl")), expected)
    with pytest.raises(KeyError, match="unknown user"):  # no path can be this long: an id, not an OSError
        pal.prefer_proba(None, a, b, user="u" * 5000)


def test_fit_keywords_beside_trainer_options_replace_their_fields(rows, monkeypatch) -> None:
    """fit(trainer=TrainerOptions(...), progress=False) trained with the options' progress bar: the keywords
    were dropped without a word."""
    from pluralign.methods.base import PreferenceModel
    from pluralign.training import TrainerOptions

    seen: list[TrainerOptions] = []
    real = PreferenceModel.run_lightning
    monkeypatch.setattr(PreferenceModel, "run_lightning",
                        lambda self, objective, features, val, options, *a, **k:
                        seen.append(options) or real(self, objective, features, val, options, *a, **k))
    METHODS["bt"](epochs=1).fit(rows[0], trainer=TrainerOptions(progress=True, threads=1), progress=False)
    assert (seen[0].progress, seen[0].threads) == (False, 1)


def test_preference_sets_built_directly_are_validated() -> None:
    with pytest.raises(DataError, match=r"^<data>, row 1, column 'rejected_embedding': missing"):
        PreferenceSet([{"chosen_embedding": [1.0, 2.0], "user_id": "u0"}])
    rows = two_group_rows(n_users=2, pairs=2)[0]
    assert PreferenceSet(rows).rows == PreferenceSet.from_rows(rows).rows


@pytest.mark.parametrize("val, message", [
    (two_group_rows(n_users=2, pairs=4, dim=3)[0], "response embedding features of width 4; these rows give width 3"),
    ([{"prompt": "p", "chosen": "a", "rejected": "b"}], "embedding features of width 4; these rows are text"),
])
def test_validation_rows_of_another_kind_are_refused_before_training(rows, val, message, monkeypatch) -> None:
    model = METHODS["pal-a"](epochs=1)
    monkeypatch.setattr(type(model), "fit_features", lambda *a: pytest.fail("trained before checking val_data"))
    with pytest.raises(DataError, match=f"^<rows>: validation rows; pal-a trains on {message}"):
        model.fit(rows[0], val_data=val, progress=False)


def test_integer_ids_are_the_users_the_reader_made_of_them(rows) -> None:
    """Rows with user_id 1, 2 train users "1", "2" (as the reader reads ids); user=2, user=2.0 and a list of ints
    (what TRL passes for an integer user_id column) were refused as "a list of numbers"."""
    numbered = [{**r, "user_id": int(r["user_id"][1:]) + 1} for r in rows[0]]
    pal = METHODS["pal-a"](epochs=1).fit(numbered, progress=False)
    assert pal.user_ids_ == ["1", "2", "3", "4"]
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    by_name = pal.prefer_proba(None, a, b, user=["2", "1", "2"])
    assert torch.equal(pal.prefer_proba(None, a, b, user=[2, 1, 2]), by_name)
    assert torch.equal(pal.prefer_proba(None, a, b, user=2.0), pal.prefer_proba(None, a, b, user="2"))
    with pytest.raises(TypeError, match=r"^pal-a: user=float must be a user id"):
        pal.prefer_proba(None, a, b, user=2.5)


def test_labelled_pairs_per_row_are_one_user_each(fitted, rows) -> None:
    """A list of labelled-pair lists, one per row (README): unhashable lists crashed the per-row cache."""
    pal = fitted["pal-a"]
    a, b = torch.randn(2, 4), torch.randn(2, 4)
    first, second = rows[1][:4], rows[1][4:8]
    each = pal.prefer_proba(None, a, b, user=[first, second])
    torch.testing.assert_close(each[0], pal.prefer_proba(None, a[:1], b[:1], user=first)[0])
    torch.testing.assert_close(each[1], pal.prefer_proba(None, a[1:], b[1:], user=second)[0])


def test_an_unknown_constructor_argument_is_named_with_the_accepted_ones() -> None:
    """A typo (kk=50) gave Python's "PreferenceModel.__init__() got an unexpected keyword argument", naming
    neither the method nor what it takes; numpy's scalars (a sweep's values) are taken as the numbers they are."""
    with pytest.raises(ConfigError, match=r"^pal-a: unknown argument\(s\) kk \(accepted: backbone, "
                                          r"batch_size, .*\bk\b"):
        METHODS["pal-a"](epochs=2, kk=50)
    model = METHODS["pal-a"](epochs=np.int64(2), lr=np.float32(0.01), hidden=[np.int64(4)])
    assert model.get_config()["epochs"] == 2 and type(model.get_config()["epochs"]) is int
    assert type(model.get_config()["lr"]) is float and model.get_config()["hidden"] == [4]
    with pytest.raises(ConfigError, match=r"^pal-a: epochs=np.float64\(2.5\) must be an integer"):
        METHODS["pal-a"](epochs=np.float64(2.5))


def test_no_prompts_on_a_text_model_is_named() -> None:
    """prompts=None (a model on embeddings' "no prompt features") on a text model: "'NoneType' object is not
    iterable" before; now one line naming the argument."""
    rows = [{"prompt": "p", "chosen": "a good answer", "rejected": "a bad one"}] * 2
    model = METHODS["bt"](epochs=1, hidden=[]).fit(rows, progress=False)
    with pytest.raises(TypeError, match=r"^bt: prompts=None; this model reads text: give a prompt per row"):
        model.prefer_proba(None, ["a"], ["b"])


def test_no_user_id_names_the_columns_that_were_dropped(tmp_path) -> None:
    """`user` and `worker_id` (not misspellings close enough to warn of) vanished into a debug line; the error that
    no row has a user_id now names them, from memory and from a file alike."""
    rows = [{"chosen_embedding": [1.0, 0.0], "rejected_embedding": [0.0, 1.0], "user": "a", "worker_id": 3}] * 3
    note = r"no row has a user_id \(columns ignored, not in the contract: user, worker_id; the user's column is named "
    with pytest.raises(DataError, match=r"^pal-a: <rows>: " + note + r"user_id\); pal-a learns"):
        METHODS["pal-a"](epochs=1).fit(rows, progress=False)
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"^vpl: .*rows\.jsonl: " + note + r"user_id\); VPL learns"):
        METHODS["vpl"](epochs=1).fit(path, progress=False)
