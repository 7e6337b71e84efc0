"""The shared estimator's checks before any work: the seed's range, and rows without a user_id for a method that
learns each training user's weights. Tiny inline rows, no backbone."""

from __future__ import annotations

import pytest

from pluralign.config import build_model
from pluralign.data import DataError
from pluralign.methods import METHODS, ConfigError

# what a misspelled user_id column (dropped as unknown) leaves: rows without users
NO_USERS = [{"chosen_embedding": [1.0, float(i)], "rejected_embedding": [0.0, 1.0]} for i in range(4)]


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_a_seed_out_of_numpys_range_is_named_at_construction(seed: int) -> None:
    """numpy's own words ("-1 is not in bounds") came from Lightning's seed_everything, after the data was read."""
    with pytest.raises(ConfigError) as err:
        build_model("bt", {"seed": seed})
    assert str(err.value) == f"bt: seed={seed} must be an integer in [0, 2**32 - 1]"
    assert build_model("bt", {"seed": 2**32 - 1}).seed == 2**32 - 1


@pytest.mark.parametrize("method, what", [("pal-a", "bt and micro train on pooled pairs"),
                                          ("pal-b", "bt and micro train on pooled pairs"),
                                          ("gpm", "personalize=false trains one population model on pooled pairs, "
                                                  "as bt does")])
def test_a_method_that_learns_users_refuses_rows_without_any(method: str, what: str) -> None:
    """pal-a, pal-b and gpm fitted 0 users and went on, as vpl and maxmin refuse to."""
    model = METHODS[method](epochs=1)
    with pytest.raises(DataError) as err:
        model.fit(NO_USERS, progress=False)
    assert str(err.value) == (f"{method}: <rows>: no row has a user_id; {method} learns each training user's weights "
                              f"({what})")
    assert model.network_ is None


def test_pooled_methods_still_fit_rows_without_users() -> None:
    for model in (METHODS["bt"](epochs=1, hidden=[]), METHODS["gpm"](epochs=1, personalize=False)):
        assert model.fit(NO_USERS, progress=False).fit_stats_["n_users"] == 0
