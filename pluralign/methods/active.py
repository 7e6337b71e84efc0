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
protocol's chosen questions (``pluralign eval --active``, ``pluralign bench --active``).
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


def select_queries(model: "PreferenceModel", pool_pairs: Any, n: int = 1, context: Any = None) -> list[int]:
    """The ``n`` pool indices of highest expected information gain, best first (one batch under the current
    posterior; for a sequential loop ask again after each answer). Pool pairs the context has answered come
    last; an empty context means no answers yet."""
    pool = pair_features(model, pool_pairs)
    if pool is None or len(pool) == 0:
        raise ValueError(f"{model.name}: the pool of candidate pairs is empty")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:  # numpy's integers too
        raise ValueError(f"{model.name}: n={n!r} must be a whole number, at least 1")
    n = int(n)
    context = pair_features(model, context)
    gain = expected_information_gain(model, pool, context)
    if context is not None:  # a pair the user has answered tells nothing new: asked last, if at all
        gain[answered(pool, context)] = -torch.inf
    return torch.argsort(gain, descending=True, stable=True)[: min(n, len(pool))].tolist()


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
