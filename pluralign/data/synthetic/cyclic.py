"""``cyclic``: intransitive (rock-paper-scissors) triples, the case for the General Preference Model
(Zhang et al. 2024, "Beyond Bradley-Terry Models: A General Preference Model for Language Model Alignment").

Each triple holds three items. Group g reads a 2-d plane of the features (dims 2g, 2g+1), where the triple's
items sit at angles 120 degrees apart; the preference is GPM's skew-symmetric score on that plane,
s_g(a, b) = v_a^T R v_b = rho_a rho_b sin(theta_a - theta_b) with R = [[0, -1], [1, 0]], and
P(a > b) = sigmoid(s_g(a, b) / T). Around a triangle every item beats one and loses to one, so any scalar
reward orders at most 2 of a triple's 3 pairs right (accuracy <= 2/3), while a skew-symmetric model can
reach the oracle. Each group's orientation is drawn per triple, so on about half the triples the groups
disagree (controversial). All three pairs of a triple go to the same user, one after another; remaining
dimensions are noise.
"""

from __future__ import annotations

import numpy as np

from pluralign.data.synthetic._common import (
    Benchmark, Candidate, User, UserPrior, assemble, check_positive, check_size, check_sizes, disagree, embedding_pairs,
    make_users, sigmoid, split_counts, vector,
)

TEMPERATURE = 0.4  # oracle accuracy about 0.90


def skew_score(a: np.ndarray, b: np.ndarray, group: int) -> float:
    """GPM score on group ``group``'s plane: v_a^T R v_b with R = [[0, -1], [1, 0]]."""
    (ax, ay), (bx, by) = a[2 * group: 2 * group + 2], b[2 * group: 2 * group + 2]
    return ay * bx - ax * by


def make_triples(rng: np.random.Generator, n: int, dim: int, n_groups: int) -> np.ndarray:
    """(n, 3, dim) features: per group, three points 120 degrees apart with a random offset and orientation."""
    x = rng.standard_normal((n, 3, dim)) * 0.5  # noise dimensions
    for g in range(n_groups):
        offset = rng.uniform(0, 2 * np.pi, size=(n, 1))
        orientation = rng.choice([-1.0, 1.0], size=(n, 1))
        theta = offset + orientation * np.arange(3) * 2 * np.pi / 3
        radius = rng.uniform(0.8, 1.25, size=(n, 3))
        x[:, :, 2 * g] = radius * np.cos(theta)
        x[:, :, 2 * g + 1] = radius * np.sin(theta)
    return np.round(x, 5)


def build(
    seed: int = 0,
    n_users: int = 30,
    n_unseen_users: int = 12,
    pairs_per_user: int = 99,
    test_pairs_per_user: int = 21,
    n_context: int = 18,
    n_query: int = 33,
    context: str = "random",
    n_groups: int = 2,
    dim: int = 16,
    n_triples: int = 400,
    temperature: float = TEMPERATURE,
) -> Benchmark:
    check_sizes(n_users=n_users, n_unseen_users=n_unseen_users, pairs_per_user=pairs_per_user,
                     test_pairs_per_user=test_pairs_per_user, n_groups=n_groups)
    temperature = check_positive("temperature", temperature)
    check_size("dim", dim, 2 * n_groups)
    check_size("n_triples", n_triples, 5)
    rng = np.random.default_rng(seed)
    triples = make_triples(rng, n_triples, dim, n_groups)
    held_out = np.arange(n_triples) % 5 == 4
    by_split = {"train": triples[~held_out], "test": triples[held_out]}

    def draw(rng: np.random.Generator, user: User, split: str) -> list[Candidate]:
        triple = by_split[split][rng.integers(len(by_split[split]))]
        out = []
        for i, j in rng.permutation([(0, 1), (1, 2), (2, 0)]):
            a, b = (triple[i], triple[j]) if rng.random() < 0.5 else (triple[j], triple[i])
            diffs = [skew_score(a, b, g) for g in range(n_groups)]
            p_a = sigmoid(skew_score(a, b, user.params) / temperature)
            out.append(Candidate({"embedding": vector(a)}, {"embedding": vector(b)}, p_a, disagree(diffs)))
        return out

    def logits(groups: np.ndarray, rows) -> np.ndarray:
        c, r = embedding_pairs(rows)
        scores = [[skew_score(a, b, int(g)) for a, b in zip(c, r)] for g in groups]
        return np.array(scores).reshape(len(groups), -1) / temperature

    def users(prefix: str, n: int) -> list[User]:
        counts = split_counts(n, [1.0] * n_groups)
        return make_users(prefix, [(f"plane-{g}", c, lambda i, g=g: g) for g, c in enumerate(counts)])

    return assemble(
        "cyclic",
        f"Intransitive rock-paper-scissors triples over {dim}-dimensional features; {n_groups} groups each play "
        "the game on their own 2-d plane of the features (GPM's skew-symmetric score), with orientations drawn "
        "per triple so the groups disagree on about half. Any scalar reward is capped at 2/3 accuracy.",
        users("u", n_users), users("new", n_unseen_users), draw, rng,
        pairs_per_user, test_pairs_per_user, n_context, n_query,
        notes=[f"oracle: P(a > b) = sigmoid(rho_a rho_b sin(theta_a - theta_b) / {temperature}) on the group's plane",
               "rows come in whole triples (3 consecutive rows of one user), so counts are multiples of 3",
               f"{n_triples} triples, one in five held out for test and query pairs"],
        context=context,
        prior=UserPrior(np.arange(n_groups), logits, names=tuple(f"plane-{g}" for g in range(n_groups))),
    )
