"""The evaluation protocol by hand, with a stand-in model whose every probability is known: which rows each figure
of the report is computed on, and how the paired comparison clusters rows without a user."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from pluralign.data import PreferenceSet
from pluralign.data.features import featurize
from pluralign.eval import evaluate
from pluralign.eval.compare import compare
from pluralign.eval.protocol import controversial_mask


class SignModel:
    """1-d features; a user is a sign s and P(chosen ≻ rejected) = σ(4 s (chosen − rejected)). Known users: a (+1),
    b (−1); the population (and an unknown user) has sign ``population``; a new user's sign is that of their
    context pairs' summed gaps, the chosen side winning."""

    uses_user_ids = True

    def __init__(self, population: float = 0.0) -> None:
        self.user_ids_ = ["a", "b"]
        self.signs = {"a": 1.0, "b": -1.0}
        self.population = population
        self.fit_stats_: dict = {}

    def featurize(self, data: PreferenceSet):
        return featurize(data, user_index={u: i for i, u in enumerate(self.user_ids_)})

    def user_matrix(self, users: list, n: int) -> torch.Tensor:
        return torch.tensor([[self.signs.get(u, self.population)] for u in users])

    def infer_user(self, features) -> SimpleNamespace:
        if features is None:
            return SimpleNamespace(mean=torch.tensor([self.population]))
        return SimpleNamespace(mean=torch.sign((features.chosen - features.rejected)[:, 0].sum()).reshape(1))

    def logits_features(self, features, users: torch.Tensor) -> torch.Tensor:
        return 4.0 * users[:, 0] * (features.chosen - features.rejected)[:, 0]


def row(chosen: float, rejected: float, user: str | None, **extra) -> dict:
    out = {"chosen_embedding": [chosen], "rejected_embedding": [rejected], "oracle_p": 0.9, "controversial": False}
    return {**out, **({"user_id": user} if user else {}), **extra}


# seen rows: a's first right (σ(4)), b's wrong (b's sign is −1), a's last two wrong; unseen user n: one context pair
# (sign +1 after it), then a controversial query it gets right and a consensus one it gets wrong
DATA = [
    row(1, 0, "a", group="g1", controversial=True),
    row(1, 0, "b", group="g2"),
    row(0, 1, "a", group="g1"),
    row(0, 1, "a"),  # no group: left out of the groups, and counted
    row(1, 0, "n", role="context", group="g1"),
    row(2, 0, "n", role="query", group="g1", controversial=True),
    row(0, 3, "n", role="query", group="g2"),
]


def test_each_figure_is_computed_on_its_own_rows() -> None:
    """Seen rows are scored with each user's own sign: hits 1, 0, 0, 0 (not the population's four ties, 0.5); the
    seen controversial figure holds only the seen controversial row (1 of 1, no query row); at k = 1 the unseen
    user gets the query 1 of 2 right, its controversial figure only the controversial query (1 of 1); groups:
    g1 1 of 2, g2 0 of 1 (the worst), the row without a group in neither, nor a made-up group of its own."""
    report = evaluate(SignModel(), PreferenceSet.from_rows(DATA), shots=(0, 1))
    assert (report["seen"]["n"], report["seen"]["accuracy"]) == (4, 0.25)
    assert (report["controversial"]["n"], report["controversial"]["accuracy"]) == (1, 1.0)
    assert (report["unseen"]["0"]["n"], report["unseen"]["0"]["accuracy"]) == (2, 0.5)  # two ties at k = 0
    assert (report["unseen"]["1"]["n"], report["unseen"]["1"]["accuracy"]) == (2, 0.5)
    assert (report["unseen"]["1"]["controversial"]["n"], report["unseen"]["1"]["controversial"]["accuracy"]) == (1, 1.0)
    assert {g: (m["n"], m["accuracy"]) for g, m in report["groups"].items()} == {
        "g1": (2, 0.5), "g2": (1, 0.0)}
    assert report["worst_group"]["group"] == "g2" and report["rows_without_group"] == 1
    assert report["predict"]["pairs_per_second"] > 10  # 6 rows scored in far less than a second


def test_without_seen_rows_groups_are_the_unseen_queries_at_eight_shots() -> None:
    """No seen rows: groups are read on the unseen queries at k = 8 (not at the first k asked, 0, where every query
    is a tie): with 8 context pairs the user's sign is +1, so g1's query is right and g2's wrong."""
    rows = [row(1, 0, "n", role="context") for _ in range(8)] + DATA[5:]
    report = evaluate(SignModel(), PreferenceSet.from_rows(rows), shots=(0, 8))
    assert {g: m["accuracy"] for g, m in report["groups"].items()} == {"g1": 1.0, "g2": 0.0}


def test_controversial_mask_fallback_by_hand() -> None:
    """Without a flag on every row, pairs labelled both ways are controversial, and only under the same prompt:
    a ≻ b and b ≻ a under p1 are; the same two texts once each under p1 and p2 are not; a partial column (one row
    flagged) is no column."""
    rows = [{"prompt": "p1", "chosen": "a", "rejected": "b"}, {"prompt": "p1", "chosen": "b", "rejected": "a"},
            {"prompt": "p2", "chosen": "b", "rejected": "a"}, {"prompt": "p3", "chosen": "c", "rejected": "d"}]
    assert controversial_mask(PreferenceSet.from_rows(rows)).tolist() == [True, True, False, False]
    flagged = [{**rows[0], "controversial": False}, *rows[1:]]
    assert controversial_mask(PreferenceSet.from_rows(flagged)).tolist() == [True, True, False, False]
    every = [{**r, "controversial": i == 3} for i, r in enumerate(rows)]
    assert controversial_mask(PreferenceSet.from_rows(every)).tolist() == [False, False, False, True]


def test_compare_counts_each_row_without_a_user_as_its_own_cluster() -> None:
    """Three seen rows without a user: A (population +1) gets 1, 1, 0 right, B (−1) 0, 0, 1; d = 1, 1, −1, mean 1/3;
    as three clusters SE² = 3/2 · (4/9 + 4/9 + 16/9) / 9 = 4/9, SE = 2/3 (one shared cluster would give none); but
    they are no user: counted apart, not as three users."""
    data = PreferenceSet.from_rows([row(1, 0, None), row(2, 0, None), row(0, 1, None)])
    report = compare(SignModel(population=1.0), SignModel(population=-1.0), data, shots=0)
    assert report["seen"]["difference"] == pytest.approx(1 / 3)
    assert report["seen"]["difference_se"] == pytest.approx(2 / 3)
    assert (report["seen"]["users"], report["seen"]["rows_without_user"]) == (0, 3) and "unseen" not in report


def test_paired_table_ties_and_row_sets_by_hand() -> None:
    """Two methods equally accurate on the same rows: the first in the bench's order is the best, the other +0.0.
    Two row sets that as many methods share: the longer is compared on, the other two are "other rows"."""
    from pluralign.eval.compare import paired_table

    users = ["u1", "u2"]
    runs = {0: {"bench": {"m1": {"rows": {"user": users, "hit": [1, 0]}},
                          "m2": {"rows": {"user": users, "hit": [0, 1]}}}}}
    text = paired_table(runs, "rows")
    assert "| m1 | best |" in text and "| m2 | +0.0 ± " in text
    short, long = ["u1", "u2"], ["u1", "u2", "u3", "u4"]
    runs = {0: {"bench": {"s1": {"rows": {"user": short, "hit": [1, 1]}},
                          "s2": {"rows": {"user": short, "hit": [0, 0]}},
                          "l1": {"rows": {"user": long, "hit": [1, 0, 1, 0]}},
                          "l2": {"rows": {"user": long, "hit": [0, 0, 1, 0]}}}}}
    text = paired_table(runs, "rows")
    assert "| l1 | best |" in text and "| l2 | -25.0 ± " in text
    assert "| s1 | other rows |" in text and "| s2 | other rows |" in text


def test_gain_table_needs_the_same_rows_before_and_after() -> None:
    """A method whose chosen-question hits are on other rows than its file-order hits is left out."""
    from pluralign.eval.compare import gain_table

    m = {"chosen": {"user": ["u1", "u2"], "hit": [1, 1]}, "given": {"user": ["u1", "u3"], "hit": [0, 0]}}
    assert gain_table({0: {"bench": {"m": m}}}, "chosen", "given") == ""


class AskingSignModel(SignModel):
    """SignModel with a posterior over two points, s = +1 and s = −1, equally likely: it asks the pair whose answer
    tells them apart best, the one with the largest gap."""

    has_active_queries = True
    reweights_prior_points = True

    def query_predictions(self, pool, context):
        gap = (pool.chosen - pool.rejected)[:, 0].double()
        return torch.sigmoid(4.0 * torch.stack([gap, -gap])), None


def test_compare_with_chosen_questions_lets_both_models_ask() -> None:
    """The unseen user's context: a small gap the wrong way (−0.1), then a large one the right way (+3). With one
    chosen question each model asks the large gap first (sign +1) and gets the query right; in file order the
    first pair would set the sign to −1. Both models are the same, so both are right and the difference is 0."""
    data = PreferenceSet.from_rows([row(0.0, 0.1, "n", role="context"), row(3, 0, "n", role="context"),
                                    row(1, 0, "n", role="query")])
    asked = compare(AskingSignModel(), AskingSignModel(), data, shots=1, active=True)
    assert (asked["unseen"]["accuracy_a"], asked["unseen"]["accuracy_b"], asked["questions"]) == (1.0, 1.0, "chosen")
    given = compare(AskingSignModel(), AskingSignModel(), data, shots=1)
    assert (given["unseen"]["accuracy_a"], given["unseen"]["accuracy_b"]) == (0.0, 0.0)
