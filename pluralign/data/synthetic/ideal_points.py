"""``ideal-points``: PAL's ideal-point model of plural preferences (Chen et al. 2024, "PAL: Pluralistic
Alignment Framework for Learning from Heterogeneous Preferences").

K prototypes (ideal points) live in the item feature space; each user is a point on the simplex over the
prototypes (Dirichlet weights) and their own ideal point is the mix a_u = sum_k w_uk p_k. A user prefers
the item closer to a_u: r_u(x) = -||x - a_u||^2 and P(a > b) = sigmoid((r_u(a) - r_u(b)) / T). A pair is
controversial when the K prototype users disagree on it. Feature benchmark: rows carry
``chosen_embedding``/``rejected_embedding``; the group is the user's dominant prototype.
"""

from __future__ import annotations

import numpy as np

from pluralign.data.synthetic._common import (
    Benchmark, Candidate, User, UserPrior, assemble, bt_prob, check_positive, check_size, check_sizes, dirichlet_users,
    disagree, draw_two, embedding_pairs, gaussian_items, prior_draws, unseen_dirichlet_users, vector,
)

TEMPERATURE = 2.0  # oracle accuracy about 0.90 at the default sizes


def reward(ideal_point: np.ndarray, x: np.ndarray) -> float:
    return -float(np.sum((x - ideal_point) ** 2))


def build(
    seed: int = 0,
    n_users: int = 32,
    n_unseen_users: int = 12,
    pairs_per_user: int = 100,
    test_pairs_per_user: int = 20,
    n_context: int = 16,
    n_query: int = 32,
    context: str = "random",
    n_prototypes: int = 3,
    dim: int = 16,
    n_items: int = 500,
    dirichlet_alpha: float = 0.3,
    temperature: float = TEMPERATURE,
) -> Benchmark:
    check_sizes(n_users=n_users, n_unseen_users=n_unseen_users, pairs_per_user=pairs_per_user,
                     test_pairs_per_user=test_pairs_per_user, dim=dim)
    temperature = check_positive("temperature", temperature)
    dirichlet_alpha = check_positive("dirichlet_alpha", dirichlet_alpha)
    check_size("n_prototypes", n_prototypes, 2)
    check_size("n_items", n_items, 10)
    rng = np.random.default_rng(seed)
    prototypes = rng.standard_normal((n_prototypes, dim))
    items = gaussian_items(rng, n_items, dim)

    def draw(rng: np.random.Generator, user: User, split: str) -> list[Candidate]:
        a, b = draw_two(rng, items[split])
        diffs = [reward(p, a) - reward(p, b) for p in prototypes]
        p_a = bt_prob(reward(user.params, a), reward(user.params, b), temperature)
        return [Candidate({"embedding": vector(a)}, {"embedding": vector(b)}, p_a, disagree(diffs))]

    names = [f"prototype-{m}" for m in range(n_prototypes)]
    seen = dirichlet_users(rng, "u", n_users, dirichlet_alpha, names, prototypes)
    unseen = unseen_dirichlet_users(rng, seed, n_unseen_users, dirichlet_alpha, names, prototypes)

    def logits(ideal: np.ndarray, rows) -> np.ndarray:
        c, r = embedding_pairs(rows)
        # ||r − a||² − ||c − a||² = ||r||² − ||c||² − 2 aᵀ(r − c), for every ideal point a at once
        return ((r ** 2).sum(1) - (c ** 2).sum(1) - 2 * ideal @ (r - c).T) / temperature

    return assemble(
        "ideal-points",
        f"PAL-style ideal points: {n_prototypes} prototypes in a {dim}-dimensional feature space; each user is a "
        f"Dirichlet({dirichlet_alpha}) point on the simplex over them and prefers the item nearer their ideal "
        "point. Feature benchmark (embeddings only); group = dominant prototype.",
        seen, unseen, draw, rng, pairs_per_user, test_pairs_per_user, n_context, n_query,
        notes=[f"oracle: P(a > b) = sigmoid((||b - a_u||^2 - ||a - a_u||^2) / {temperature})",
               f"{n_items} Gaussian items, one in five held out for test and query pairs"],
        context=context,
        prior=UserPrior(prior_draws(seed, dirichlet_alpha, prototypes), logits),
    )
