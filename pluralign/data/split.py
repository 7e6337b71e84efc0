"""Split a real preference dataset by user into the evaluation protocol's layout (DESIGN.md).

Synthetic benchmarks come already split; a converted dataset (PRISM, P-SOUPS, ...) is one file of every
user's pairs. :func:`split_by_user` holds out whole users as *unseen*: their pairs become ``context`` rows
(the k labelled pairs a few-shot method adapts on, in order) and ``query`` rows (scored after adapting).
Every other user is *seen*: most of their pairs train, a fraction is held out for the test split without a
role. Rows without a user id can only train. Seeded, so a split is reproducible from its README.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pluralign.data.contract import DataError, PreferenceSet


@dataclass
class UserSplit:
    """``train`` and ``test`` take the place of a benchmark folder's two files (``fit`` and ``evaluate``)."""

    train: PreferenceSet
    test: PreferenceSet
    seen_users: list[str]
    unseen_users: list[str]

    def card(self, source: str, seed: int, n_context: int, test_fraction: float, stratify: bool = False) -> str:
        n_context_rows = sum(r.get("role") == "context" for r in self.test)
        n_queries = sum(r.get("role") == "query" for r in self.test)
        return "\n".join([
            f"# {source}, split by user",
            "",
            f"`pluralign data split {source} --unseen-users {len(self.unseen_users)} --context {n_context} "
            f"--test-fraction {test_fraction} --seed {seed}{' --stratify' if stratify else ''}`",
            "",
            f"- train.jsonl: {len(self.train)} rows of {len(self.seen_users)} seen users "
            "(and any rows without a user id)",
            f"- test.jsonl: {len(self.test) - n_context_rows - n_queries} held-out rows of seen users; "
            f"{len(self.unseen_users)} unseen users with {n_context_rows} context rows ({n_context} each, "
            f"adapt on the first k) and {n_queries} query rows",
            f"- unseen users: {', '.join(self.unseen_users)}",
            "",
        ])


def split_by_user(data: PreferenceSet, unseen_users: int | None = None, n_context: int = 16,
                  test_fraction: float = 0.2, seed: int = 0, stratify: bool = False) -> UserSplit:
    """Hold out ``unseen_users`` users (default: a tenth of the eligible ones, at least one), drawn at random among
    those with more than ``n_context`` pairs (so each has a query left), and ``test_fraction`` of every seen user's
    pairs (but never the last: a seen user keeps a training pair). A user's pairs are shuffled before they are cut,
    so the context is not whatever the file happened to list first. ``stratify``: draw the unseen users group by
    group (a user's group is the ``group`` of most of their rows), in proportion to the eligible users of each, at
    least one per group while there are as many unseen users as groups, so a small group is not left out of the
    few-shot test; data without a ``group`` column cannot be stratified (an error, not a silent plain draw)."""
    if any(role is not None for role in data.column("role")):
        raise DataError(f"{data.source}: the rows already have roles (context/query): this data is split")
    if n_context < 1:
        raise DataError(f"--context {n_context}: an unseen user needs at least one context pair")
    if not 0.0 <= test_fraction < 1.0:
        raise DataError(f"--test-fraction {test_fraction}: must lie in [0, 1)")
    if unseen_users is not None and unseen_users < 0:
        raise DataError(f"--unseen-users {unseen_users}: must be 0 or more (0: every user is seen)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"--seed {seed}: must be a non-negative integer")
    if stratify and all(group is None for group in data.column("group")):
        raise DataError(f"{data.source}: --stratify draws the unseen users group by group, but no row has a 'group'")
    by_user: dict[str | None, list[int]] = {}
    for i, user in enumerate(data.column("user_id")):
        by_user.setdefault(user, []).append(i)
    pooled = by_user.pop(None, [])
    users = list(by_user)
    if not users:
        raise DataError(f"{data.source}: no row has a user_id; a split by user needs them")
    eligible = [u for u in users if len(by_user[u]) > n_context]
    chosen_by_default = unseen_users is None
    if unseen_users is None:
        if not eligible:
            raise DataError(f"{data.source}: no user has more than --context {n_context} pairs to hold out as "
                            "unseen; lower --context, or pass --unseen-users 0")
        unseen_users = max(1, round(0.1 * len(eligible)))
    if unseen_users > len(eligible):
        raise DataError(f"{data.source}: --unseen-users {unseen_users}, but {len(eligible)} of its {len(users)} users "
                        f"have more than --context {n_context} pairs")
    if unseen_users == len(users) and chosen_by_default:
        raise DataError(f"{data.source}: one user, held out as unseen by default, leaves none to train on; "
                        "pass --unseen-users 0 to split their pairs")
    if unseen_users == len(users):
        raise DataError(f"{data.source}: --unseen-users {unseen_users} leaves no seen user to train on")
    rng = np.random.default_rng(seed)
    if stratify and unseen_users:
        unseen = _stratified(rng, eligible, _user_groups(data, by_user), unseen_users)
    else:
        unseen = set(rng.choice(eligible, size=unseen_users, replace=False).tolist()) if unseen_users else set()
    train, test = [data.rows[i] for i in pooled], []
    for user in users:
        rows = [data.rows[i] for i in rng.permutation(by_user[user])]
        if user in unseen:
            test += [{**r, "role": "context"} for r in rows[:n_context]]
            test += [{**r, "role": "query"} for r in rows[n_context:]]
        else:
            n_test = min(int(round(test_fraction * len(rows))), len(rows) - 1)  # a seen user trains on one at least
            train += rows[n_test:]
            test += rows[:n_test]
    if not test:
        raise DataError(f"{data.source}: nothing to test on: no unseen users, and --test-fraction {test_fraction} "
                        "holds out no pair of a seen user")
    return UserSplit(PreferenceSet(train, f"{data.source}:train", checked=True),
                     PreferenceSet(test, f"{data.source}:test", checked=True),
                     [u for u in users if u not in unseen], [u for u in users if u in unseen])


def _user_groups(data: PreferenceSet, by_user: dict[str | None, list[int]]) -> dict[str, str | None]:
    """Each user's group: the most common ``group`` of their rows (None where they have none)."""
    groups = data.column("group")
    majority = {}
    for user, rows in by_user.items():
        labels = [groups[i] for i in rows if groups[i] is not None]
        majority[user] = max(sorted(set(labels)), key=labels.count) if labels else None
    return majority


def _stratified(rng: np.random.Generator, eligible: list[str], group_of: dict[str, str | None], n: int) -> set[str]:
    """``n`` of ``eligible``, group by group: one each first while n allows, then one at a time to the group
    furthest below its proportional share."""
    members: dict[str | None, list[str]] = {}
    for user in eligible:
        members.setdefault(group_of[user], []).append(user)
    names = sorted(members, key=str)
    share = {g: n * len(members[g]) / len(eligible) for g in names}
    take = {g: int(n >= len(names)) for g in names}
    while sum(take.values()) < n:
        open_groups = [g for g in names if take[g] < len(members[g])]
        take[max(open_groups, key=lambda g: share[g] - take[g])] += 1  # max keeps the first of a tie
    return {u for g in names if take[g] for u in rng.choice(members[g], size=take[g], replace=False).tolist()}
