import math

import numpy as np
import pytest

from conftest import two_group_rows
from pluralign.data import PreferenceSet
from pluralign.eval import evaluate, preference_metrics, score_rows
from pluralign.eval.protocol import controversial_mask, diagnostic_lines, summary_lines
from pluralign.methods import BradleyTerry


def test_metrics_by_hand():
    m = preference_metrics([0.9, 0.4, 0.5], oracle_p=[0.8, 0.6, 0.3])
    assert m["n"] == 3
    assert math.isclose(m["accuracy"], (1 + 0 + 0.5) / 3)
    assert math.isclose(m["log_loss"], -(math.log(0.9) + math.log(0.4) + math.log(0.5)) / 3)
    assert math.isclose(m["oracle_accuracy"], 2 / 3)


def test_calibration_error_by_hand_and_on_calibrated_draws():
    from pluralign.eval.metrics import calibration_error

    # confidences .95, .95 (bin 4: both right) and .65, .65 (bin 1: one right): ½·|1 − .95| + ½·|.5 − .65|
    assert math.isclose(calibration_error(np.array([0.95, 0.95, 0.65, 0.35])), 0.5 * 0.05 + 0.5 * 0.15)
    # a confidence on a bin's lower edge is in that bin, 0.6 as 0.8 (in float64 (0.6 − 0.5)·10 is 0.999...):
    # 0.6 (right) and 0.65 (wrong) share bin [0.6, 0.7): |0.5 − 0.625|
    assert math.isclose(calibration_error(np.array([0.6, 0.35])), 0.125)
    # labels drawn from the predicted probability, the pair written with the winner as "chosen": calibrated
    rng = np.random.default_rng(0)
    p = rng.uniform(size=20_000)
    as_written = np.where(rng.uniform(size=p.size) < p, p, 1.0 - p)
    assert calibration_error(as_written) < 0.01
    assert calibration_error(np.clip(as_written * 1.6 - 0.3, 0, 1)) > 0.05  # overconfident: caught


def test_clustered_standard_error_by_hand():
    from pluralign.eval.metrics import clustered_standard_error

    # mean 0.75; per-cluster residual sums -0.5 and +0.5; SE = sqrt(2/1 · 0.5) / 4
    assert clustered_standard_error(np.array([1.0, 0.0, 1.0, 1.0]), ["a", "a", "b", "b"]) == pytest.approx(0.25)
    # one row per cluster: the textbook standard error of a mean
    values = np.array([0.0, 1.0, 1.0, 0.5, 1.0])
    assert clustered_standard_error(values, list("abcde")) == pytest.approx(values.std(ddof=1) / math.sqrt(5))
    assert clustered_standard_error(values, ["a"] * 5) is None  # one user: no spread to measure
    m = preference_metrics([0.9, 0.4, 0.6, 0.7], oracle_p=[0.8, 0.6, 0.7, 0.9], clusters=["u", "u", "v", "v"])
    assert m["gap_to_oracle"] == pytest.approx(0.25)  # oracle hits 1, 1, 1, 1; the model's 1, 0, 1, 1
    assert m["gap_to_oracle_se"] == pytest.approx(0.25)  # the same residuals as above, signs flipped
    assert m["se_df"] == 1  # two users
    assert not {"gap_to_oracle_se", "se_df"} & set(preference_metrics([0.9, 0.4], oracle_p=[0.8, 0.6]))


def test_interval_quantile_by_hand():
    """Student's t's 97.5% point (tables: 12.706 on 1 df, 2.201 on 11, 2.030 on 35), the normal 1.960 for a record
    without df, and Bonferroni over 21 pairs: t₁₁ at 1 − 0.05 / 42, 3.923 (compare's 7 methods, 12 users)."""
    from pluralign.eval.metrics import cluster_df, interval_quantile

    assert [round(interval_quantile(df), 3) for df in (1, 11, 35, None)] == [12.706, 2.201, 2.030, 1.960]
    assert interval_quantile(11, comparisons=21) == pytest.approx(3.923, abs=1e-3)
    assert interval_quantile(0) == interval_quantile(1)  # one cluster has no spread; never a t on 0 df
    assert cluster_df(["u", "u", "v", 3, "3"]) == 2  # users u, v, 3: labels compared as text, as the SE does


def test_t_intervals_over_a_dozen_users_hold_their_95_percent():
    """Simulated: 12 users of 32 rows, each user's accuracy 0.8 + N(0, 0.1²), so their rows share an effect. The
    clustered SE times t on 11 df covers the true 0.8 in 95.0% of 4,000 draws (seed 0); times the normal 1.96, in
    92.5%: too narrow for so few clusters, which is why the gaps take t."""
    from pluralign.eval.metrics import cluster_df, clustered_standard_error, interval_quantile

    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(12), 32)
    covered = {"t": 0, "normal": 0}
    for _ in range(4000):
        hit = (rng.uniform(size=users.size) < np.clip(0.8 + rng.normal(0, 0.1, 12), 0, 1)[users]).astype(float)
        se, miss = clustered_standard_error(hit, users), abs(hit.mean() - 0.8)
        covered["t"] += miss <= interval_quantile(cluster_df(users)) * se
        covered["normal"] += miss <= interval_quantile(None) * se
    assert 0.935 <= covered["t"] / 4000 <= 0.965 and covered["t"] - covered["normal"] >= 0.015 * 4000


def test_controversial_from_opposite_labels():
    rows = [
        {"prompt": "p", "chosen": "a", "rejected": "b", "user_id": "1"},
        {"prompt": "p", "chosen": "b", "rejected": "a", "user_id": "2"},
        {"prompt": "p", "chosen": "c", "rejected": "d", "user_id": "1"},
    ]
    assert controversial_mask(PreferenceSet.from_rows(rows)).tolist() == [True, True, False]


@pytest.fixture(scope="module")
def model_and_test():
    train, test = two_group_rows(n_users=3, pairs=80)
    model = BradleyTerry(epochs=5, hidden=[16]).fit(train, progress=False)
    return model, PreferenceSet.from_rows(test)


def test_report_has_every_section(model_and_test):
    model, test = model_and_test
    report = evaluate(model, test, shots=(0, 2, 8))
    assert set(report) >= {"seen", "unseen", "groups", "worst_group", "controversial", "fit", "predict"}
    assert list(report["unseen"]) == ["0", "2", "8"]
    n_queries = sum(r.get("role") == "query" for r in test.rows)
    assert report["unseen"]["8"]["n"] == n_queries
    assert report["unseen"]["8"]["gap_to_oracle_se"] > 0 and "gap_to_oracle_se" not in report["seen"]
    assert report["seen"]["n"] == sum("role" not in r for r in test.rows)
    assert 0.5 < report["seen"]["oracle_accuracy"] <= 1.0
    assert report["worst_group"]["accuracy"] == min(g["accuracy"] for g in report["groups"].values())


def test_chosen_questions_use_the_same_context_rows_in_the_models_order(capsys):
    from pluralign.eval.protocol import chosen_contexts, unseen_rows
    from pluralign.methods import MaxMin

    train, test = two_group_rows(n_users=6, pairs=48)
    test = PreferenceSet.from_rows(test)
    model = MaxMin(n_groups=2, hidden=[], epochs=5, lr=0.05).fit(train, progress=False)
    order = chosen_contexts(model, test, 4)
    assert "choosing questions" not in capsys.readouterr().err  # a bar only where asked (the CLI asks)
    assert chosen_contexts(model, test, 4, progress=True) == order
    assert "choosing questions: 100%" in capsys.readouterr().err
    contexts, _ = unseen_rows(test)
    assert set(order) == set(contexts) and all(len(o) == 4 and set(o) <= set(contexts[u]) for u, o in order.items())
    assert order != {u: c[:4] for u, c in contexts.items()}  # the model's order, not the file's
    given, chosen = evaluate(model, test, shots=(0, 2, 16)), evaluate(model, test, shots=(0, 2, 16), active=True)
    assert chosen["questions"] == "chosen" and "questions" not in given
    assert chosen["unseen"]["0"] == given["unseen"]["0"] and chosen["seen"] == given["seen"]
    # all 16 context rows, whichever order: the same user vector
    assert chosen["unseen"]["16"]["accuracy"] == pytest.approx(given["unseen"]["16"]["accuracy"], abs=1e-9)


def test_score_rows_skips_context_rows(model_and_test):
    model, test = model_and_test
    indices, probs = score_rows(model, test, shots=4)
    assert all(test.rows[i].get("role") != "context" for i in indices)
    assert len(indices) == sum(r.get("role") != "context" for r in test.rows) == len(probs)


def test_no_questions_are_chosen_for_zero_shots(model_and_test, monkeypatch):
    """predict/compare --active --shots 0 chose every user's questions (seconds a user) to use none of them."""
    from pluralign.eval import protocol

    model, test = model_and_test
    monkeypatch.setattr(protocol, "chosen_contexts", lambda *a, **k: pytest.fail("questions chosen for k = 0"))
    indices, probs = score_rows(model, test, shots=0, active=True)
    assert np.array_equal(probs, score_rows(model, test, shots=0)[1])


def test_summary_lines_by_hand():
    """The terminal table of `pluralign eval`: gap in points with its 95% interval (10 users: t₉ 2.262 SE), the worst
    group marked, a dash where there is no oracle (real data), "no rows" where nothing was scored."""
    report = {"seen": {"n": 40, "accuracy": 0.8, "calibration_error": 0.0312, "oracle_accuracy": 0.85,
                       "gap_to_oracle": 0.05},
              "controversial": {"n": 0},
              "groups": {"a": {"n": 20, "accuracy": 0.9}, "b": {"n": 20, "accuracy": 0.7}},
              "worst_group": {"group": "b", "n": 20, "accuracy": 0.7},
              "unseen": {"1": {"n": 10, "accuracy": 0.6, "oracle_accuracy": 0.9, "gap_to_oracle": 0.3,
                               "gap_to_oracle_se": 0.1, "se_df": 9}}}
    lines = summary_lines(report)
    assert lines[1].split() == ["seen", "users", "40", "0.800", "0.031", "0.850", "5.0"]
    assert lines[2].split() == ["controversial", "pairs", "0", "no", "rows"]
    assert lines[3].split() == ["group", "a", "20", "0.900", "–", "–", "–"]
    assert lines[4].split() == ["group", "b", "(worst)", "20", "0.700", "–", "–", "–"]
    assert lines[5].split() == ["unseen", "users,", "1", "shot", "10", "0.600", "–", "0.900", "30.0", "±", "22.6"]
    chosen = summary_lines({**report, "questions": "chosen", "unseen": {"16": report["unseen"]["1"]}})
    assert chosen[5].startswith("unseen users, 16 chosen shots     10  0.600")  # longer labels: columns widen
    assert {line.index("rows") for line in chosen[:1]} == {len("unseen users, 16 chosen shots") + 3}


def test_diagnostic_lines_by_hand():
    """Each method's own report of its fit, as `pluralign fit` and `pluralign eval` print it."""
    assert diagnostic_lines({"n_pairs": 10}) == []
    collapse = {"active_units_kl": 3, "latent_dim": 8, "kl_total": 0.123, "collapsed": False, "decoder_spread": 0.004,
                "decoder_ignores_z": True}
    heads = {"attributes": ["length", "sentiment"], "correlation": [[0.1, -0.7], [0.8, 0.0]],
             "best_head": {"length": 1, "sentiment": 0}}
    em = {"em_iterations": 1, "em_converged": True, "group_sizes": [10.0, 2.0], "bic": 1234.5}
    recovery = {"adjusted_rand": 0.6154, "users": 12, "table": {"major": {"0": 10}, "minor": {"0": 1, "1": 1}}}
    assert diagnostic_lines({"collapse": collapse, "head_specialization": heads, **em, "group_recovery": recovery}) == [
        "latent: 3 of 8 units active, KL 0.12 nats (not collapsed, but the decoder ignores z; users' P(a ≻ b) "
        "differ by 0.004 (sd))",
        "heads: length → head 1 (r = +0.80), sentiment → head 0 (r = -0.70)",
        "EM: 1 iteration, converged; group sizes 10, 2; BIC 1,234.5",
        "groups vs the data's: adjusted Rand index 0.62 over 12 users (major → 10 in 0; minor → 1 in 0, 1 in 1)"]



def test_unseen_users_adapt_on_their_first_k_context_rows():
    """The protocol's k shots are each unseen user's first k context rows in file order, for a method whose
    user matters (BT's scores would be the same whichever rows it read)."""
    import torch

    from pluralign.methods import MaxMin

    train, test = two_group_rows(n_users=6, pairs=48)
    data = PreferenceSet.from_rows(test)
    model = MaxMin(n_groups=2, hidden=[], epochs=5, lr=0.05).fit(train, progress=False)
    rows, probs = score_rows(model, data, shots=2, include_seen=False)
    features = model.featurize(data)
    for user in ("new0", "new1"):
        context = [i for i, r in enumerate(test) if r.get("user_id") == user and r.get("role") == "context"][:2]
        queries = [i for i, r in enumerate(test) if r.get("user_id") == user and r.get("role") == "query"]
        vector = model.infer_user(features[context])
        expected = torch.sigmoid(model.logits_features(features[queries], vector.mean.expand(len(queries), -1)))
        assert np.allclose(probs[np.isin(rows, queries)], expected.numpy(), atol=1e-6)


def test_rows_without_groups_are_one_group_named_all() -> None:
    """Real data often has no group labels: the per-group table is one group, "all", the seen users' held-out
    rows (not a group named None, nor a worst group picked among labels that are not there)."""
    train, test = two_group_rows(n_users=4, pairs=12)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "group"} for r in rows]  # noqa: E731
    model = BradleyTerry(epochs=1, hidden=[]).fit(strip(train), progress=False)
    report = evaluate(model, PreferenceSet.from_rows(strip(test)), shots=(0, 8))
    assert list(report["groups"]) == ["all"] and report["worst_group"] == {"group": "all", **report["seen"]}


def test_rows_without_a_group_are_left_out_of_the_groups_and_counted(model_and_test) -> None:
    """Groups on only some rows: the rows without one are no group (not "all", which a real group of that name
    would merge with, nor the worst group); the report and the table say how many they are."""
    model, test = model_and_test
    rows = [dict(r) for r in test.rows]
    seen = [i for i, r in enumerate(rows) if "role" not in r]
    for i in seen[:4]:
        del rows[i]["group"]
    for i in seen[4:10]:
        rows[i]["group"] = "all"  # a real group of that name
    report = evaluate(model, PreferenceSet.from_rows(rows), shots=(0,))
    named = [rows[i]["group"] for i in seen[4:]]
    assert {g: m["n"] for g, m in report["groups"].items()} == {g: named.count(g) for g in set(named)}
    assert report["groups"]["all"]["n"] == 6 and report["rows_without_group"] == 4
    assert report["seen"]["n"] == len(seen)  # still scored as seen rows
    table = summary_lines(report)
    last_group = max(i for i, line in enumerate(table) if line.startswith("  group "))
    assert table[last_group + 1] == "  without a group             4  not in the groups"  # in the rows column
    assert sum("(worst)" in line for line in table) == 1


def test_a_controversial_column_on_some_rows_is_ignored_with_a_warning(caplog) -> None:
    rows = [{"prompt": "p", "chosen": "a", "rejected": "b", "controversial": True},
            {"prompt": "p", "chosen": "b", "rejected": "a", "controversial": True},
            {"prompt": "q", "chosen": "c", "rejected": "d"}]
    with caplog.at_level("WARNING", logger="pluralign"):
        assert controversial_mask(PreferenceSet.from_rows(rows, "part.jsonl")).tolist() == [True, True, False]
    assert ("part.jsonl: the controversial column is set on 2 of 3 rows only, so it is ignored; controversial pairs "
            "are those the users label both ways") in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="pluralign"):
        controversial_mask(PreferenceSet.from_rows(rows[2:]))  # no column at all: nothing to say
    assert not caplog.text


def test_rows_without_a_user_are_counted_as_no_user(model_and_test) -> None:
    """A null user_id means no user: such seen rows are scored with the population model, counted, and the
    table does not call them seen users."""
    model, test = model_and_test
    drop = lambda r: {k: v for k, v in r.items() if k != "user_id"} if "role" not in r else r  # noqa: E731
    anonymous = evaluate(model, PreferenceSet.from_rows([drop(r) for r in test.rows]), shots=(0,))
    assert anonymous["rows_without_user"] == anonymous["seen"]["n"] == 60
    table = summary_lines(anonymous)
    assert table[1].startswith("rows without a user (population)     60  ")
    assert not any(line.startswith("seen users") for line in table)
    some = evaluate(model, PreferenceSet.from_rows([drop(r) for r in test.rows[:5]] + test.rows[5:]), shots=(0,))
    assert some["rows_without_user"] == 5 and some["seen"]["n"] == 60
    table = summary_lines(some)
    assert table[1].startswith("seen users") and table[2].split() == [
        "of", "them", "without", "a", "user", "5", "scored", "with", "the", "population", "model"]
    assert "rows_without_user" not in evaluate(model, test, shots=(0,))


def test_seen_rows_of_users_the_run_never_met_are_counted() -> None:
    """Seen rows whose user id the fit never met ("3" against "u3") get the population model: counted in the
    report and named under "seen users" in the table, not silently a population figure in the seen row."""
    from pluralign.methods import PalA

    train, test = two_group_rows(n_users=3, pairs=20)
    model, test = PalA(k=2, epochs=1, hidden=[]).fit(train, progress=False), PreferenceSet.from_rows(test)
    renamed = [{**r, "user_id": "x" + r["user_id"]} if "role" not in r and i < 7 else r
               for i, r in enumerate(test.rows)]
    report = evaluate(model, PreferenceSet.from_rows(renamed), shots=(0,))
    assert report["rows_unknown_user"] == 7 and "rows_without_user" not in report
    assert summary_lines(report)[2].split() == [
        "of", "them", "unknown", "to", "the", "run", "7", "scored", "with", "the", "population", "model"]
    assert "rows_unknown_user" not in evaluate(model, test, shots=(0,))


def test_an_unseen_user_without_enough_context_rows_is_named_and_scored_at_every_k() -> None:
    """short_contexts names the unseen users with fewer than k context rows; one with none is scored with the
    population model at every k (its query rows stay in the k-shot rows), one with a few adapts on all of them."""
    import torch

    from pluralign.eval.protocol import short_contexts
    from pluralign.methods import MaxMin

    train, test = two_group_rows(n_users=6, pairs=48, unseen=3, context=4, queries=5)
    rows = [r for r in test if not (r.get("user_id") == "new1" and r.get("role") == "context")]
    extra = [i for i, r in enumerate(rows) if r.get("user_id") == "new2" and r.get("role") == "context"][2:]
    rows = [r for i, r in enumerate(rows) if i not in extra]  # new2: 2 context rows
    data = PreferenceSet.from_rows(rows)
    assert short_contexts(data, 4) == {"new1": 0, "new2": 2} and short_contexts(data, 2) == {"new1": 0}
    assert short_contexts(data, 0) == {}
    model = MaxMin(n_groups=2, hidden=[], epochs=5, lr=0.05).fit(train, progress=False)
    zero, eight = score_rows(model, data, 0, include_seen=False), score_rows(model, data, 8, include_seen=False)
    assert np.array_equal(zero[0], eight[0]) and len(zero[0]) == 15  # every user's queries at every k
    new1 = np.isin(zero[0], [i for i, r in enumerate(rows) if r["user_id"] == "new1" and r.get("role")])
    assert np.array_equal(zero[1][new1], eight[1][new1])  # no context rows: the population model
    features = model.featurize(data)
    new2 = [i for i, r in enumerate(rows) if r["user_id"] == "new2" and r.get("role") == "context"]
    queries = [i for i, r in enumerate(rows) if r["user_id"] == "new2" and r.get("role") == "query"]
    vector = model.infer_user(features[new2])
    expected = torch.sigmoid(model.logits_features(features[queries], vector.mean.expand(len(queries), -1)))
    assert np.allclose(eight[1][np.isin(eight[0], queries)], expected.numpy(), atol=1e-6)


def test_a_k_above_the_users_context_says_so_in_the_report_and_the_log(model_and_test, caplog) -> None:
    """Every unseen user here has n context rows (checked below): k = 2n adapts on those n, so its entry records
    it (users_short_of_k, context_pairs) and the log warns; k = n and n/2 do not."""
    from pluralign.eval.protocol import unseen_rows

    model, test = model_and_test
    contexts, queries = unseen_rows(test)
    sizes = sorted({len(contexts[u]) for u in queries})
    assert len(sizes) == 1 and sizes[0] >= 2
    n = sizes[0]
    with caplog.at_level("WARNING", logger="pluralign"):
        report = evaluate(model, test, shots=(n // 2, n, 2 * n))
    for k in (n // 2, n):
        assert "users_short_of_k" not in report["unseen"][str(k)] and "context_pairs" not in report["unseen"][str(k)]
    assert report["unseen"][str(2 * n)]["users_short_of_k"] == len(queries)
    assert report["unseen"][str(2 * n)]["context_pairs"] == n
    assert f"shots {2 * n}: the largest context in {test.source or 'the data'} is {n} pair(s)" in caplog.text
    assert "fewer than" not in caplog.text and f"shots {n}" not in caplog.text  # every user has n: none is short
    caplog.clear()
    with caplog.at_level("WARNING", logger="pluralign"):
        evaluate(model, test, shots=(2 * n,), warn_short=False)
    assert "context" not in caplog.text
