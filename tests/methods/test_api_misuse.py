"""The Python API met with a researcher's slips (from an outside audit): one-line errors before any work, no
silently mislabelled figures, and no change to the caller's random generators."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from conftest import two_group_rows
from pluralign.eval import evaluate
from pluralign.methods import METHODS, ConfigError


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
    second = METHODS["pal-a"](epochs=1, seed=3).fit(rows[0], progress=False)  # its own seed still decides the fit
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
