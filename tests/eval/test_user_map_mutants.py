"""type_recovery and user_groups by hand: only groups with seen users count, seen users without a group make no
centroid, and a user's group is their most common one."""

from __future__ import annotations

from pluralign.data import PreferenceSet
from pluralign.eval.user_map import type_recovery, user_groups


def record(user, group, seen, vector):
    return {"user_id": user, "group": group, "seen": seen, "vector": vector}


def test_an_unseen_user_of_a_group_without_seen_users_is_left_out() -> None:
    records = [record("a1", "a", True, [0.0, 0.0]), record("b1", "b", True, [4.0, 0.0]),
               record("n1", "a", False, [1.0, 0.0]),  # nearer a: right
               record("n2", "c", False, [0.0, 0.0])]  # no seen user of c: no centroid to be near, not counted
    assert type_recovery(records) == 1.0
    assert type_recovery(records[:2] + records[3:]) is None  # no unseen user left to judge


def test_seen_users_without_a_group_make_no_centroid() -> None:
    records = [record("a1", "a", True, [0.0, 0.0]), record("b1", "b", True, [4.0, 0.0]),
               record("x", None, True, [1.0, 0.0]),  # a None "centroid" here would be nearest to n1
               record("n1", "a", False, [1.0, 0.0]), record("n2", "b", False, [3.0, 0.0])]
    assert type_recovery(records) == 1.0


def test_a_users_group_is_their_most_common_one() -> None:
    def row(user, group, **extra):
        return {"chosen_embedding": [1.0], "rejected_embedding": [0.0], "user_id": user, "group": group, **extra}

    data = PreferenceSet.from_rows([row("x", "a"), row("x", "b"), row("x", "b"), row("y", "c", role="context"),
                                    row("y", "c", role="query")])
    assert user_groups(data) == {"x": ("b", True), "y": ("c", False)}
