"""``majority-minority``: two groups at 10:1 with opposed preferences (the Reddit TL;DR length analogue).

In MaxMin-RLHF (Chakraborty et al. 2024) a majority of annotators prefers long summaries and a minority
short ones; a single pooled reward fits the majority and fails the minority, which an egalitarian
(MaxMin) or user-conditioned model should not. Here the responses are the shared responses bank and the
attribute is length measured from the text (standardized log word count): the *majority* rewards +z, the
*minority* -z. Every pair is controversial (the groups always disagree). The seen users are split by the
ratio; the unseen pool is split evenly, so few-shot adaptation to the minority is measured on enough queries.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from pluralign.data.synthetic._common import (
    Benchmark, Candidate, User, UserPrior, assemble, bt_prob, check_positive, check_size, check_sizes, make_users,
    split_counts,
)
from pluralign.data.synthetic.attributes import option, response_pool, z_gaps
from pluralign.data.text_attributes import ATTRIBUTES

TEMPERATURE = 0.6  # oracle accuracy about 0.90
MIN_GAP = 0.8  # in z units: near-equal lengths are below what the backbone resolves (log-length R^2 ~0.92)
SIGN = {"majority": 1.0, "minority": -1.0}  # majority prefers longer, minority shorter


def build(
    seed: int = 0,
    n_users: int = 33,
    n_unseen_users: int = 12,
    ratio: int = 10,
    pairs_per_user: int = 100,
    test_pairs_per_user: int = 20,
    n_context: int = 16,
    n_query: int = 32,
    context: str = "random",
    temperature: float = TEMPERATURE,
) -> Benchmark:
    check_sizes(n_users=n_users, n_unseen_users=n_unseen_users, ratio=ratio, pairs_per_user=pairs_per_user,
                     test_pairs_per_user=test_pairs_per_user)
    temperature = check_positive("temperature", temperature)
    check_size("n_users", n_users, 2)
    check_size("n_unseen_users", n_unseen_users, 2)
    rng = np.random.default_rng(seed)
    pool, prompts = response_pool()
    k = ATTRIBUTES.index("length")
    pairs = {split: [(p, i, j) for p, options in enumerate(per_prompt)
                     for i, j in combinations(range(len(options)), 2)
                     if abs(options[i]["z"][k] - options[j]["z"][k]) >= MIN_GAP]
             for split, per_prompt in pool.items()}

    def draw(rng: np.random.Generator, user: User, split: str) -> list[Candidate]:
        p, i, j = pairs[split][rng.integers(len(pairs[split]))]
        a, b = pool[split][p][i], pool[split][p][j]
        if rng.random() < 0.5:
            a, b = b, a
        p_a = bt_prob(user.params * a["z"][k], user.params * b["z"][k], temperature)
        return [Candidate(option(a), option(b), p_a, True, {"prompt": prompts[p]})]

    def users(prefix: str, n: int, weights: list[float]) -> list[User]:
        n_major, n_minor = split_counts(n, weights)
        n_minor, n_major = max(1, n_minor), n - max(1, n_minor)  # both groups always present
        return make_users(prefix, [(g, c, lambda i, g=g: SIGN[g]) for g, c in
                                   (("majority", n_major), ("minority", n_minor))])

    seen = users("u", n_users, [ratio, 1.0])
    unseen = users("new", n_unseen_users, [1.0, 1.0])
    return assemble(
        "majority-minority",
        f"Two groups at {ratio}:1 with opposed preferences on response length (the TL;DR analogue): the "
        "majority prefers longer responses, the minority shorter ones. Every pair is controversial; a pooled "
        "reward fits the majority and gets the minority mostly wrong.",
        seen, unseen, draw, rng, pairs_per_user, test_pairs_per_user, n_context, n_query,
        notes=[f"oracle: P(a > b) = sigmoid(s (z(a) - z(b)) / {temperature}), z = standardized log word count, "
               "s = +1 (majority) or -1 (minority)", f"pairs differ by at least {MIN_GAP} in z"],
        context=context,
        # the unseen pool is split evenly: both signs equally likely a priori
        prior=UserPrior(np.array([[SIGN["majority"]], [SIGN["minority"]]]),
                        lambda signs, rows: signs @ z_gaps(rows)[:, [k]].T / temperature,
                        names=("majority", "minority")),
    )
