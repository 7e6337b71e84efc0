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

    def card(self, source: str, seed: int, n_context: int, test_fraction: float) -> str:
        n_context_rows = sum(r.get("role") == "context" for r in self.test)
        n_queries = sum(r.get("role") == "query" for r in self.test)
        return "\n".join([
            f"# {source}, split by user",
            "",
            f"`pluralign data split {source} --unseen-users {len(self.unseen_users)} --context {n_context} "
            f"--test-fraction {test_fraction} --seed {seed}`",
            "",
            f"- train.jsonl: {len(self.train)} rows of {len(self.seen_users)} seen users (and any rows without a user id)",
            f"- test.jsonl: {len(self.test) - n_context_rows - n_queries} held-out rows of seen users; "
            f"{len(self.unseen_users)} unseen users with {n_context_rows} context rows ({n_context} each, "
            f"adapt on the first k) and {n_queries} query rows",
            f"- unseen users: {', '.join(self.unseen_users)}",
            "",
        ])


def split_by_user(data: PreferenceSet, unseen_users: int | None = None, n_context: int = 16,
                  test_fraction: float = 0.2, seed: int = 0) -> UserSplit:
    """Hold out ``unseen_users`` users (default: a tenth of the eligible ones, at least one), drawn at random
    among those with more than ``n_context`` pairs (so each has a query left), and ``test_fraction`` of every
    seen user's pairs. A user's pairs are shuffled before they are cut, so the context is not whatever the
    file happened to list first."""
    if any(role is not None for role in data.column("role")):
        raise DataError(f"{data.source}: the rows already have roles (context/query): this data is split")
    if n_context < 1:
        raise DataError(f"--context {n_context}: an unseen user needs at least one context pair")
    if not 0.0 <= test_fraction < 1.0:
        raise DataError(f"--test-fraction {test_fraction}: must lie in [0, 1)")
    by_user: dict[str | None, list[int]] = {}
    for i, user in enumerate(data.column("user_id")):
        by_user.setdefault(user, []).append(i)
    pooled = by_user.pop(None, [])
    users = list(by_user)
    eligible = [u for u in users if len(by_user[u]) > n_context]
    if unseen_users is None:
        if not eligible:
            raise DataError(f"{data.source}: no user has more than --context {n_context} pairs to hold out as "
                            "unseen; lower --context, or pass --unseen-users 0")
        unseen_users = max(1, round(0.1 * len(eligible)))
    if unseen_users < 0 or unseen_users > len(eligible):
        raise DataError(f"{data.source}: --unseen-users {unseen_users}, but {len(eligible)} of its {len(users)} users "
                        f"have more than --context {n_context} pairs")
    if unseen_users == len(users) and users:
        raise DataError(f"{data.source}: --unseen-users {unseen_users} leaves no seen user to train on")
    rng = np.random.default_rng(seed)
    unseen = set(rng.choice(eligible, size=unseen_users, replace=False).tolist()) if unseen_users else set()
    train, test = [data.rows[i] for i in pooled], []
    for user in users:
        rows = [data.rows[i] for i in rng.permutation(by_user[user])]
        if user in unseen:
            test += [{**r, "role": "context"} for r in rows[:n_context]]
            test += [{**r, "role": "query"} for r in rows[n_context:]]
        else:
            n_test = int(round(test_fraction * len(rows))) if len(rows) > 1 else 0
            train += rows[n_test:]
            test += rows[:n_test]
    if not test:
        raise DataError(f"{data.source}: nothing to test on: no unseen users, and --test-fraction {test_fraction} "
                        "holds out no pair of a seen user")
    return UserSplit(PreferenceSet(train, f"{data.source}:train"), PreferenceSet(test, f"{data.source}:test"),
                     [u for u in users if u not in unseen], [u for u in users if u in unseen])
