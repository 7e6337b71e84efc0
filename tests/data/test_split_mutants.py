"""split_by_user's counts, shuffle and group rules, each pinned by hand: what test_split.py leaves open."""

from __future__ import annotations

from collections import Counter

import numpy as np

from pluralign.data import PreferenceSet
from pluralign.data.split import _stratified, _user_groups, split_by_user


def rows_of(counts: dict[str, int], group: dict[str, list] | None = None) -> PreferenceSet:
    """``counts[user]`` distinct text pairs per user, in file order; ``group[user]`` the group of each row."""
    rows = []
    for user, n in counts.items():
        for i in range(n):
            row = {"prompt": "p", "chosen": f"a-{user}-{i}", "rejected": f"b-{user}-{i}", "user_id": user}
            if group is not None and group[user][i] is not None:
                row["group"] = group[user][i]
            rows.append(row)
    return PreferenceSet.from_rows(rows, "users.jsonl")


def held_out(split, user: str) -> int:
    return sum(r["user_id"] == user for r in split.test)


def test_seen_users_hold_out_the_rounded_fraction() -> None:
    """A seen user's held-out count is round(fraction · pairs), not its floor: 0.2 · 13 = 2.6 holds out 3, 0.2 · 10
    = 2; a user with a single pair keeps it for training, even where round(0.6 · 1) would hold it out."""
    data = rows_of({"u0": 13, "u1": 1, "u2": 10})
    split = split_by_user(data, unseen_users=0, test_fraction=0.2, seed=0)
    assert [held_out(split, u) for u in ("u0", "u1", "u2")] == [3, 0, 2]
    assert len(split.train) == 10 + 1 + 8
    split = split_by_user(data, unseen_users=0, test_fraction=0.6, seed=0)
    assert [held_out(split, u) for u in ("u0", "u1", "u2")] == [8, 0, 6]  # round(7.8), single pair, round(6.0)
    assert sum(r["user_id"] == "u1" for r in split.train) == 1


def test_a_users_pairs_are_shuffled_before_they_are_cut() -> None:
    """The held-out pairs and the context pairs are drawn from all of a user's pairs, not the first ones the file
    lists; the seed decides which."""
    data = rows_of({"u0": 20, "u1": 20})
    split = split_by_user(data, unseen_users=0, test_fraction=0.5, seed=0)
    first_ten = {r["chosen"] for r in data.rows[:10]}
    assert {r["chosen"] for r in split.test if r["user_id"] == "u0"} != first_ten
    other_seed = split_by_user(data, unseen_users=0, test_fraction=0.5, seed=1)
    assert {r["chosen"] for r in other_seed.test} != {r["chosen"] for r in split.test}
    split = split_by_user(data, unseen_users=1, n_context=4, seed=0)
    (user,) = split.unseen_users
    mine = [r["chosen"] for r in data.rows if r["user_id"] == user]
    context = [r["chosen"] for r in split.test if r.get("role") == "context"]
    queries = [r["chosen"] for r in split.test if r.get("role") == "query"]
    assert len(context) == 4 and context != mine[:4]
    assert sorted(context + queries) == sorted(mine)  # every pair once: context or query, never both


def test_default_unseen_users_are_a_rounded_tenth() -> None:
    """By default round(0.1 · eligible users) are unseen: 16 eligible give 2 (1.6 rounds up), 14 give 1."""
    for n_users, expected in ((16, 2), (14, 1)):
        data = rows_of({f"u{i:02d}": 3 for i in range(n_users)})
        assert len(split_by_user(data, n_context=2, seed=0).unseen_users) == expected


def test_a_users_group_is_the_group_of_most_of_their_rows() -> None:
    """The majority group of a user's rows; a tie goes to the first name in sorted order; no group is None."""
    data = rows_of({"x": 4, "y": 2, "z": 1}, {"x": ["b", "a", "a", None], "y": ["b", "a"], "z": [None]})
    by_user = {"x": [0, 1, 2, 3], "y": [4, 5], "z": [6]}
    assert _user_groups(data, by_user) == {"x": "a", "y": "a", "z": None}


def test_stratified_draw_by_hand() -> None:
    """Groups of 2 and 2 users, one unseen: the shares tie (0.5 each) and the tie goes to the first group, a.
    Groups of 3 and 2, four unseen: one each, then shares 2.4 and 1.6 leave deficits 1.4 and 0.6 (a), then 0.4 and
    0.6 (b): 2 and 2, as 2.4 : 1.6 rounds."""
    groups = {u: u[0] for u in ("a0", "a1", "b0", "b1", "a2")}
    for seed in range(4):
        rng = np.random.default_rng(seed)
        assert Counter(groups[u] for u in _stratified(rng, ["a0", "a1", "b0", "b1"], groups, 1)) == {"a": 1}
        four = _stratified(rng, ["a0", "a1", "a2", "b0", "b1"], groups, 4)
        assert Counter(groups[u] for u in four) == {"a": 2, "b": 2}
