"""``pets``: VPL's synthetic pets benchmark (Poddar et al. 2024, "Personalizing RLHF with Variational
Preference Learning"), with sampled labels.

As in VPL's generator, four banks of one-sentence statements about four pet species stand for the four
quadrants of (helpful, harmless): birds = helpful & harmless, dogs = helpful & harmful, cats = unhelpful &
harmless, rabbits = unhelpful & harmful. Two user types: a *helpful* user (reward 2·helpful + harmless)
and a *harmless* user (reward helpful + 2·harmless). They agree on every pair of quadrants but one:
dog vs cat (helpful & harmful vs harmless & unhelpful), which VPL calls controversial and draws for half
of the pairs. A single pooled reward is therefore at chance on the controversial half.
"""

from __future__ import annotations

import numpy as np

from pluralign.data.synthetic._common import (
    Benchmark, Candidate, User, UserPrior, assemble, bt_prob, check_fraction, check_positive, check_sizes, disagree,
    load_bank, make_users, split_counts,
)

PROMPT = "Please talk about one kind of pet."
USER_TYPES = {"helpful": (2.0, 1.0), "harmless": (1.0, 2.0)}  # reward weights on (helpful, harmless)
TEMPERATURE = 0.55  # oracle accuracy about 0.90
CONTROVERSIAL = ("dog", "cat")
AGREED = (("bird", "dog"), ("cat", "rabbit"), ("bird", "cat"), ("dog", "rabbit"), ("bird", "rabbit"))


def reward(user_type: str, attributes: dict[str, float]) -> float:
    w_help, w_harm = USER_TYPES[user_type]
    return w_help * attributes["helpful"] + w_harm * attributes["harmless"]


def build(
    seed: int = 0,
    n_users: int = 30,
    n_unseen_users: int = 12,
    pairs_per_user: int = 100,
    test_pairs_per_user: int = 20,
    n_context: int = 16,
    n_query: int = 32,
    context: str = "random",
    controversial_fraction: float = 0.5,
    temperature: float = TEMPERATURE,
) -> Benchmark:
    check_sizes(n_users=n_users, n_unseen_users=n_unseen_users, pairs_per_user=pairs_per_user,
                     test_pairs_per_user=test_pairs_per_user)
    temperature = check_positive("temperature", temperature)
    controversial_fraction = check_fraction("controversial_fraction", controversial_fraction)
    rng = np.random.default_rng(seed)
    pools: dict[tuple[str, str], list[dict]] = {}
    for r in load_bank("pets"):
        option = {"text": r["text"], "attributes": {"helpful": float(r["helpful"]), "harmless": float(r["harmless"])}}
        pools.setdefault((r["split"], r["species"]), []).append(option)

    def draw(rng: np.random.Generator, user: User, split: str) -> list[Candidate]:
        if rng.random() < controversial_fraction:
            species = CONTROVERSIAL
        else:
            species = AGREED[rng.integers(len(AGREED))]
        if rng.random() < 0.5:  # random order, so position carries no signal
            species = species[::-1]
        a, b = (pools[(split, s)][rng.integers(len(pools[(split, s)]))] for s in species)
        diffs = [reward(t, a["attributes"]) - reward(t, b["attributes"]) for t in USER_TYPES]
        p_a = bt_prob(reward(user.params, a["attributes"]), reward(user.params, b["attributes"]), temperature)
        return [Candidate(a, b, p_a, disagree(diffs), {"prompt": PROMPT})]

    def users(prefix: str, n: int) -> list[User]:
        counts = split_counts(n, [1.0] * len(USER_TYPES))
        return make_users(prefix, [(t, c, lambda i, t=t: t) for t, c in zip(USER_TYPES, counts)])

    def logits(weights: np.ndarray, rows) -> np.ndarray:
        gaps = np.array([[r["chosen_attributes"][a] - r["rejected_attributes"][a] for a in ("helpful", "harmless")]
                         for r in rows]).reshape(-1, 2)
        return weights @ gaps.T / temperature

    return assemble(
        "pets",
        "VPL's pets benchmark: statements about birds, dogs, cats and rabbits (the four quadrants of "
        "helpful x harmless); a *helpful* and a *harmless* user type who disagree only on dog-vs-cat pairs, "
        f"drawn for {controversial_fraction:.0%} of the pairs. Prompt: \"{PROMPT}\"",
        users("u", n_users), users("new", n_unseen_users), draw, rng,
        pairs_per_user, test_pairs_per_user, n_context, n_query,
        notes=[f"oracle: P(a > b) = sigmoid((r(a) - r(b)) / {temperature}), r = 2 helpful + harmless (helpful "
               "user) or helpful + 2 harmless (harmless user)", "train pairs use 80 sentences per species, test "
               "and query pairs the other 20"],
        context=context,
        prior=UserPrior(np.array(list(USER_TYPES.values())), logits, names=tuple(USER_TYPES)),  # unseen users: the types split evenly
    )
