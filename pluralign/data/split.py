"""Split a real preference dataset by user into the evaluation protocol's layout (DESIGN.md).

Synthetic benchmarks come already split; a converted dataset (PRISM, P-SOUPS, ...) is one file of every
user's pairs. :func:`split_by_user` holds out whole users as *unseen*: their pairs become ``context`` rows
(the k labelled pairs a few-shot method adapts on, in order) and ``query`` rows (scored after adapting).
Every other user is *seen*: most of their pairs train, a fraction is held out for the test split without a
role. Rows without a user id can only train. Seeded, so a split is reproducible from its README.

Where users label the same pairs (PersonalLLM, UltraFeedback-P, P-SOUPS), holding out users does not hold out
pairs: a query pair was labelled in training by other users, so the figures measure recall of those labels, not
new pairs. ``hold_out_prompts`` holds out prompts as well: a fraction of the prompts is the test's, and every pair
on them is test (seen users' held-out rows, unseen users' queries), while unseen users' context pairs come from
the other prompts. Either way the card counts the test pairs that training holds (:func:`pair_key`).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from pluralign.data.contract import DataError, PreferenceSet


@dataclass
class UserSplit:
    """``train`` and ``test`` take the place of a benchmark folder's two files (``fit`` and ``evaluate``)."""

    train: PreferenceSet
    test: PreferenceSet
    seen_users: list[str]
    unseen_users: list[str]
    dropped: dict[str, int] = field(default_factory=dict)  # rows left out of both files, by reason

    def pairs_in_training(self) -> dict[str, tuple[int, int]]:
        """{"query": (in training, of), "held_out": (...)}: the test rows whose pair (prompt and both responses,
        in either order) some training row holds, by any user."""
        trained = {pair_key(r) for r in self.train}
        counts = {"query": [0, 0], "held_out": [0, 0]}
        for row in self.test:
            kind = {"query": "query", None: "held_out"}.get(row.get("role"))
            if kind:
                counts[kind][0] += pair_key(row) in trained
                counts[kind][1] += 1
        return {kind: (a, b) for kind, (a, b) in counts.items()}

    def card(self, source: str, seed: int, n_context: int, test_fraction: float, stratify: bool = False,
             hold_out_prompts: bool = False) -> str:
        n_context_rows = sum(r.get("role") == "context" for r in self.test)
        n_queries = sum(r.get("role") == "query" for r in self.test)
        overlap = self.pairs_in_training()
        flags = (" --stratify" if stratify else "") + (" --hold-out-prompts" if hold_out_prompts else "")
        return "\n".join([
            f"# {source}, split by user" + (" and prompt" if hold_out_prompts else ""),
            "",
            f"`pluralign data split {source} --unseen-users {len(self.unseen_users)} --context {n_context} "
            f"--test-fraction {test_fraction} --seed {seed}{flags}`",
            "",
            f"- train.jsonl: {len(self.train)} rows of {len(self.seen_users)} seen users"
            + (f" and {anonymous} rows without a user id (pooled: no user's vector learns from them)"
               if (anonymous := sum(r.get("user_id") is None for r in self.train)) else ""),
            f"- test.jsonl: {len(self.test) - n_context_rows - n_queries} held-out rows of seen users; "
            f"{len(self.unseen_users)} unseen users with {n_context_rows} context rows ({n_context} each, "
            f"adapt on the first k) and {n_queries} query rows",
            f"- unseen users: {', '.join(self.unseen_users)}",
            *([f"- held out by prompt: {test_fraction:g} of the prompts are the test's; unseen users' context pairs "
               "are on the other prompts"] if hold_out_prompts else []),
            f"- test pairs that training holds (the same prompt and responses, labelled by any user): "
            f"{overlap['query'][0]} of {overlap['query'][1]} query rows, {overlap['held_out'][0]} of "
            f"{overlap['held_out'][1]} held-out rows",
            *([f"- left out: {', '.join(f'{n} {why}' for why, n in self.dropped.items())}"] if self.dropped else []),
            "",
        ])


def _key(value) -> str:
    return json.dumps(value, sort_keys=True)


def prompt_key(row: dict) -> str | None:
    """A row's prompt (its text, chat or embedding) as a comparable key; None where it has none."""
    value = row.get("prompt", row.get("prompt_embedding"))
    return None if value is None else _key(value)


def pair_key(row: dict) -> str:
    """A pair whoever labelled it, whichever way: its prompt and its two responses, unordered."""
    columns = ("chosen", "rejected") if "chosen" in row else ("chosen_embedding", "rejected_embedding")
    return _key([prompt_key(row), sorted(_key(row.get(c)) for c in columns)])


def split_by_user(data: PreferenceSet, unseen_users: int | None = None, n_context: int = 16,
                  test_fraction: float = 0.2, seed: int = 0, stratify: bool = False,
                  hold_out_prompts: bool = False) -> UserSplit:
    """Hold out ``unseen_users`` users (default: a tenth of the eligible ones, at least one), drawn at random among
    those with more than ``n_context`` pairs (so each has a query left), and ``test_fraction`` of every seen user's
    pairs (but never the last: a seen user keeps a training pair). A user's pairs are shuffled before they are cut,
    so the context is not whatever the file happened to list first. ``stratify``: draw the unseen users group by
    group (a user's group is the ``group`` of most of their rows), in proportion to the eligible users of each, at
    least one per group while there are as many unseen users as groups, so a small group is not left out of the
    few-shot test; data without a ``group`` column cannot be stratified (an error, not a silent plain draw).
    An unseen user's query row that repeats a pair of their own context is left out (its answer is in the context).

    ``hold_out_prompts``: ``test_fraction`` of the distinct prompts (at least one, not all) are the test's. A seen
    user's rows on them are held out, the rest train; an unseen user (one with more than ``n_context`` pairs on
    the other prompts and one on the test's) adapts on ``n_context`` pairs of the other prompts and is scored on
    all of theirs on the test's; their other pairs, and rows without a user id on test prompts, are left out."""
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
    if hold_out_prompts:
        return _split_by_user_and_prompt(data, unseen_users, n_context, test_fraction, seed, stratify)
    by_user = _rows_by_user(data)
    pooled = by_user.pop(None, [])
    users = list(by_user)
    rng = np.random.default_rng(seed)
    # distinct pairs: a query that repeats a context pair is left out, so repeats cannot leave a user a query
    distinct = {u: len({pair_key(data.rows[i]) for i in rows}) for u, rows in by_user.items()}
    unseen = _draw_unseen(data, rng, by_user, [u for u in users if distinct[u] > n_context], unseen_users,
                          n_context, stratify, "distinct pairs")
    train, test, dropped = [data.rows[i] for i in pooled], [], Counter()
    for user in users:
        rows = [data.rows[i] for i in rng.permutation(by_user[user])]
        if user in unseen:
            test += _unseen_rows(rows[:n_context], rows[n_context:], dropped)
        else:
            n_test = min(int(round(test_fraction * len(rows))), len(rows) - 1)  # a seen user trains on one at least
            train += rows[n_test:]
            test += rows[:n_test]
    return _finished(data, train, test, users, unseen, dropped, test_fraction)


def _split_by_user_and_prompt(data: PreferenceSet, unseen_users: int | None, n_context: int, test_fraction: float,
                              seed: int, stratify: bool) -> UserSplit:
    """:func:`split_by_user` with ``hold_out_prompts``."""
    prompts = list(dict.fromkeys(prompt_key(r) for r in data.rows))
    if prompts == [None]:
        raise DataError(f"{data.source}: --hold-out-prompts, but no row has a prompt to hold out")
    if len(prompts) < 2:
        raise DataError(f"{data.source}: --hold-out-prompts needs two prompts at least, one to train on and one "
                        "to test on; the data has one")
    if test_fraction <= 0:
        raise DataError(f"--test-fraction {test_fraction}: with --hold-out-prompts it is the prompts held out for "
                        "the test, so it must be above 0")
    rng = np.random.default_rng(seed)
    n_test = min(max(1, int(round(test_fraction * len(prompts)))), len(prompts) - 1)
    held = {prompts[i] for i in rng.choice(len(prompts), size=n_test, replace=False)}
    by_user = _rows_by_user(data)
    pooled = by_user.pop(None, [])
    users = list(by_user)
    tested = [prompt_key(r) in held for r in data.rows]  # each row's prompt, read once
    on_test = {u: sum(tested[i] for i in rows) for u, rows in by_user.items()}
    eligible = [u for u in users if len(by_user[u]) - on_test[u] > n_context and on_test[u]]
    unseen = _draw_unseen(data, rng, by_user, eligible, unseen_users, n_context, stratify,
                          "pairs on the training prompts (and one on a test prompt)")
    train = [data.rows[i] for i in pooled if not tested[i]]
    test, dropped, absent = [], Counter(), set()
    dropped["rows without a user id on test prompts"] += len(pooled) - len(train)
    for user in users:
        order = rng.permutation(by_user[user])
        training = [data.rows[i] for i in order if not tested[i]]
        testing = [data.rows[i] for i in order if tested[i]]
        if user in unseen:
            test += _unseen_rows(training[:n_context], testing, dropped)
            dropped["pairs of unseen users on training prompts past their context"] += len(training) - n_context
        elif not training:  # no pair to train on: no seen user (the model would score them as nobody), nor unseen
            dropped["rows of users whose every pair is on a test prompt"] += len(testing)
            absent.add(user)
        else:
            train += training
            test += testing
    return _finished(data, train, test, [u for u in users if u not in absent], unseen, dropped, test_fraction)


def _rows_by_user(data: PreferenceSet) -> dict[str | None, list[int]]:
    by_user: dict[str | None, list[int]] = {}
    for i, user in enumerate(data.column("user_id")):
        by_user.setdefault(user, []).append(i)
    if not [u for u in by_user if u is not None]:
        raise DataError(f"{data.source}: no row has a user_id; a split by user needs them")
    return by_user


def _draw_unseen(data: PreferenceSet, rng: np.random.Generator, by_user: dict, eligible: list[str],
                 unseen_users: int | None, n_context: int, stratify: bool, what: str) -> set[str]:
    """The users held out as unseen, drawn among ``eligible`` (those with more than ``n_context`` ``what``)."""
    users = list(by_user)
    chosen_by_default = unseen_users is None
    if unseen_users is None:
        if not eligible:
            raise DataError(f"{data.source}: no user has more than --context {n_context} {what} to hold out as "
                            "unseen; lower --context, or pass --unseen-users 0")
        unseen_users = max(1, round(0.1 * len(eligible)))
    if unseen_users > len(eligible):
        raise DataError(f"{data.source}: --unseen-users {unseen_users}, but {len(eligible)} of its {len(users)} users "
                        f"have more than --context {n_context} {what}")
    if unseen_users == len(users) and chosen_by_default:
        raise DataError(f"{data.source}: one user, held out as unseen by default, leaves none to train on; "
                        "pass --unseen-users 0 to split their pairs")
    if unseen_users == len(users):
        raise DataError(f"{data.source}: --unseen-users {unseen_users} leaves no seen user to train on")
    if stratify and unseen_users:
        group_of = _user_groups(data, by_user)
        if missed := sorted({str(group_of[u]) for u in users if u is not None} - {str(group_of[u]) for u in eligible}):
            logging.getLogger("pluralign.data").warning(
                "%s: --stratify: no user of group(s) %s has more than --context %d %s, so none of them is drawn as "
                "unseen; lower --context to test them", data.source, ", ".join(missed), n_context, what)
        return _stratified(rng, eligible, group_of, unseen_users)
    return set(rng.choice(eligible, size=unseen_users, replace=False).tolist()) if unseen_users else set()


def _unseen_rows(context: list[dict], queries: list[dict], dropped: Counter) -> list[dict]:
    """An unseen user's context and query rows; a query that repeats one of their context pairs is left out."""
    asked = {pair_key(r) for r in context}
    kept = [r for r in queries if pair_key(r) not in asked]
    dropped["query rows repeating a pair of the user's own context"] += len(queries) - len(kept)
    return [{**r, "role": "context"} for r in context] + [{**r, "role": "query"} for r in kept]


def _finished(data: PreferenceSet, train: list[dict], test: list[dict], users: list, unseen: set[str],
              dropped: Counter, test_fraction: float) -> UserSplit:
    if not test:
        raise DataError(f"{data.source}: nothing to test on: no unseen users, and --test-fraction {test_fraction} "
                        "holds out no pair of a seen user")
    return UserSplit(PreferenceSet(train, f"{data.source}:train", checked=True),
                     PreferenceSet(test, f"{data.source}:test", checked=True),
                     [u for u in users if u not in unseen], [u for u in users if u in unseen],
                     {why: n for why, n in dropped.items() if n})


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
