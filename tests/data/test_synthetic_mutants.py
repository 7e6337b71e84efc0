"""Synthetic benchmarks' finer rules, each pinned by hand: held-out items stay held out, counts, groups, oracles."""

from __future__ import annotations

import numpy as np
import pytest

from pluralign.data.synthetic import BENCHMARKS, build_benchmark
from pluralign.data.synthetic._common import dirichlet_users, split_counts

SIZES = dict(n_users=4, n_unseen_users=2, pairs_per_user=24, test_pairs_per_user=8, n_context=16, n_query=24)


def items(rows: list[dict]) -> set:
    """The options of the rows: (prompt, text), or embeddings as tuples. The prompt belongs to the key: the
    responses bank holds a few generic sentences under two prompts, one in each split."""
    out = set()
    for r in rows:
        for side in ("chosen", "rejected"):
            out.add((r["prompt"], r[side]) if side in r else tuple(r[f"{side}_embedding"]))
    return out


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_held_out_and_query_items_never_train(name: str) -> None:
    """Held-out rows of seen users and unseen users' queries use held-out items only; training rows and context
    rows use the other items: no option is on both sides (a leak would score memorized items)."""
    bench = build_benchmark(name, seed=0, **SIZES)
    trained = items(bench.train) | items([r for r in bench.test if r.get("role") == "context"])
    held = items([r for r in bench.test if r.get("role") in (None, "query")])
    assert trained and held and not trained & held


def test_split_counts_by_largest_remainder() -> None:
    """7 by 3:1 is 5.25 and 1.75: the one left over goes to the larger remainder (0.75), so 5 and 2; 12 by 10:1 is
    10.9 and 1.09, so 11 and 1; 5 in three equal parts goes 2, 2, 1 (a tie goes to the first)."""
    assert split_counts(7, [3.0, 1.0]) == [5, 2]
    assert split_counts(12, [10.0, 1.0]) == [11, 1]
    assert split_counts(5, [1.0, 1.0, 1.0]) == [2, 2, 1]
    assert split_counts(10, [1.0, 2.0, 3.0, 4.0]) == [1, 2, 3, 4]


def test_a_dirichlet_users_group_is_their_largest_weight() -> None:
    """group = the name of the largest Dirichlet weight; params are the weights (or the weights times the basis)."""
    names = ["x", "y", "z"]
    users = dirichlet_users(np.random.default_rng(0), "u", 20, 0.5, names)
    assert [u.user_id for u in users[:2]] == ["u000", "u001"]
    for u in users:
        assert u.group == names[int(np.argmax(u.params))] and u.params.sum() == pytest.approx(1.0)
    basis = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    mixed = dirichlet_users(np.random.default_rng(0), "u", 20, 0.5, names, basis)
    assert all(np.allclose(m.params, u.params @ basis) and m.group == u.group for m, u in zip(mixed, users))


def test_card_counts_and_oracle_figures() -> None:
    """pets at 4 seen users × (12 train + 6 held-out) and 2 unseen × (16 context + 16 query): the card says 48 train
    and 24 held-out rows, 64 unseen rows, and each oracle figure is the mean of oracle_p > 0.5 over its own rows."""
    bench = build_benchmark("pets", seed=0, n_users=4, n_unseen_users=2, pairs_per_user=12, test_pairs_per_user=6,
                            n_context=16, n_query=16)
    assert "| seen (train + held-out test) | 4 | helpful: 2, harmless: 2 | 48 train, 24 test |" in bench.card
    assert "| unseen (context, then query) | 2 | helpful: 1, harmless: 1 | 64 test |" in bench.card

    def accuracy(rows: list[dict]) -> str:
        return f"{np.mean([r['oracle_p'] > 0.5 for r in rows]):.3f}"

    held = [r for r in bench.test if "role" not in r]
    query = [r for r in bench.test if r.get("role") == "query"]
    assert f"| test, seen users (held-out pairs) | {accuracy(held)} |" in bench.card
    assert f"| test, unseen users (query rows) | {accuracy(query)} |" in bench.card
    assert accuracy(held) != accuracy(held + query)  # the two figures tell the rows apart here


def recovered_mixtures(name: str, module, affine: bool) -> list[tuple[np.ndarray, str]]:
    """Each seen user's mixture weights λ and group, read back from the rows alone: the oracle's logit is linear in
    the pair's features, so a least-squares fit of T·logit(oracle_p) over a user's rows recovers the user's vector
    (for ideal points, the ideal point a from T·logit = ‖r‖² − ‖c‖² − 2 a·(r − c)), and that vector is λ · basis,
    the basis being the builder's first draw (unit-norm base rewards, or the prototypes)."""
    bench = build_benchmark(name, seed=0, n_users=4, n_unseen_users=2, pairs_per_user=60, test_pairs_per_user=4)
    basis = np.random.default_rng(0).standard_normal((3, 16))
    if not affine:
        basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    out = []
    for user in sorted({r["user_id"] for r in bench.train}):
        rows = [r for r in bench.train if r["user_id"] == user and 0.02 < r["oracle_p"] < 0.98]
        c = np.array([r["chosen_embedding"] for r in rows])
        r_ = np.array([r["rejected_embedding"] for r in rows])
        y = np.log([r["oracle_p"] / (1 - r["oracle_p"]) for r in rows]) * module.TEMPERATURE
        if affine:
            x, y = -2 * (r_ - c), y - ((r_ ** 2).sum(1) - (c ** 2).sum(1))
        else:
            x = c - r_
        vector, *_ = np.linalg.lstsq(x, y, rcond=None)
        assert len(rows) > 16 and np.abs(x @ vector - y).max() < 1e-3  # one vector explains every row of the user
        weights, *_ = np.linalg.lstsq(basis.T, vector, rcond=None)
        out.append((weights, rows[0]["group"]))
    return out


@pytest.mark.parametrize("name, prefix, affine", [("dirichlet-mixture", "component", False),
                                                  ("ideal-points", "prototype", True)])
def test_each_users_oracle_is_their_own_mixture(name: str, prefix: str, affine: bool) -> None:
    """The oracle_p of a user's rows comes from that user's own Dirichlet mixture: the recovered weights lie on the
    simplex, their largest names the user's group, and the users differ (not one shared reward)."""
    from pluralign.data.synthetic import dirichlet_mixture, ideal_points

    module = dirichlet_mixture if name == "dirichlet-mixture" else ideal_points
    mixtures = recovered_mixtures(name, module, affine)
    for weights, group in mixtures:
        assert weights.min() > -1e-3 and weights.sum() == pytest.approx(1.0, abs=1e-3)
        assert group == f"{prefix}-{int(np.argmax(weights))}"
    assert len({group for _, group in mixtures}) > 1


@pytest.mark.parametrize("name", ["pets", "attributes", "majority-minority", "cyclic"])
def test_typed_priors_name_each_groups_own_oracle_at_any_temperature(name: str) -> None:
    """Where the prior is a set of user types, the type named by a row's group gives exactly that row's oracle_p,
    also at a temperature other than the default (the rows and the prior both follow the option)."""
    module = {"pets": "pets", "attributes": "attributes", "majority-minority": "majority_minority",
              "cyclic": "cyclic"}[name]
    default = __import__(f"pluralign.data.synthetic.{module}", fromlist=["TEMPERATURE"]).TEMPERATURE
    bench = build_benchmark(name, seed=0, n_users=4, n_unseen_users=2, pairs_per_user=12, test_pairs_per_user=3,
                            temperature=1.5 * default)
    rows = bench.train + bench.test
    probs = 1 / (1 + np.exp(-bench.prior.logits(bench.prior.params, rows)))  # [types, rows]
    own = probs[[bench.prior.names.index(r["group"]) for r in rows], np.arange(len(rows))]
    assert np.abs(own - np.array([r["oracle_p"] for r in rows])).max() < 1e-5


def test_both_majority_minority_groups_are_always_present() -> None:
    """5 seen users at 10:1 is 4.5 : 0.5 by share, which rounds to 5 : 0; the minority still gets one user."""
    bench = build_benchmark("majority-minority", seed=0, n_users=5, n_unseen_users=2, pairs_per_user=2,
                            test_pairs_per_user=1)
    users = {r["user_id"]: r["group"] for r in bench.train}
    assert sorted(users.values()) == ["majority"] * 4 + ["minority"]
    assert split_counts(5, [10.0, 1.0]) == [5, 0]


@pytest.mark.parametrize("seed", [-1, True, 1.5])
def test_seed_must_be_a_non_negative_integer(seed) -> None:
    from pluralign.data.contract import DataError

    with pytest.raises(DataError, match=r"^seed must be a non-negative integer, got "):
        build_benchmark("pets", seed=seed)
