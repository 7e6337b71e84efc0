"""The Bayes few-shot ceiling: how well *any* method can do on unseen users from k context pairs.

A predictor that knows what no method is given — the benchmark's true rewards, temperature and prior
over users (:class:`~pluralign.data.synthetic._common.UserPrior`) — takes the posterior over users from
an unseen user's first k context pairs,

    p(u | C_k) ∝ p(u) Π_{(c, r) ∈ C_k} σ(ℓ_u(c, r)),

and predicts each query pair with the posterior predictive P(c ≻ r | C_k) = Σ_u p(u | C_k) σ(ℓ_u(c, r))
(a sum over the types, or a Monte Carlo average over prior draws for continuous users). Where a prompt tells of
its user (``attributes`` with ``prompt_hints``), every prompt the learner reads is evidence too: the context's,
and the query's own, p(u | C_k, x_q) ∝ p(u | C_k) p(x_q | u). No predictor
has a higher expected accuracy given the same pairs; the oracle, which knows the user, bounds the
benchmark. On one draw of a dozen unseen users a method can land above it by chance, not in expectation.

With chosen questions (``active``) the Bayes learner asks its own: each next context pair is the one of largest
expected information gain under the true posterior given the questions asked so far (their answers and prompts) (:func:`~pluralign.methods.active.greedy_order`). Greedy
questions are not the best k questions, so that row is the reference of the protocol rather than its bound.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np
import torch

from pluralign.data.synthetic._common import UserPrior
from pluralign.eval.metrics import preference_metrics, round_floats
from pluralign.eval.protocol import DEFAULT_SHOTS
from pluralign.methods.active import reweighted_order

CEILING = "bayes-ceiling"  # its entry beside the methods in bench results, tables and plots


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|


def log_posterior(prior: UserPrior, context: Sequence[dict]) -> np.ndarray:
    """log P(user | context) up to a constant, for every user of the prior (one per row of ``params``)."""
    log_post = np.zeros(len(prior.params)) if prior.log_weights is None else np.array(prior.log_weights, float)
    if len(context):
        log_post = log_post + log_sigmoid(prior.logits(prior.params, context)).sum(1)
        if prior.prompt_log_likelihood is not None:
            log_post = log_post + prior.prompt_log_likelihood(prior.params, context).sum(1)
    return log_post


def posterior_predictive(prior: UserPrior, context: Sequence[dict], queries: Sequence[dict]) -> np.ndarray:
    """P(chosen ≻ rejected | context) for each query row, under the generator's prior and rewards."""
    log_post = log_posterior(prior, context)[:, None]  # [users, 1], or [users, queries] with each query's prompt
    if prior.prompt_log_likelihood is not None and len(queries):
        log_post = log_post + prior.prompt_log_likelihood(prior.params, queries)
    weights = np.exp(log_post - log_post.max(0))
    p = ((weights / weights.sum(0)) * sigmoid(prior.logits(prior.params, queries))).sum(0)
    return np.round(p, 9)  # an exact tie (a user the context cannot place) scores half, as a coin flip would


def chosen_order(prior: UserPrior, pool: Sequence[dict], n: int) -> list[int]:
    """The Bayes learner's questions: the first ``n`` pool rows in the order it asks them, by the true posterior
    (:func:`log_posterior`: the prior's users reweighted by the answers, and by the prompts of the questions
    asked where a prompt tells of its user, as the ceiling's context is)."""
    logits = prior.logits(prior.params, pool)  # [users of the prior, pool]
    evidence = log_sigmoid(logits)
    if prior.prompt_log_likelihood is not None:
        evidence = evidence + prior.prompt_log_likelihood(prior.params, pool)
    return reweighted_order(torch.from_numpy(sigmoid(logits)), torch.from_numpy(log_posterior(prior, [])), n,
                            log_answers=torch.from_numpy(evidence))


def bayes_few_shot(prior: UserPrior, test_rows: Sequence[dict], shots: Sequence[int] = DEFAULT_SHOTS,
                   active: bool = False) -> dict:
    """The ceiling as an ``evaluate``-shaped report: ``unseen[k]`` with accuracy, oracle accuracy and the
    controversial pairs, on the unseen users' query rows of ``test_rows``; with ``active``, after the k
    questions it chooses itself (:func:`chosen_order`)."""
    contexts: dict[str, list[dict]] = defaultdict(list)
    queries: dict[str, list[dict]] = defaultdict(list)
    for row in test_rows:
        if row.get("role") == "context":
            contexts[row["user_id"]].append(row)
        elif row.get("role") == "query":
            queries[row["user_id"]].append(row)
    if active and shots:
        contexts = defaultdict(list, {user: [rows[i] for i in chosen_order(prior, rows, max(shots))]
                                      for user, rows in contexts.items()})
    unseen = {}
    for k in shots:
        probs, oracle, hard, owners = [], [], [], []
        for user, rows in queries.items():
            probs.extend(posterior_predictive(prior, contexts[user][:k], rows))
            oracle.extend(r.get("oracle_p") for r in rows)
            hard.extend(bool(r.get("controversial")) for r in rows)
            owners.extend([user] * len(rows))
        probs_a, hard_a = np.asarray(probs), np.asarray(hard, dtype=bool)
        entry = preference_metrics(probs_a, oracle, owners)
        entry["controversial"] = preference_metrics(probs_a[hard_a], [o for o, h in zip(oracle, hard) if h],
                                                    [u for u, h in zip(owners, hard) if h])
        unseen[str(k)] = entry
    return round_floats({"unseen": unseen, **({"questions": "chosen"} if active else {})})
