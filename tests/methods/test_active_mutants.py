"""Active queries by hand: the weighted information gain and the orders, without a fitted model."""

from __future__ import annotations

import pytest
import torch

from pluralign.methods.active import greedy_order, information_gain, reweighted_order


def test_weighted_gain_weighs_both_terms() -> None:
    """Points at P = 0.9 and 0.5 with weights 0.75 and 0.25: H(0.75·0.9 + 0.25·0.5 = 0.8) − (0.75·H(0.9) +
    0.25·H(0.5)) = 0.500402 − (0.243812 + 0.173287) = 0.083303 nats (unweighted second term: −0.0087)."""
    gain = information_gain(torch.tensor([[0.9], [0.5]], dtype=torch.float64), torch.tensor([0.75, 0.25]))
    assert gain.item() == pytest.approx(0.083303, abs=1e-6)


def test_greedy_order_ties_go_to_the_earlier_row() -> None:
    """Equal gains everywhere: the pool's order; a larger gain later in the pool goes first."""
    assert greedy_order(lambda asked, left: torch.zeros(len(left)), 4) == [0, 1, 2, 3]
    assert greedy_order(lambda asked, left: torch.tensor([1.0 if i == 2 else 0.0 for i in left]), 4, 2) == [2, 0]


def test_reweighted_order_reads_the_answers_as_chosen_wins() -> None:
    """Points A, B, C equally likely; logits of P(chosen ≻ rejected) +4, +4, −4 on pair 0; +3, −3, 0 on pair 1;
    0, +3.5, −3.5 on pair 2. Gains before any answer: 0.551, 0.335, 0.374, so pair 0 goes first. Its answer (chosen
    wins) leaves A and B, so pair 1, which tells them apart, is next, not pair 2, the better one before the answer
    (and the better one were the answer read as "rejected wins", which points to C)."""
    logits = torch.tensor([[4.0, 3.0, 0.0], [4.0, -3.0, 3.5], [-4.0, 0.0, -3.5]], dtype=torch.float64)
    assert information_gain(torch.sigmoid(logits)).tolist() == pytest.approx([0.5505, 0.3349, 0.3739], abs=1e-4)
    assert reweighted_order(torch.sigmoid(logits), torch.zeros(3, dtype=torch.float64)) == [0, 1, 2]


class PointsModel:
    """Stands in for a method whose posterior is three weighted points with the logits above on the pool's rows
    (the pool's user column says which row a pair is); records the context it is asked with."""

    name = "points"
    has_active_queries = True
    reweights_prior_points = True
    logits = torch.tensor([[4.0, 3.0, 0.0], [4.0, -3.0, 3.5], [-4.0, 0.0, -3.5]], dtype=torch.float64)

    def __init__(self, weights: list[float] | None = None) -> None:
        self.weights = None if weights is None else torch.tensor(weights, dtype=torch.float64)
        self.contexts: list = []

    def query_predictions(self, pool, context):
        self.contexts.append(context)
        return torch.sigmoid(self.logits[:, pool.user]), self.weights


def pool_of(rows: list[int]):
    from pluralign.data.features import PairFeatures

    n = len(rows)
    return PairFeatures(torch.zeros(n, 0), torch.ones(n, 1), torch.zeros(n, 1), torch.tensor(rows))


def test_question_order_uses_the_points_weights() -> None:
    """Weights 0.5, 0.5, 0 rule C out before any answer: pair 1 (+3 against −3) tells A from B and goes first, where
    equal weights would ask pair 0 first."""
    from pluralign.methods.active import question_order

    assert question_order(PointsModel(), pool_of([0, 1, 2]), 1) == [0]
    assert question_order(PointsModel([0.5, 0.5, 0.0]), pool_of([0, 1, 2]), 1) == [1]


def test_select_queries_checks_n_and_reads_an_empty_context_as_none() -> None:
    """n must be at least 1; an empty context is no context (the prior), passed on as None."""
    from pluralign.methods.active import expected_information_gain, select_queries

    with pytest.raises(ValueError, match=r"^points: n=0 must be a whole number, at least 1$"):
        select_queries(PointsModel(), pool_of([0, 1, 2]), n=0)
    model = PointsModel()
    assert select_queries(model, pool_of([0, 1, 2]), n=2) == [0, 2]  # best first: 0.551, 0.374
    expected_information_gain(model, pool_of([0, 1]), pool_of([]))
    assert model.contexts == [None, None]


def test_a_batch_is_chosen_by_what_its_answers_tell_together() -> None:
    """Points A, B, C equally likely. Pair 0 tells A from B and C (P = 0.99, 0.01, 0.01), pair 1 is the same
    question again, pair 2 tells B from C (0.5, 0.99, 0.01). Alone, gains 0.583, 0.583, 0.425: the top two were
    pairs 0 and 1. Together, I(y0, y1; u) = H(0.3268, 0.0099, 0.0099, 0.6534) − 2 H(0.99) = 0.7349 − 0.1120 =
    0.623 and I(y0, y2; u) = H(0.1683, 0.1683, 0.3317, 0.3317) − H(0.99) − 0.2684 = 1.3319 − 0.3244 = 1.008: the
    batch is pairs 0 and 2."""
    from pluralign.methods.active import batch_order

    probs = torch.tensor([[0.99, 0.99, 0.5], [0.01, 0.01, 0.99], [0.01, 0.01, 0.01]], dtype=torch.float64)
    weights = torch.full((3,), 1 / 3, dtype=torch.float64)
    assert information_gain(probs, weights).tolist() == pytest.approx([0.5828, 0.5828, 0.4248], abs=1e-4)
    none = torch.zeros(3, dtype=torch.bool)
    assert batch_order(probs, weights, 2, none, lambda i: none) == [0, 2]
    assert batch_order(probs, weights, 1, none, lambda i: none) == [0]  # one question: the highest gain alone
    assert batch_order(probs, weights, 3, torch.tensor([True, False, False]), lambda i: none) == [1, 2]


def test_select_queries_asks_a_question_once_in_a_batch() -> None:
    """Pool pair 3 is pair 0 stored the other way round: --queries 4 gave pair 0 twice (and pal-a, maxmin, gpm and
    vpl two distinct questions out of four on such a pool). It now comes last, where the pool has no other."""
    from pluralign.data.features import PairFeatures
    from pluralign.methods.active import select_queries

    chosen, rejected = torch.tensor([[1.0], [2.0], [3.0], [4.0]]), torch.tensor([[4.0], [5.0], [6.0], [1.0]])
    pool = PairFeatures(torch.zeros(4, 1), chosen, rejected, torch.tensor([0, 1, 2, 0]))
    model = PointsModel()
    assert select_queries(model, pool, n=3)[0] == 0 and 3 not in select_queries(model, pool, n=3)
    assert select_queries(model, pool, n=4)[3] == 3


def test_a_batch_past_the_joint_cap_goes_on_given_the_first_answers() -> None:
    """Past JOINT_ANSWERS questions the answer patterns stop doubling (2^8): the later picks are still distinct and
    chosen given the first eight's patterns; the first eight are the batch of eight."""
    from pluralign.methods.active import JOINT_ANSWERS, batch_order

    torch.manual_seed(0)
    probs, weights = torch.rand(6, 14, dtype=torch.float64), torch.full((6,), 1 / 6, dtype=torch.float64)
    none = torch.zeros(14, dtype=torch.bool)
    longer = batch_order(probs, weights, 12, none, lambda i: none)
    assert len(set(longer)) == 12 and longer[:JOINT_ANSWERS] == batch_order(probs, weights, JOINT_ANSWERS, none,
                                                                            lambda i: none)
