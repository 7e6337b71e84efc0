"""Paired comparison of two models on the same rows: by hand, against the protocol, and from the CLI."""

import json

import numpy as np
import pytest

from conftest import two_group_rows
from pluralign.cli import main
from pluralign.data import PreferenceSet
from pluralign.eval import evaluate
from pluralign.eval.compare import compare, gain_table, paired_difference, paired_table, unseen_hits
from pluralign.io import write_jsonl
from pluralign.methods import BradleyTerry, PalA


def test_paired_difference_by_hand():
    out = paired_difference(np.array([1.0, 1.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0, 0.0]), ["u1", "u1", "u2", "u3"])
    assert (out["accuracy_a"], out["accuracy_b"], out["difference"], out["users"]) == (0.75, 0.25, 0.5, 3)
    # d − d̄ = (.5, −.5, −.5, .5); per-user sums 0, −.5, .5; SE² = 3/2 · 0.5 / 4²
    assert out["difference_se"] == pytest.approx(np.sqrt(1.5 * 0.5) / 4) and out["se_df"] == 2  # 3 users
    assert "difference_se" not in paired_difference(np.ones(3), np.zeros(3), ["u1"] * 3)  # one user: no SE


@pytest.fixture(scope="module")
def fitted():
    train, test = two_group_rows(n_users=6, pairs=60)
    bt = BradleyTerry(epochs=10, hidden=[], lr=1e-2).fit(train, progress=False)
    pal = PalA(k=2, epochs=30, lr=1e-2, hidden=[]).fit(train, progress=False)
    return bt, pal, PreferenceSet.from_rows(test, "test")


def test_agrees_with_the_protocol_and_sees_the_personalized_model_win(fitted):
    bt, pal, test = fitted
    report = compare(pal, bt, test, shots=8)
    protocol = {m: evaluate(m, test, shots=(8,)) for m in (pal, bt)}
    assert report["seen"]["accuracy_a"] == pytest.approx(protocol[pal]["seen"]["accuracy"], abs=1e-4)  # it rounds
    assert report["unseen"]["accuracy_b"] == pytest.approx(protocol[bt]["unseen"]["8"]["accuracy"], abs=1e-4)
    assert report["unseen"]["difference"] == pytest.approx(report["unseen"]["accuracy_a"] - report["unseen"]["accuracy_b"])
    assert report["unseen"]["users"] == 2
    # opposed groups: one reward serves one of them, PAL adapts to both
    assert report["seen"]["difference"] - 1.96 * report["seen"]["difference_se"] > 0
    assert report["seen"]["se_df"] == report["seen"]["users"] - 1
    same = compare(pal, pal, test)
    assert same["seen"]["difference"] == 0 and same["seen"]["difference_se"] == 0


def test_unseen_hits_reuse_the_protocols_scores(fitted):
    """The bench takes each cell's 8-shot hits from evaluate's own scoring instead of adapting every user
    again: the same rows, the same hits."""
    _, pal, test = fitted
    query_probs: dict = {}
    report = evaluate(pal, test, shots=(0, 8), query_probs=query_probs)
    assert sorted(query_probs) == [0, 8]
    reused, fresh = unseen_hits(pal, test, 8, scored=query_probs[8]), unseen_hits(pal, test, 8)
    assert reused == fresh and len(reused["hit"]) == report["unseen"]["8"]["n"]


def test_chosen_questions_agree_with_the_protocol(fitted):
    bt, pal, test = fitted
    report = compare(pal, bt, test, shots=4, active=True)
    assert report["questions"] == "chosen"
    protocol = evaluate(pal, test, shots=(4,), active=True)
    assert report["unseen"]["accuracy_a"] == pytest.approx(protocol["unseen"]["4"]["accuracy"], abs=1e-4)
    assert report["unseen"]["accuracy_b"] == compare(pal, bt, test, shots=4)["unseen"]["accuracy_b"]  # bt: the file's
    assert unseen_hits(pal, test, 4, active=True)["hit"] != unseen_hits(pal, test, 4)["hit"]


def test_compare_reads_a_path_checks_shots_and_names_short_contexts(fitted, tmp_path, caplog):
    """A file of rows, as evaluate reads it (an AttributeError once); shots = −1 refused (it sliced all context rows
    but the last); k above the users' context sizes named in the log, once."""
    import logging

    bt, pal, test = fitted
    write_jsonl(tmp_path / "test.jsonl", test.rows)
    assert compare(pal, bt, str(tmp_path / "test.jsonl"), shots=2) == compare(pal, bt, test, shots=2)
    for shots in (-1, True):
        with pytest.raises(ValueError, match=r"shot counts must be non-negative integers"):
            compare(pal, bt, test, shots=shots)
    with caplog.at_level(logging.WARNING, logger="pluralign"):
        compare(pal, bt, test, shots=1000)
    assert [r.getMessage() for r in caplog.records if "the largest context" in r.getMessage()] != []


def test_cli(fitted, tmp_path, capsys):
    bt, pal, test = fitted
    bt.save_pretrained(tmp_path / "bt")
    pal.save_pretrained(tmp_path / "pal")
    write_jsonl(tmp_path / "test.jsonl", test.rows)
    out = tmp_path / "c.json"
    assert main(["compare", "--runs", str(tmp_path / "pal"), str(tmp_path / "bt"), "--data",
                 str(tmp_path / "test.jsonl"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "seen users (6 users" in printed and "points (95%)" in printed and out.exists()
    assert main(["compare", "--runs", str(tmp_path / "pal"), str(tmp_path / "bt"), "--data",
                 str(tmp_path / "test.jsonl"), "--active", "--out", str(tmp_path / "chosen.json")]) == 0
    assert json.loads((tmp_path / "chosen.json").read_text())["questions"] == "chosen"
    assert main(["compare", "--runs", str(tmp_path / "pal"), "--data", str(tmp_path / "test.jsonl"),
                 "--out", str(out)]) == 2
    assert "give two runs" in capsys.readouterr().err


def test_paired_table_by_hand():
    users = ["u1", "u1", "u2", "u3"]
    runs = {0: {"bench": {"m1": {"rows": {"user": users, "hit": [1, 1, 1, 0]}},
                          "m2": {"rows": {"user": users, "hit": [1, 0, 0, 0]}},
                          "bayes-ceiling": {"unseen": {}}}}}
    text = paired_table(runs, "rows")
    # m2 − m1: d = (0, −1, −1, 0), mean −0.5; per-user sums of d − d̄: 0, −.5, .5; SE = √(3/2 · 0.5) / 4; 3 users:
    # Student's t on 2 degrees of freedom, 4.3027 at 0.975 (one pair of methods)
    assert "| m1 | best |" in text and f"| m2 | -50.0 ± {430.27 * np.sqrt(0.75) / 4:.1f} |" in text
    assert "bayes-ceiling" not in text  # no rows of its own: it is no method
    assert paired_table({0: {"bench": {"m1": runs[0]["bench"]["m1"]}}}, "rows") == ""  # nothing to compare
    # a third method: three pairs of methods, each interval at 1 − 0.05/3, t₂ at 1 − 0.05/6: 7.6488
    runs[0]["bench"]["m3"] = {"rows": {"user": users, "hit": [1, 0, 0, 0]}}
    text = paired_table(runs, "rows")
    assert f"| m2 | -50.0 ± {764.88 * np.sqrt(0.75) / 4:.1f} |" in text and "| m3 | -50.0 ± 165.6 |" in text
    # the note gives the quantile the table used (it gave 7 methods' whatever the table held)
    assert "(7.65 for 3 methods and 3 users)." in text
    one_user = {0: {"bench": {m: {"rows": {"user": ["u1"], "hit": [h]}} for m, h in (("m1", 1), ("m2", 0))}}}
    assert "(m(m − 1)). An interval" in paired_table(one_user, "rows")  # no interval shown: no quantile to give


def test_paired_table_compares_on_the_rows_most_methods_have():
    """A method scored on fewer rows (a kept cell without its saved model lacks a seed's) is left out: it can
    neither be the best on rows of its own nor drop the methods that have them all."""
    users = ["u1", "u1", "u2", "u3"]
    runs = {s: {"bench": {"m1": {"rows": {"user": users, "hit": [1, 1, 1, 0]}},
                          "m2": {"rows": {"user": users, "hit": [1, 0, 0, 0]}}}} for s in (0, 1)}
    runs[0]["bench"]["lucky"] = {"rows": {"user": users, "hit": [1, 1, 1, 1]}}  # seed 0 only, all right
    text = paired_table(runs, "rows")
    assert "| m1 | best |" in text and "| m2 | -50.0 ± " in text and "| lucky | other rows |" in text


def test_gain_table_by_hand():
    """Chosen minus given hits of one model: d = (0, 1, 1, 0) on users u1, u1, u2, u3: +50 points, SE as above;
    over two seeds the users are seed:user clusters, 8 rows. ± t on users − 1 df: 4.303 (2 df), 2.571 (5 df)."""
    users = ["u1", "u1", "u2", "u3"]
    m1 = {"chosen": {"user": users, "hit": [1, 1, 1, 0]}, "given": {"user": users, "hit": [1, 0, 0, 0]}}
    seed = {"bench": {"m1": m1,
                      "bt": {"chosen": {"user": users, "hit": [1, 0, 0, 0]}},  # no given hits: left out
                      "bayes-ceiling": {"unseen": {}}}}
    text = gain_table({0: seed}, "chosen", "given")
    assert f"| m1 | +50.0 ± {430.3 * np.sqrt(0.75) / 4:.1f} |" in text and "| bt |" not in text  # ± 93.2
    two = gain_table({0: seed, 1: seed}, "chosen", "given")
    # 6 clusters (3 users × 2 seeds), sums of d − d̄: 0, −.5, .5 twice; SE² = 6/5 · 1 / 8²
    assert f"| m1 | +50.0 ± {257.06 * np.sqrt(6 / 5 * 1.0) / 8:.1f} |" in two  # ± 35.2
    assert gain_table({0: {"bench": {"bt": seed["bench"]["bt"]}}}, "chosen", "given") == ""


def test_paired_table_pools_seeds_by_whose_users_they_are():
    users = ["u1", "u1", "u2", "u3"]
    seed = {"bench": {"m1": {"rows": {"user": users, "hit": [1, 1, 1, 0]}},
                      "m2": {"rows": {"user": users, "hit": [1, 0, 0, 1]}}}}
    runs = {0: seed, 1: seed}
    a, b = np.array([1, 1, 1, 0] * 2, dtype=float), np.array([1, 0, 0, 1] * 2, dtype=float)
    new_users = paired_difference(b, a, [f"{s}:{u}" for s in (0, 1) for u in users])  # synthetic: 6 users
    same_users = paired_difference(b, a, users * 2)  # a folder of real data: the same 3 users twice
    assert new_users["difference_se"] != same_users["difference_se"]
    # Student's t at 0.975 on 5 degrees of freedom (6 users) and on 2 (3 users)
    for shared, d, t in (((), new_users, 257.06), (["bench"], same_users, 430.27)):
        assert f"| m2 | {100 * d['difference']:+.1f} ± {t * d['difference_se']:.1f} |" in paired_table(runs, "rows", shared)


def test_paired_table_leaves_out_a_benchmark_where_no_cell_has_hits():
    """bench --resume without --save-runs keeps cells without per-row hits, and a folder without unseen users has
    none: such a benchmark is left out of the paired table (it raised "max() arg is an empty sequence" after every
    fit, before results.md was written)."""
    hits = {"user": ["u1", "u2"], "hit": [1, 0]}
    runs = {0: {"kept": {"bt": {"seen": {}}, "gpm": {"seen": {}}},
                "fresh": {"bt": {"h": hits}, "gpm": {"h": {**hits, "hit": [1, 1]}}}}}
    text = paired_table(runs, "h")
    assert "| method | fresh |" in text and "kept" not in text


def test_compare_reports_only_the_user_kinds_the_data_holds(tmp_path, capsys) -> None:
    """Test rows of seen users only (no unseen users' context and query rows), then unseen users only: the
    report and the printed lines hold that kind alone, not an empty or zero entry for the other."""
    train, test = two_group_rows(n_users=3, pairs=20)
    write_jsonl(tmp_path / "train.jsonl", train)
    for method in ("bt", "pal-a"):
        assert main(["fit", method, "--data", str(tmp_path), "--out", str(tmp_path / method), "--set", "epochs=1",
                     "--no-progress"]) == 0
    capsys.readouterr()
    seen_rows, unseen_rows = [r for r in test if not r.get("role")], [r for r in test if r.get("role")]
    for kind, rows in (("seen", seen_rows), ("unseen", unseen_rows)):
        write_jsonl(tmp_path / "test.jsonl", rows)
        out = tmp_path / f"{kind}.json"
        assert main(["compare", "--runs", str(tmp_path / "bt"), str(tmp_path / "pal-a"), "--data", str(tmp_path),
                     "--out", str(out)]) == 0
        assert set(json.loads(out.read_text())) == {"run_a", "run_b", "shots", kind}
        printed = capsys.readouterr().out
        assert (f"{kind} users" in printed) and (("unseen" in printed) == (kind == "unseen"))


def test_rows_without_a_user_are_counted_as_no_user(fitted, tmp_path, capsys, caplog) -> None:
    """A null user_id means no user: each such row is its own cluster for the interval, but none is counted as a
    user, and where no seen row has a user the line says "rows without a user" instead of "seen users"."""
    bt, pal, test = fitted
    anonymous = [{k: v for k, v in r.items() if k != "user_id"} if r["user_id"] == "u0" and not r.get("role") else r
                 for r in test.rows]
    report = compare(pal, bt, PreferenceSet.from_rows(anonymous))
    assert (report["seen"]["users"], report["seen"]["rows_without_user"], report["seen"]["n"]) == (5, 15, 90)
    assert report["unseen"]["users"] == 2 and "rows_without_user" not in report["unseen"]
    pal.save_pretrained(tmp_path / "pal")
    bt.save_pretrained(tmp_path / "bt")
    runs = ["--runs", str(tmp_path / "pal"), str(tmp_path / "bt")]
    write_jsonl(tmp_path / "some.jsonl", anonymous)
    assert main(["compare", *runs, "--data", str(tmp_path / "some.jsonl"), "--out", str(tmp_path / "a.json")]) == 0
    assert "seen users (5 users, 15 rows without a user, 90 pairs): pal-a " in capsys.readouterr().out
    nobody = [{k: v for k, v in r.items() if k != "user_id"} for r in test.rows if not r.get("role")]
    write_jsonl(tmp_path / "nobody.jsonl", nobody)
    with caplog.at_level("WARNING", logger="pluralign"):
        assert main(["compare", *runs, "--data", str(tmp_path / "nobody.jsonl"), "--out",
                     str(tmp_path / "b.json")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("rows without a user (population) (90 pairs): pal-a ") and "users" not in printed
    saved = json.loads((tmp_path / "b.json").read_text())["seen"]
    assert (saved["users"], saved["rows_without_user"]) == (0, 90)
    assert (f"{tmp_path / 'nobody.jsonl'}: 90 row(s) without a user_id are scored with pal-a's population model, "
            "and counted as no user") in caplog.text
    assert "bt's population model" not in caplog.text  # bt has one reward for everyone: nothing to say


def test_active_warns_of_a_run_without_a_posterior(fitted, tmp_path, caplog) -> None:
    """compare --active says, as eval and predict do, that a run without a posterior (bt) takes the context pairs
    in file order."""
    bt, pal, test = fitted
    pal.save_pretrained(tmp_path / "pal")
    bt.save_pretrained(tmp_path / "bt")
    write_jsonl(tmp_path / "test.jsonl", test.rows)
    with caplog.at_level("WARNING", logger="pluralign"):
        assert main(["compare", "--runs", str(tmp_path / "pal"), str(tmp_path / "bt"), "--data",
                     str(tmp_path / "test.jsonl"), "--active", "--out", str(tmp_path / "c.json")]) == 0
    assert "--active: bt has no posterior over users, so it takes the context pairs in file order" in caplog.text
    assert "--active: pal-a" not in caplog.text
