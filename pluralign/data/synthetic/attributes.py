"""``attributes``: an UltraFeedback-P analogue with attributes measured from the text itself.

UltraFeedback-P (as used by PAL and by P-ShareLoRA/VPL follow-ups) turns UltraFeedback's four per-aspect
ratings into user types who each care about one aspect. Here the aspects are the four measurable
attributes of :mod:`pluralign.data.text_attributes` (length, readability, formality, sentiment) of 1,600
composed responses to 25 prompts; each attribute is standardized over the bank (length in log words) and a
user's reward is ``w · z``: by default four single-attribute user types (``w`` one-hot), or with
``user_mix="dirichlet"`` a Dirichlet mixture per user. Both options of a pair answer the same prompt.

With ``prompt_hints`` > 0 that fraction of a user's prompts states the user's criterion (``HINTS``: "Please
answer in detail." for the length user, ...), as the RPR data of MiCRo states per-prompt criteria: the
context-aware routing premise of MiCRo, under which a router has something to route on. Off by default.

Half the pairs are *consensus* pairs (one response is higher on all four attributes) and half are
*controversial* 2-vs-2 pairs (two attributes favour each response), so a single pooled reward is at chance
on the controversial half by construction.

The bank's attributes co-vary, so its three ways of splitting the four attributes two against two are not
equally common: {length, formality} against {readability, sentiment} is about half of the controversial
pairs (``split_shares``). In those pairs the length and formality users agree, as do the readability and
sentiment users, which makes those types harder to tell apart than the others. ``balanced_splits=True``
draws the split uniformly first, then a pair of that split: every two types then disagree on two thirds of
the controversial pairs. Off by default.
"""

from __future__ import annotations

from functools import lru_cache
import numpy as np

from pluralign.data.contract import DataError
from pluralign.data.synthetic._common import (
    Benchmark, Candidate, User, UserPrior, assemble, bt_prob, check_fraction, check_positive, check_sizes,
    dirichlet_users, disagree, load_bank, make_users, prior_draws, split_counts, unseen_dirichlet_users,
)
from pluralign.data.text_attributes import ATTRIBUTES

TEMPERATURE = 0.65  # oracle accuracy about 0.89
USER_MIXES = ("single", "dirichlet")
MIN_GAP = 0.5  # every attribute must differ by this much (z units): no ties, no pairs decided by decoding noise
HINTS = {  # the direction each single-attribute user prefers (higher z), said in the prompt
    "length": "Please answer in detail.",
    "readability": "Please keep it simple to read.",
    "formality": "Please answer formally.",
    "sentiment": "Please keep the tone upbeat.",
}


def hint_log_likelihood(fraction: float):
    """log P(a row's prompt | user) under ``prompt_hints=fraction``: a prompt states its user's criterion (the
    dominant attribute's HINTS) with probability ``fraction``, else none; another user's hint is impossible."""
    def log_likelihood(weights: np.ndarray, rows: list[dict]) -> np.ndarray:
        dominant = np.argmax(weights, axis=1)  # [users]
        stated = [next((k for k, a in enumerate(ATTRIBUTES) if str(r.get("prompt", "")).endswith(HINTS[a])), -1)
                  for r in rows]
        with np.errstate(divide="ignore"):  # log 0 = -inf: that user could not have written this prompt
            return np.stack([np.full(len(weights), np.log1p(-fraction)) if s < 0
                             else np.where(dominant == s, np.log(fraction), -np.inf) for s in stated], axis=1)
    return log_likelihood


def standardize(attributes: dict[str, float], stats: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """z-scores of the four attributes (length on a log scale: 10 -> 20 words matters more than 100 -> 110)."""
    x = np.array([np.log(attributes["length"]) if k == "length" else attributes[k] for k in ATTRIBUTES])
    return (x - stats[0]) / stats[1]


@lru_cache(maxsize=None)
def response_pool() -> tuple[dict[str, list[list[dict]]], list[str]]:
    """The responses bank as {split: [options of prompt 0, options of prompt 1, ...]} and the prompts.

    Each option holds its ``text``, measured ``attributes`` and standardized vector ``z`` (bank statistics).
    """
    bank = load_bank("responses")
    raw = np.array([[np.log(r["attributes"]["length"]) if k == "length" else r["attributes"][k]
                     for k in ATTRIBUTES] for r in bank])
    stats = (raw.mean(0), raw.std(0))
    prompts = list(dict.fromkeys(r["prompt_id"] for r in bank))
    text_of = {r["prompt_id"]: r["prompt"] for r in bank}
    pool: dict[str, list[list[dict]]] = {s: [[] for _ in prompts] for s in ("train", "test")}
    for r in bank:
        option = {"text": r["text"], "attributes": dict(r["attributes"]), "z": standardize(r["attributes"], stats)}
        pool[r["split"]][prompts.index(r["prompt_id"])].append(option)
    return pool, [text_of[p] for p in prompts]


@lru_cache(maxsize=None)
def pair_kinds(min_gap: float) -> dict[tuple[str, bool], list[tuple[int, int, int]]]:
    """Every same-prompt pair (prompt, i, j) whose attributes all differ by >= ``min_gap``, keyed by (split,
    controversial): all four attributes agree (consensus) or they split two against two (controversial)."""
    pool, _ = response_pool()
    kinds: dict[tuple[str, bool], list[tuple[int, int, int]]] = {}
    for split, per_prompt in pool.items():
        for p, options in enumerate(per_prompt):
            z = np.array([o["z"] for o in options])
            i, j = np.triu_indices(len(options), k=1)
            d = z[i] - z[j]
            n_up = (d > 0).sum(1)
            clear = (np.abs(d) >= min_gap).all(1)
            for controversial, keep in ((False, clear & ((n_up == 0) | (n_up == 4))), (True, clear & (n_up == 2))):
                kinds.setdefault((split, controversial), []).extend((p, int(a), int(b)) for a, b in zip(i[keep], j[keep]))
    return kinds


def split_of(d: np.ndarray) -> int:
    """Which two-against-two split of the attributes a controversial gap vector ``d`` [4] makes: 0, 1 or 2
    for the attribute that sides with the first one, length (readability, formality, sentiment)."""
    first = d[0] > 0
    return int(np.nonzero((d[1:] > 0) == first)[0][0])


@lru_cache(maxsize=None)
def controversial_by_split(min_gap: float) -> dict[str, list[list[tuple[int, int, int]]]]:
    """The controversial pairs of :func:`pair_kinds` per split, grouped by :func:`split_of`."""
    pool, _ = response_pool()
    groups: dict[str, list[list[tuple[int, int, int]]]] = {}
    for split in ("train", "test"):
        groups[split] = [[], [], []]
        for p, i, j in pair_kinds(min_gap)[(split, True)]:
            groups[split][split_of(pool[split][p][i]["z"] - pool[split][p][j]["z"])].append((p, i, j))
    return groups


def split_shares(split: str = "train") -> dict[str, float]:
    """The bank's share of controversial pairs in each two-against-two split, named by its two sides."""
    groups = controversial_by_split(MIN_GAP)[split]
    total = sum(len(g) for g in groups)
    names = {}
    for s, g in enumerate(groups):
        side = {0, s + 1}
        names[" + ".join(ATTRIBUTES[a] for a in sorted(side)) + " vs " +
              " + ".join(ATTRIBUTES[a] for a in range(4) if a not in side)] = len(g) / total
    return names


@lru_cache(maxsize=None)
def z_of_text() -> dict[str, np.ndarray]:
    """Every bank response's standardized attribute vector by its text (a text's attributes are its own)."""
    pool, _ = response_pool()
    return {o["text"]: o["z"] for options in (*pool["train"], *pool["test"]) for o in options}


def z_gaps(rows) -> np.ndarray:
    """z(chosen) − z(rejected) of response-bank rows, [n, 4]."""
    z = z_of_text()
    return np.array([z[r["chosen"]] - z[r["rejected"]] for r in rows]).reshape(-1, len(ATTRIBUTES))


def option(o: dict) -> dict:
    """The row-facing part of a pool option (no internal z vector)."""
    return {"text": o["text"], "attributes": o["attributes"]}


def build(
    seed: int = 0,
    n_users: int = 32,
    n_unseen_users: int = 12,
    pairs_per_user: int = 150,
    test_pairs_per_user: int = 20,
    n_context: int = 16,
    n_query: int = 32,
    context: str = "random",
    controversial_fraction: float = 0.5,
    user_mix: str = "single",
    dirichlet_alpha: float = 0.5,
    temperature: float = TEMPERATURE,
    prompt_hints: float = 0.0,
    balanced_splits: bool = False,
) -> Benchmark:
    check_sizes(n_users=n_users, n_unseen_users=n_unseen_users, pairs_per_user=pairs_per_user,
                     test_pairs_per_user=test_pairs_per_user)
    temperature = check_positive("temperature", temperature)
    dirichlet_alpha = check_positive("dirichlet_alpha", dirichlet_alpha)
    controversial_fraction = check_fraction("controversial_fraction", controversial_fraction)
    prompt_hints = check_fraction("prompt_hints", prompt_hints)
    if user_mix not in USER_MIXES:
        raise DataError(f"user_mix must be one of {USER_MIXES}, got {user_mix!r}")
    if user_mix == "single" and dirichlet_alpha != 0.5:  # it would be ignored: the data as without it
        raise DataError(f"dirichlet_alpha={dirichlet_alpha} applies only with user_mix='dirichlet' "
                        "(user_mix='single' gives each user one attribute)")
    rng = np.random.default_rng(seed)
    pool, prompts = response_pool()
    kinds = pair_kinds(MIN_GAP)

    if not isinstance(balanced_splits, bool):
        raise DataError(f"balanced_splits must be true or false, got {balanced_splits!r}")
    by_split = controversial_by_split(MIN_GAP) if balanced_splits else None

    def draw(rng: np.random.Generator, user: User, split: str) -> list[Candidate]:
        controversial = bool(rng.random() < controversial_fraction)
        pairs = kinds[(split, controversial)]
        if controversial and balanced_splits:  # no extra draw when off: default data stays the same
            pairs = by_split[split][rng.integers(3)]
        p, i, j = pairs[rng.integers(len(pairs))]
        a, b = pool[split][p][i], pool[split][p][j]
        if rng.random() < 0.5:
            a, b = b, a
        p_a = bt_prob(float(user.params @ a["z"]), float(user.params @ b["z"]), temperature)
        prompt = prompts[p]
        if prompt_hints > 0 and rng.random() < prompt_hints:  # no draw when off: default data stays the same
            prompt = f"{prompt} {HINTS[user.group]}"
        return [Candidate(option(a), option(b), p_a, disagree(a["z"] - b["z"]), {"prompt": prompt})]

    def users(prefix: str, n: int) -> list[User]:
        if user_mix == "single":  # no draw: the types split evenly
            counts = split_counts(n, [1.0] * len(ATTRIBUTES))
            return make_users(prefix, [(k, c, lambda i, k=k: np.eye(len(ATTRIBUTES))[ATTRIBUTES.index(k)])
                                       for k, c in zip(ATTRIBUTES, counts)])
        if prefix == "new":
            return unseen_dirichlet_users(rng, seed, n, dirichlet_alpha, ATTRIBUTES)
        return dirichlet_users(rng, prefix, n, dirichlet_alpha, ATTRIBUTES)

    seen, unseen = users("u", n_users), users("new", n_unseen_users)
    types = np.eye(len(ATTRIBUTES))
    prior = UserPrior(types if user_mix == "single" else prior_draws(seed, dirichlet_alpha, types),
                      lambda weights, rows: weights @ z_gaps(rows).T / temperature,
                      names=tuple(ATTRIBUTES) if user_mix == "single" else None,
                      prompt_log_likelihood=hint_log_likelihood(prompt_hints) if prompt_hints > 0 else None)
    mix = ("one attribute per user (four user types)" if user_mix == "single"
           else f"Dirichlet({dirichlet_alpha}) mixtures over the attributes (group = dominant attribute)")
    return assemble(
        "attributes",
        "UltraFeedback-P analogue: responses to 25 prompts (pets, cooking, travel, study, health) with four "
        f"attributes measured from the text (length, readability, formality, sentiment); users: {mix}. "
        f"{controversial_fraction:.0%} of the pairs split the attributes two against two (controversial).",
        seen, unseen, draw, rng, pairs_per_user, test_pairs_per_user, n_context, n_query,
        notes=[
            f"oracle: P(a > b) = sigmoid(w · (z(a) - z(b)) / {temperature}), z = attributes standardized over the "
            "bank (length as log words)",
            f"every attribute differs by at least {MIN_GAP} z within a pair",
            "test and query pairs use held-out responses (one in four per prompt)",
            *([f"{prompt_hints:.0%} of the prompts state the user's criterion (group = dominant attribute)"]
              if prompt_hints > 0 else []),
            *(["controversial pairs: each two-against-two split of the attributes equally often"]
              if balanced_splits else []),
        ],
        context=context,
        prior=prior,
    )
