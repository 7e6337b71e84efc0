"""Active queries: which unlabelled pair to ask a new user next (VPL paper, Poddar et al. 2024, §4.3).

Given the current posterior over a new user u (its prior before any answer) and a pool of unlabelled
candidate pairs (a, b), ask about the pair whose answer y = [a ≻ b] is most informative about u: the expected
information gain I(y; u | C) = H[E_u p(y | u)] − E_u H[p(y | u)] (BALD, Houlsby et al. 2011). Each method
with a posterior over its users supplies that posterior as S weighted points and their predictions on the
pool (``PreferenceModel.query_predictions``): VPL samples of q(z | C), equal weights; PAL draws of the
simplex weights under a Dirichlet prior, weighted by their likelihood (importance sampling); MiCRo and GPM
draws of their user vector under the Gaussian prior of their few-shot fit, weighted the same way
(:mod:`pluralign.methods.few_shot`); MaxMin its groups, weighted by their exact posterior. BT has no user to
learn about. The gain is symmetric in (a, b), so a pool's stored orientation (which may be the label) leaks
nothing. The same pool and context always give the same choice.

:func:`question_order` asks a whole sequence, each question given the answers before it: the evaluation
protocol's chosen questions (``pluralign eval --active``, ``pluralign bench --active``). :func:`select_queries`
chooses n questions to ask at once by what their answers tell together (:func:`batch_order`, BatchBALD).
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any, Callable

import torch

from pluralign.data.features import PairFeatures
from pluralign.data.readers import read_preferences

if TYPE_CHECKING:
    from pluralign.methods.base import PreferenceModel


def bernoulli_entropy(p: torch.Tensor) -> torch.Tensor:
    """H(p) in nats; 0 at p ∈ {0, 1}."""
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(p * p.log() + (1 - p) * (1 - p).log())


def information_gain(probabilities: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """I(y; u) per pair from P(a ≻ b | u_s) at S posterior points, [S, M] -> [M]; ``weights`` [S] (summing
    to 1) are the points' posterior weights, equal when None."""
    if weights is None:
        weights = torch.full((probabilities.shape[0],), 1.0 / probabilities.shape[0], dtype=probabilities.dtype)
    weights = weights.to(probabilities.dtype).unsqueeze(1)
    return bernoulli_entropy((weights * probabilities).sum(0)) - (weights * bernoulli_entropy(probabilities)).sum(0)


def pair_features(model: "PreferenceModel", pairs: Any) -> PairFeatures | None:
    """Pairs in any form the readers take (or features already), as the model's features; None when empty."""
    if pairs is None or isinstance(pairs, PairFeatures):
        return pairs
    if isinstance(pairs, (list, tuple)) and not pairs:  # no answers yet
        return None
    rows = read_preferences(pairs)
    return model.featurize(rows) if len(rows) else None


@torch.no_grad()
def expected_information_gain(model: "PreferenceModel", pool: PairFeatures,
                              context: PairFeatures | None = None) -> torch.Tensor:
    """I(y; u | context) for every pool pair, [M]."""
    if context is not None and len(context) == 0:
        context = None
    return information_gain(*model.query_predictions(pool, context))


def greedy_order(gain: Callable[[list[int], list[int]], torch.Tensor], size: int, n: int | None = None) -> list[int]:
    """The first ``n`` of ``size`` pool indices in the order a sequential active learner asks them:
    ``gain(asked, left)`` gives the information gain of each ``left`` pair given the answers to ``asked``; each
    step takes the largest, ties to the earlier row. Greedy, so the first k of a longer order are the order for k."""
    n = size if n is None else min(n, size)
    asked: list[int] = []
    left = list(range(size))
    while len(asked) < n:
        best = 0 if len(left) == 1 else int(torch.argsort(gain(asked, left), descending=True, stable=True)[0])
        asked.append(left.pop(best))
    return asked


def reweighted_order(probs: torch.Tensor, log_prior: torch.Tensor, n: int | None = None,
                     log_answers: torch.Tensor | None = None) -> list[int]:
    """:func:`greedy_order` where the posterior is fixed points reweighted by the answers, p(u_s | C) ∝ p(u_s)
    Π_{i ∈ C} P(answer_i | u_s): ``probs`` [S, M] are each point's P(a ≻ b) on the pool, whose rows are stored
    as answered (chosen first), so they are also the answers' likelihoods (``log_answers``, [S, M], where more
    precise ones are known); ``log_prior`` [S]. Every step reuses the same predictions."""
    log_answers = probs.clamp_min(1e-30).log() if log_answers is None else log_answers

    def gain(asked: list[int], left: list[int]) -> torch.Tensor:
        return information_gain(probs[:, left], torch.softmax(log_prior + log_answers[:, asked].sum(1), 0))

    return greedy_order(gain, probs.shape[1], n)


def question_order(model: "PreferenceModel", pool: PairFeatures, n: int | None = None) -> list[int]:
    """:func:`greedy_order` by the model's posterior, where the pool's pairs carry the user's answers (an
    evaluation's context rows). Where the posterior reweights fixed points (``reweights_prior_points``: PAL,
    MiCRo, GPM, MaxMin) their predictions on the pool are computed once (:func:`reweighted_order`); VPL's
    encoder is run again after each answer. A model without a posterior over users (BT) keeps the pool's
    order: no answer moves it."""
    if not model.has_active_queries:
        return list(range(len(pool) if n is None else min(n, len(pool))))
    if model.reweights_prior_points:
        probs, weights = model.query_predictions(pool, None)
        weights = torch.full((len(probs),), 1.0 / len(probs)) if weights is None else weights
        return reweighted_order(probs.double(), weights.double().log(), n)
    def gain(asked: list[int], left: list[int]) -> torch.Tensor:  # VPL: the encoder's posterior after each answer
        return expected_information_gain(model, pool[left], pool[asked] if asked else None)

    return greedy_order(gain, len(pool), n)


JOINT_ANSWERS = 8  # a batch's joint gain conditions on the answers to its first 8 questions (2^8 answer patterns)


def batch_order(probs: torch.Tensor, weights: torch.Tensor, n: int, blocked: torch.Tensor,
                same_question: Callable[[int], torch.Tensor]) -> list[int]:
    """Up to ``n`` pool indices asked at once, chosen greedily by the information their answers give together
    (BatchBALD, Kirsch et al. 2019): each next pair m maximizes I(y_A, y_m; u) = H(y_A, y_m) − E_u H(y_A, y_m | u),
    the answers y_A to the pairs A chosen before it unknown yet. Under one posterior the batch's top-n by each
    pair's own gain took one question several times (a pair stored in both orders, or copied), whose later copies
    tell next to nothing once the first is answered. ``probs`` [S, M] and ``weights`` [S] are the posterior's points
    (:meth:`PreferenceModel.query_predictions`); ``blocked`` [M] pairs are never chosen, nor any pair
    ``same_question(i)`` [M] names for a chosen i. The answers given u are independent, so E_u H(y_A, y_m | u) is
    the chosen pairs' (a constant here) plus E_u H(y_m | u); H(y_A, y_m) is exact over the 2^|A| answer patterns
    for the first :data:`JOINT_ANSWERS` pairs, later pairs are chosen given those. The first pair is the one of
    highest gain, as :func:`select_queries` with ``n=1``."""
    p, w = probs.double(), weights.double()
    own = (w[:, None] * bernoulli_entropy(p)).sum(0)  # E_u H(y_m | u), [M]
    patterns = torch.ones(len(w), 1, dtype=torch.float64)  # P(answers to the pairs chosen so far | u_s), [S, C]
    blocked, chosen = blocked.clone(), []
    while len(chosen) < n and not bool(blocked.all()):
        mass = (w[:, None] * patterns).T  # [C, S]
        joint = torch.stack([mass @ p, mass @ (1 - p)])  # P(pattern, y_m), [2, C, M]
        score = -(joint * joint.clamp_min(1e-300).log()).sum((0, 1)) - own
        best = int(torch.argsort(score.masked_fill(blocked, -torch.inf), descending=True, stable=True)[0])
        chosen.append(best)
        blocked |= same_question(best)
        blocked[best] = True
        if len(chosen) <= JOINT_ANSWERS:
            patterns = torch.cat([patterns * p[:, best, None], patterns * (1 - p[:, best, None])], 1)
    return chosen


def select_queries(model: "PreferenceModel", pool_pairs: Any, n: int = 1, context: Any = None) -> list[int]:
    """The ``n`` pool indices to ask at once under the current posterior, chosen by their joint gain
    (:func:`batch_order`; ``n=1``: the pair of highest expected information gain; for a sequential loop ask
    again after each answer). A question is not asked twice (a pair stored in both orders, or copied), nor one
    the context has answered: such pairs come last, only where the pool is short of others; an empty context means
    no answers yet."""
    pool = pair_features(model, pool_pairs)
    if pool is None or len(pool) == 0:
        raise ValueError(f"{model.name}: the pool of candidate pairs is empty")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:  # numpy's integers too
        raise ValueError(f"{model.name}: n={n!r} must be a whole number, at least 1")
    n = min(int(n), len(pool))
    context = pair_features(model, context)
    if context is not None and len(context) == 0:
        context = None
    probs, weights = model.query_predictions(pool, context)
    weights = torch.full((len(probs),), 1.0 / len(probs)) if weights is None else weights
    done = answered(pool, context) if context is not None else torch.zeros(len(pool), dtype=torch.bool)
    gain = information_gain(probs, weights).masked_fill(done, -torch.inf)
    order = torch.argsort(gain, descending=True, stable=True).tolist()
    if n == 1 or bool(done.all()):  # one question: the highest gain, in float32 (a float64 batch holds 2x the memory)
        return order[:n]
    chosen = batch_order(probs, weights, n, done, lambda i: answered(pool, pool[[i]]))
    return (chosen + [i for i in order if i not in chosen])[:n]


def answered(pool: PairFeatures, context: PairFeatures) -> torch.Tensor:
    """Which pool pairs are context pairs (the same prompt and responses, in either order), [M] bool."""
    def same(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a, b = a.flatten(1), b.flatten(1)
        if a.shape[1] != b.shape[1]:  # token ids, each set right-padded to its own longest text: pad both alike
            from pluralign.backbones.tuned import PAD

            width = max(a.shape[1], b.shape[1])
            a, b = (torch.nn.functional.pad(x, (0, width - x.shape[1]), value=PAD) for x in (a, b))
        return (a[:, None] == b[None]).all(-1)

    prompt = same(pool.prompt, context.prompt)
    kept = same(pool.chosen, context.chosen) & same(pool.rejected, context.rejected)
    swapped = same(pool.chosen, context.rejected) & same(pool.rejected, context.chosen)
    return (prompt & (kept | swapped)).any(1)
