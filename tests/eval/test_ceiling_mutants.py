"""The Bayes few-shot ceiling by hand: what test_ceiling.py leaves open."""

from __future__ import annotations

import numpy as np

from pluralign.data.synthetic._common import UserPrior
from pluralign.eval.ceiling import bayes_few_shot, chosen_order, posterior_predictive


def by_type() -> UserPrior:
    """Users 0, 1, 2, equally likely; a row's logit for user u is row["l"][u]."""
    return UserPrior(np.arange(3), lambda users, rows: np.array([[r["l"][int(u)] for r in rows] for u in users],
                                                                dtype=float).reshape(len(users), len(rows)))


def test_the_next_question_follows_the_answer_given() -> None:
    """Users A, B, C. Pair 0 (logits +4, +4, −4) tells C from A and B: asked first (gain 0.55 nats against 0.33).
    Its stored answer, chosen wins, points to A or B, so pair 1 (+3, −3, 0), which tells A from B, comes next, not
    pair 2 (0, +3, −3), which tells B from C."""
    pool = [{"l": [4, 4, -4]}, {"l": [3, -3, 0]}, {"l": [0, 3, -3]}]
    assert chosen_order(by_type(), pool, 3) == [0, 1, 2]


def test_a_user_the_context_cannot_place_is_an_exact_tie() -> None:
    """Users with logits +2, 0, −2 on a pair, no context: the predictive is 0.5 (σ(2) + ½ + σ(−2) over 3, which
    float arithmetic leaves at 0.49999999999999994 unless rounded), so the row scores half, as a coin flip."""
    row = {"l": [2.0, 0.0, -2.0], "role": "query", "user_id": "n", "oracle_p": 0.9}
    assert posterior_predictive(by_type(), [], [row])[0] == 0.5
    report = bayes_few_shot(by_type(), [row], shots=(0,))
    assert report["unseen"]["0"]["accuracy"] == 0.5
