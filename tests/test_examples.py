"""Every example runs (smoke), with few epochs; on a feature benchmark where the example allows one."""

import importlib.util
from pathlib import Path

import pytest

from conftest import two_group_rows
from pluralign.io import write_jsonl

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_smoke_run():
    tested = {"fit_and_compare", "few_shot_user", "split_real_data", "personalized_best_of_n", "grpo_for_a_user",
              "ask_a_new_user"}
    assert {p.stem for p in EXAMPLES.glob("*.py")} == tested


def test_fit_and_compare(capsys):
    results = load("fit_and_compare").main(["--data", "ideal-points", "--epochs", "2"])
    assert list(results) == ["bt", "vpl", "paired"]  # BT vs VPL, each alone, then on the same rows
    assert all("accuracy" in results[m]["seen"] for m in ("bt", "vpl"))
    paired = results["paired"]["unseen"]
    assert paired["accuracy_b"] == pytest.approx(results["bt"]["unseen_k8"]["accuracy"], abs=1e-4)
    assert f"unseen users, 8 shots: vpl − bt = {100 * paired['difference']:+.1f} ± " in capsys.readouterr().out


@pytest.mark.parametrize("method", ["bt", "pal-a", "vpl"])
def test_few_shot_user(method):
    accuracy = load("few_shot_user").main(["--data", "ideal-points", "--method", method, "--epochs", "2"])
    assert 0.55 < accuracy <= 1.0  # above chance on the user's 32 query pairs after 2 epochs (0.59-0.75, seeded)


def test_few_shot_user_with_more_shots_than_context_pairs(capsys):
    """--shots 20 on a user of 16 context pairs adapts on the 16 and says so (an IndexError after the fit once)."""
    load("few_shot_user").main(["--data", "ideal-points", "--method", "pal-a", "--epochs", "1", "--shots", "20"])
    out = capsys.readouterr().out
    assert "has 16 context pairs: adapting on all of them, not 20" in out and "from 16 pairs" in out


@pytest.mark.parametrize("method", ["pal-b", "vpl"])
def test_ask_a_new_user(method, capsys):
    result = load("ask_a_new_user").main(["--data", "ideal-points", "--method", method, "--epochs", "2",
                                          "--questions", "3"])
    assert set(result) == {"chosen", "given"} and all(0.55 < a <= 1.0 for a in result.values())  # above chance
    printed = capsys.readouterr().out
    assert printed.count("question ") == 3 and "with the questions it chose" in printed


def test_split_real_data(tmp_path):
    report = load("split_real_data").main(["--data", "ideal-points", "--method", "pal-a", "--epochs", "2",
                                            "--unseen-users", "4", "--out", str(tmp_path)])
    assert set(report["unseen"]) == {"0", "4", "8", "16"} and (tmp_path / "report.json").exists()


def test_split_real_data_holding_out_prompts(tmp_path, capsys):
    """Users who label pairs on 10 prompts (embedding rows): with the prompts held out too, no query pair was
    trained on."""
    train, _ = two_group_rows(n_users=8, pairs=40)
    rows = [{**r, "prompt_embedding": [float(i % 10), 1.0]} for i, r in enumerate(train)]
    write_jsonl(tmp_path / "pooled.jsonl", rows)
    report = load("split_real_data").main([str(tmp_path / "pooled.jsonl"), "--method", "pal-a", "--epochs", "2",
                                            "--context", "8", "--unseen-users", "2", "--hold-out-prompts",
                                            "--out", str(tmp_path)])
    assert set(report["unseen"]) == {"0", "4", "8"} and report["unseen"]["8"]["n"] == 16  # 2 users × 8 on 2 prompts
    assert capsys.readouterr().out.startswith("0 of 16 query pairs were labelled in training")


def test_personalized_best_of_n():
    """On a small pets draw (text, so the shipped backbone embeds it): every selector picks, and the scores
    are shares and regrets."""
    results = load("personalized_best_of_n").main(["--data", "pets", "--method", "pal-a", "--epochs", "2", "--n", "3",
                                                   "--rounds", "3", "--data-set", "n_users=6",
                                                   "--data-set", "n_unseen_users=2"])
    assert set(results) == {"random", "bt (one reward)", "pal-a, user from 8 pairs", "maxmin (worst-off group)"}
    for scores in results.values():
        assert 0 <= scores["favourite"] <= 1 and scores["regret"] >= 0
        assert {"helpful", "harmless"} <= set(scores)



def test_grpo_for_a_user():
    """Two GRPO steps of the tiny policy, rewarded by a new user's PAL-A reward (TRL installed by make)."""
    pytest.importorskip("trl")
    log = load("grpo_for_a_user").main(["--method", "pal-a", "--epochs", "2", "--steps", "2", "--max-length", "4",
                                        "--data-set", "n_users=4", "--data-set", "n_unseen_users=1"])
    assert [e["step"] for e in log] == [1, 2] and all(isinstance(e["reward"], float) for e in log)


def test_grpo_egalitarian_needs_maxmin_and_says_so_before_fitting(capsys):
    """--egalitarian with pal-a failed after the fit with a traceback; now argparse's one line, at once."""
    with pytest.raises(SystemExit) as exit_:
        load("grpo_for_a_user").main(["--egalitarian", "--method", "pal-a"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        "error: --egalitarian needs --method maxmin (the worst-off group's reward), not pal-a")
    with pytest.raises(SystemExit) as exit_:  # GPM has no scalar reward: refused before the fit too
        load("grpo_for_a_user").main(["--method", "gpm"])
    assert exit_.value.code == 2 and "error: --method gpm: GPM has no scalar reward" in capsys.readouterr().err
