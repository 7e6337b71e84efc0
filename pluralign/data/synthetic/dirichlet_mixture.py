"""``dirichlet-mixture``: users as Dirichlet-weighted mixtures of M linear base rewards.

The generating model behind MaxMin-RLHF's and MiCRo's mixture views (Chakraborty et al. 2024; Shen et al.
2025) and DPA's user directions: M base rewards r_m(x) = w_m · x; a user draws weights lambda_u ~
Dirichlet(alpha) and has reward r_u = sum_m lambda_um r_m; P(a > b) = sigmoid((r_u(a) - r_u(b)) / T).
A pair is controversial when the base rewards disagree on it. Feature benchmark; the group is the user's
dominant base reward.
"""

from __future__ import annotations

import numpy as np

from pluralign.data.synthetic._common import (
    Benchmark, Candidate, User, UserPrior, assemble, bt_prob, check_positive, check_size, check_sizes, dirichlet_users,
    disagree, draw_two, embedding_pairs, gaussian_items, prior_draws, unseen_dirichlet_users, vector,
)

TEMPERATURE = 0.24  # oracle accuracy about 0.88


def build(
    seed: int = 0,
    n_users: int = 32,
    n_unseen_users: int = 12,
    pairs_per_user: int = 100,
    test_pairs_per_user: int = 20,
    n_context: int = 16,
    n_query: int = 32,
    context: str = "random",
    n_components: int = 3,
    dim: int = 16,
    n_items: int = 500,
    dirichlet_alpha: float = 0.3,
    temperature: float = TEMPERATURE,
) -> Benchmark:
    check_sizes(n_users=n_users, n_unseen_users=n_unseen_users, pairs_per_user=pairs_per_user,
                     test_pairs_per_user=test_pairs_per_user, dim=dim)
    temperature = check_positive("temperature", temperature)
    dirichlet_alpha = check_positive("dirichlet_alpha", dirichlet_alpha)
    check_size("n_components", n_components, 2)
    check_size("n_items", n_items, 10)
    rng = np.random.default_rng(seed)
    # unit-norm base directions, so no component dominates the mixture by scale alone
    base = rng.standard_normal((n_components, dim))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    items = gaussian_items(rng, n_items, dim)

    def draw(rng: np.random.Generator, user: User, split: str) -> list[Candidate]:
        a, b = draw_two(rng, items[split])
        p_a = bt_prob(float(user.params @ a), float(user.params @ b), temperature)
        return [Candidate({"embedding": vector(a)}, {"embedding": vector(b)}, p_a, disagree(base @ (a - b)))]

    names = [f"component-{m}" for m in range(n_components)]
    seen = dirichlet_users(rng, "u", n_users, dirichlet_alpha, names, base)
    unseen = unseen_dirichlet_users(rng, seed, n_unseen_users, dirichlet_alpha, names, base)
    return assemble(
        "dirichlet-mixture",
        f"Users as Dirichlet({dirichlet_alpha}) mixtures of {n_components} linear base rewards over {dim}-dimensional "
        "item features. Feature benchmark (embeddings only); group = dominant base reward.",
        seen, unseen, draw, rng, pairs_per_user, test_pairs_per_user, n_context, n_query,
        notes=[f"oracle: P(a > b) = sigmoid(sum_m lambda_um w_m · (a - b) / {temperature}), unit-norm w_m",
               f"{n_items} Gaussian items, one in five held out for test and query pairs"],
        context=context,
        prior=UserPrior(prior_draws(seed, dirichlet_alpha, base),
                        lambda weights, rows: weights @ np.subtract(*embedding_pairs(rows)).T / temperature),
    )
