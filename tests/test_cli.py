"""The `pluralign` command end to end on tiny embedding data: fit, eval, predict, adapt, errors."""

import json
import logging

import pytest
import torch

from conftest import two_group_rows
from pluralign.cli import main
from pluralign.config import preset
from pluralign.io import write_jsonl
from pluralign.methods import PreferenceModel, UserVector


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    train, test = two_group_rows(n_users=3, pairs=60)
    write_jsonl(folder / "train.jsonl", train)
    write_jsonl(folder / "test.jsonl", test)
    return folder


@pytest.fixture(scope="module")
def run_dir(data_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    assert main(["fit", "bt", "--data", str(data_dir), "--out", str(run), "--set", "epochs=3",
                 "--set", "hidden=[8]", "--no-progress"]) == 0
    return run


@pytest.fixture(scope="module")
def vpl_run(data_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("vpl")
    assert main(["fit", "vpl", "--data", str(data_dir), "--out", str(run), "--set", "epochs=2", "--no-progress"]) == 0
    return run


def test_fit_without_config_uses_the_shipped_preset(data_dir, tmp_path):
    run = tmp_path / "pal"
    assert main(["fit", "pal-a", "--data", str(data_dir), "--out", str(run), "--set", "epochs=1", "--no-progress"]) == 0
    config = json.loads((run / "config.json").read_text())["config"]
    shipped = preset("pal-a")
    assert shipped["k"] != 2 and shipped["metric_reg"] != 0.0  # differs from the constructor defaults
    assert (config["k"], config["metric_reg"], config["epochs"]) == (shipped["k"], shipped["metric_reg"], 1)


def test_fit_prints_no_advert_and_lightnings_lines_once(data_dir, tmp_path, capfd):
    assert main(["fit", "bt", "--data", str(data_dir), "--out", str(tmp_path / "r"), "--set", "epochs=1"]) == 0
    printed = "".join(capfd.readouterr())
    assert "litlogger" not in printed
    assert "bt: fit " in printed and "MB); saved to" in printed  # time, pairs/s and peak memory
    # Lightning's own console handler prints its lines; passed on to the CLI's too, each came out twice
    assert logging.getLogger("lightning").propagate is False
    advert = logging.LogRecord("lightning.pytorch.utilities.rank_zero", logging.INFO, __file__, 0,
                               "Tip: try installing [litlogger](https://pypi.org/project/litlogger/)", None, None)
    assert not logging.getLogger("lightning.pytorch.utilities.rank_zero").filter(advert)


def test_predict_says_which_users_get_the_population_model(data_dir, tmp_path, caplog):
    run = tmp_path / "pal"
    assert main(["fit", "pal-a", "--data", str(data_dir), "--out", str(run), "--set", "epochs=1", "--no-progress"]) == 0
    test_rows = [json.loads(line) for line in (data_dir / "test.jsonl").read_text().splitlines()]
    no_roles = tmp_path / "no_roles.jsonl"
    write_jsonl(no_roles, [{k: v for k, v in r.items() if k != "role"} for r in test_rows])
    assert main(["predict", "--run", str(run), "--data", str(no_roles), "--out", str(tmp_path / "p.jsonl")]) == 0
    assert "no_roles.jsonl: 2 user(s) the run was not trained on (new0, new1) are scored with the population" in caplog.text
    caplog.clear()
    assert main(["predict", "--run", str(run), "--data", str(data_dir / "test.jsonl"), "--out", str(tmp_path / "q.jsonl")]) == 0
    assert "not trained on" not in caplog.text  # with roles, new users adapt on their context rows


def test_fit_writes_a_run(run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    assert config["method"] == "bt" and config["config"]["epochs"] == 3
    assert (run_dir / "model.safetensors").exists()
    assert (run_dir / "checkpoints" / "last.ckpt").exists()
    assert list((run_dir / "logs").rglob("metrics.csv"))


def test_eval_and_predict(run_dir, data_dir, tmp_path, capsys):
    assert main(["eval", "--run", str(run_dir), "--data", str(data_dir), "--shots", "0,4",
                 "--out", str(tmp_path / "m.json")]) == 0
    printed = capsys.readouterr().out
    assert "seen users" in printed and "unseen users, 4 shots" in printed  # the table, not a JSON dump
    assert main(["eval", "--run", str(run_dir), "--data", str(data_dir), "--shots", "0,4", "--out",
                 str(tmp_path / "m2.json"), "--plot", str(tmp_path / "curve.png")]) == 0
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["eval", "--run", str(run_dir), "--data", str(data_dir), "--out", str(tmp_path / "m3.json"),
                 "--plot", str(tmp_path)]) == 2  # a folder where the PNG should go: stopped before any work
    assert "--plot" in capsys.readouterr().err and not (tmp_path / "m3.json").exists()
    report = json.loads((tmp_path / "m.json").read_text())
    assert list(report["unseen"]) == ["0", "4"] and "oracle_accuracy" in report["seen"]
    # --shots as a list, as --seeds and --methods are, gives the same report
    assert main(["eval", "--run", str(run_dir), "--data", str(data_dir), "--shots", "4", "0",
                 "--out", str(tmp_path / "listed.json")]) == 0
    assert json.loads((tmp_path / "listed.json").read_text())["unseen"] == report["unseen"]
    assert main(["eval", "--run", str(run_dir), "--data", str(data_dir), "--shots", "0,4", "--active",
                 "--out", str(tmp_path / "chosen.json")]) == 0
    # bt has no posterior to ask by: it takes the file's order, and its rows are not labelled chosen
    assert "unseen users, 4 shots" in capsys.readouterr().out
    assert "questions" not in json.loads((tmp_path / "chosen.json").read_text())
    assert main(["predict", "--run", str(run_dir), "--data", str(data_dir / "test.jsonl"),
                 "--out", str(tmp_path / "p.jsonl"), "--shots", "4"]) == 0
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    test_rows = [json.loads(line) for line in (data_dir / "test.jsonl").read_text().splitlines()]
    assert [p["index"] for p in lines] == [i for i, r in enumerate(test_rows) if r.get("role") != "context"]
    assert all(0 <= p["p_chosen"] <= 1 and p["user_id"] == test_rows[p["index"]]["user_id"] for p in lines)
    assert main(["predict", "--run", str(run_dir), "--data", str(data_dir / "test.jsonl"),
                 "--out", str(tmp_path / "chosen.jsonl"), "--shots", "4", "--active"]) == 0
    chosen = [json.loads(line) for line in (tmp_path / "chosen.jsonl").read_text().splitlines()]
    assert chosen == lines  # bt has no posterior to ask by: the file's order, the same probabilities


def test_adapt(vpl_run, run_dir, data_dir, tmp_path, capsys):
    pairs = tmp_path / "pairs.jsonl"
    rows = [json.loads(line) for line in (data_dir / "test.jsonl").read_text().splitlines()]
    write_jsonl(pairs, [r for r in rows if r.get("role") == "context"][:4])
    assert main(["adapt", "--run", str(vpl_run), "--pairs", str(pairs), "--out", str(tmp_path / "u.json")]) == 0
    assert json.loads((tmp_path / "u.json").read_text())["n_pairs"] == 4
    # bt has one reward for everyone: no user to infer, and no claim that one was
    assert main(["adapt", "--run", str(run_dir), "--pairs", str(pairs), "--out", str(tmp_path / "bt.json")]) == 2
    assert "bt has no user vector" in capsys.readouterr().err and not (tmp_path / "bt.json").exists()


def test_adapts_user_json_predicts_as_the_user_it_was_inferred_from(vpl_run, data_dir, tmp_path) -> None:
    """user.json read back with ``UserVector.from_dict`` is the user ``infer_user`` gives on the same pairs: the
    same vector, variance and readout's extra, and the same predictions."""
    rows = [json.loads(line) for line in (data_dir / "test.jsonl").read_text().splitlines()]
    context = [r for r in rows if r.get("role") == "context"][:4]
    write_jsonl(tmp_path / "pairs.jsonl", context)
    assert main(["adapt", "--run", str(vpl_run), "--pairs", str(tmp_path / "pairs.jsonl"),
                 "--out", str(tmp_path / "u.json")]) == 0
    model = PreferenceModel.from_pretrained(vpl_run)
    read = UserVector.from_dict(json.loads((tmp_path / "u.json").read_text()))
    inferred = model.infer_user(context)
    assert torch.equal(read.mean, inferred.mean) and torch.equal(read.variance, inferred.variance)
    assert (read.method, read.n_pairs, read.extra) == ("vpl", 4, inferred.extra)
    a, b = (torch.tensor([r[c] for r in rows[:6]]) for c in ("chosen_embedding", "rejected_embedding"))
    assert torch.equal(model.prefer_proba(None, a, b, user=read), model.prefer_proba(None, a, b, user=inferred))
    with pytest.raises(ValueError, match=r"^a user vector is a mapping with a 'mean'"):
        UserVector.from_dict({"variance": [1.0]})


def test_bad_input_is_one_line_and_nonzero(run_dir, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p", "chosen": "", "rejected": "b"}\n')
    out = tmp_path / "m.json"
    assert main(["eval", "--run", str(run_dir), "--data", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"pluralign: error: {bad}, line 2, column 'chosen': empty text"
    assert not out.exists() and not list(tmp_path.glob(".*tmp"))
    assert main(["fit", "nope", "--data", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err
    assert main(["fit", "bt", "--data", str(bad), "--out", str(tmp_path / "r"), "--set", "epochs=0"]) == 2
    assert "epochs=0 must be at least 1" in capsys.readouterr().err
    assert main(["eval", "--run", str(tmp_path), "--data", str(bad), "--out", str(out)]) == 2
    assert "not a saved pluralign model" in capsys.readouterr().err
    # an output that cannot be written stops before any work, naming the flag and the path
    assert main(["fit", "bt", "--data", str(bad), "--out", str(bad)]) == 2
    assert capsys.readouterr().err.strip() == f"pluralign: error: --out {bad}: is a file; expected a folder"
    assert main(["eval", "--run", str(run_dir), "--data", str(bad), "--out", str(bad / "m.json")]) == 2
    assert capsys.readouterr().err.strip() == f"pluralign: error: --out {bad / 'm.json'}: {bad} is a file, not a folder"
    assert main(["predict", "--run", str(run_dir), "--data", str(bad), "--out", str(tmp_path)]) == 2
    assert "is a folder; expected a file" in capsys.readouterr().err
    assert main(["bench", "--methods", "bt", "--benchmarks", "cyclic", "--out", str(bad)]) == 2
    assert "is a file; expected a folder" in capsys.readouterr().err
    assert main(["predict", "--run", str(run_dir), "--data", str(bad), "--out", str(out), "--shots", "-1"]) == 2
    assert "--shots -1: must be non-negative" in capsys.readouterr().err and not out.exists()
    assert main(["eval", "--run", str(run_dir), "--data", str(bad), "--out", str(out), "--shots", "0,two"]) == 2
    assert capsys.readouterr().err.strip() == ("pluralign: error: --shots '0,two': expected comma-separated whole "
                                               "numbers") and not out.exists()


def test_help_for_every_subcommand(capsys):
    """Each command's --help prints (a literal % in a docstring once crashed the top-level one) and says what
    the command does; the names the help lists by hand are every method and adapter there is."""
    from pluralign.data.adapters import ADAPTERS
    from pluralign.methods import METHODS

    helps = {}
    for command in ([], ["data"], ["data", "list"], ["data", "build"], ["data", "convert"], ["data", "split"],
                    ["fit"], ["predict"], ["eval"], ["adapt"], ["rank"], ["compare"], ["bench"], ["users"], ["demo"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--help"])
        assert exit_info.value.code == 0
        helps[" ".join(command)] = capsys.readouterr().out
        assert helps[" ".join(command)].startswith("usage: pluralign")
    assert "95% interval" in helps["compare"] and "95%% " not in helps[""]
    assert "Train METHOD on DATA" in helps["fit"] and "compare " in helps[""]
    assert all(name in helps["fit"] for name in METHODS)
    assert all(name in helps["data convert"] for name in ADAPTERS)
    # an option's default is said once: argparse's value where the help did not say it, never a flag's True/False
    flat = {k: " ".join(v.split()) for k, v in helps.items()}
    assert "(default: 0,1,2,4,8,16)" in flat["eval"] and "(default: 32-true)" in flat["fit"]
    assert "(default: True)" not in flat["fit"] and "(default: False)" not in flat["eval"]
    assert flat["data split"].count("(default: 16)") == 1
    assert "(default: a tenth of those with enough pairs)" in flat["data split"]


def test_version_and_python_dash_m(capsys):
    import subprocess
    import sys

    from pluralign import __version__
    from pluralign.provenance import git_commit

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out.strip()
    commit = git_commit()
    assert printed == f"pluralign {__version__}" + (f" ({commit[:12]}{'+dirty' if '+dirty' in commit else ''})"
                                                     if commit else "")
    result = subprocess.run([sys.executable, "-m", "pluralign", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("usage: pluralign")


def test_adapt_active_ranks_a_pool(data_dir, tmp_path, run_dir, vpl_run, capsys, caplog):
    rows = [json.loads(line) for line in (data_dir / "test.jsonl").read_text().splitlines()]
    context = [r for r in rows if r.get("role") == "context"]
    write_jsonl(tmp_path / "pairs.jsonl", context[:2])
    write_jsonl(tmp_path / "pool.jsonl", context[2:12])
    assert main(["adapt", "--run", str(vpl_run), "--pairs", str(tmp_path / "pairs.jsonl"), "--active",
                 str(tmp_path / "pool.jsonl"), "--queries", "3", "--out", str(tmp_path / "u.json")]) == 0
    result = json.loads((tmp_path / "u.json").read_text())
    assert len(result["next_queries"]) == 3 and len(set(result["next_queries"])) == 3
    assert all(0 <= i < 10 for i in result["next_queries"]) and result["variance"] is not None
    assert f"rows {', '.join(map(str, result['next_queries']))} of" in capsys.readouterr().out
    # a method without a posterior cannot rank queries: a clear error, no output
    assert main(["adapt", "--run", str(run_dir), "--pairs", str(tmp_path / "pairs.jsonl"), "--active",
                 str(tmp_path / "pool.jsonl"), "--out", str(tmp_path / "bt.json")]) == 2
    assert "bt has no user vector" in capsys.readouterr().err
    assert not (tmp_path / "bt.json").exists()
    assert main(["adapt", "--run", str(vpl_run), "--pairs", str(tmp_path / "pairs.jsonl"), "--active",
                 str(tmp_path / "pool.jsonl"), "--queries", "0", "--out", str(tmp_path / "none.json")]) == 2
    assert "--queries must be at least 1" in capsys.readouterr().err and not (tmp_path / "none.json").exists()
    with caplog.at_level("WARNING", logger="pluralign"):  # more than the pool holds: all of it, said
        assert main(["adapt", "--run", str(vpl_run), "--pairs", str(tmp_path / "pairs.jsonl"), "--active",
                     str(tmp_path / "pool.jsonl"), "--queries", "12", "--out", str(tmp_path / "all.json")]) == 0
    assert sorted(json.loads((tmp_path / "all.json").read_text())["next_queries"]) == list(range(10))
    assert f"--queries 12: {tmp_path / 'pool.jsonl'} holds 10 pair(s); all of them are chosen" in caplog.messages
    assert not [m for m in caplog.messages if "answered already" in m]  # the pool holds none of the pairs
    # a pool that holds the answered pairs: they come last, and asking for them is said to tell nothing
    write_jsonl(tmp_path / "overlap.jsonl", context[:4])
    with caplog.at_level("WARNING", logger="pluralign"):
        assert main(["adapt", "--run", str(vpl_run), "--pairs", str(tmp_path / "pairs.jsonl"), "--active",
                     str(tmp_path / "overlap.jsonl"), "--queries", "4", "--out", str(tmp_path / "o.json")]) == 0
    assert json.loads((tmp_path / "o.json").read_text())["next_queries"][2:] in ([0, 1], [1, 0])
    assert (f"--active: {tmp_path / 'overlap.jsonl'} holds 2 pairs not answered in {tmp_path / 'pairs.jsonl'}; the "
            "rows to ask after them (0, 1) are answered already, and asking again tells nothing new") in [
        m.replace("(1, 0)", "(0, 1)") for m in caplog.messages]
    caplog.clear()
    write_jsonl(tmp_path / "answered.jsonl", context[:2])
    with caplog.at_level("WARNING", logger="pluralign"):  # every pool pair answered: said so, not "after none"
        assert main(["adapt", "--run", str(vpl_run), "--pairs", str(tmp_path / "pairs.jsonl"), "--active",
                     str(tmp_path / "answered.jsonl"), "--queries", "1", "--out", str(tmp_path / "a.json")]) == 0
    assert (f"--active: every pair of {tmp_path / 'answered.jsonl'} is answered in {tmp_path / 'pairs.jsonl'} "
            "already, and asking again tells nothing new") in caplog.messages
    # a user who has answered nothing: no --pairs, the first questions by the prior (from Python: next_query(pool))
    assert main(["adapt", "--run", str(vpl_run), "--active", str(tmp_path / "pool.jsonl"), "--queries", "2",
                 "--out", str(tmp_path / "first.json")]) == 0
    first = json.loads((tmp_path / "first.json").read_text())
    assert first["n_pairs"] == 0 and first["next_queries"][0] == PreferenceModel.from_pretrained(vpl_run).next_query(
        tmp_path / "pool.jsonl")
    assert main(["adapt", "--run", str(vpl_run), "--out", str(tmp_path / "nothing.json")]) == 2
    assert capsys.readouterr().err.strip() == ("pluralign: error: --pairs: give the new user's labelled pairs (or "
                                               "--active POOL alone, to choose the first questions of a user who has "
                                               "answered none)")


def test_threads_option_and_its_error(data_dir, tmp_path, capsys):
    import torch

    before = torch.get_num_threads()
    assert main(["fit", "bt", "--data", str(data_dir), "--out", str(tmp_path / "r"), "--set", "epochs=1",
                 "--threads", "1", "--no-progress"]) == 0
    record = json.loads((tmp_path / "r" / "config.json").read_text())
    assert record["fit"]["threads"] == 1 and record["environment"]["torch_threads"] == 1  # what the fit ran on
    assert torch.get_num_threads() == before  # and the process's count back, as for fit() in Python
    assert main(["fit", "bt", "--data", str(data_dir), "--out", str(tmp_path / "r2"), "--threads", "0"]) == 2
    assert "threads=0 must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "r2" / "model.safetensors").exists()


def test_data_build_with_survey_contexts(tmp_path, capsys):
    assert main(["data", "build", "ideal-points", "--out", str(tmp_path / "b"), "--context", "survey"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"and its card {tmp_path / 'b'}/README.md")
    assert (tmp_path / "b" / "README.md").is_file()
    rows = [json.loads(line) for line in (tmp_path / "b" / "test.jsonl").read_text().splitlines()]
    assert all(r["controversial"] for r in rows if r.get("role") == "context")
    with pytest.raises(SystemExit):  # argparse rejects an unknown protocol before anything is written
        main(["data", "build", "pets", "--out", str(tmp_path / "c"), "--context", "chosen"])
    assert not (tmp_path / "c").exists()


def test_data_build_takes_builder_options(tmp_path, capsys):
    assert main(["data", "build", "pets", "--out", str(tmp_path / "b"), "--set", "n_users=4",
                 "--set", "pairs_per_user=10"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "b" / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 40 and len({r["user_id"] for r in rows}) == 4
    assert main(["data", "build", "pets", "--out", str(tmp_path / "c"), "--set", "n_user=4"]) == 2
    assert "benchmark 'pets' has no option 'n_user'" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
    for option in ("context=survey", "seed=3"):  # `data list` shows them as options; here they are flags
        assert main(["data", "build", "pets", "--out", str(tmp_path / "c"), "--set", option]) == 2
        flag = option.partition("=")[0]
        assert capsys.readouterr().err == f"pluralign: error: --set {flag}=...: use --{flag}\n"
    assert main(["data", "list"]) == 0  # every builder's options with their defaults, for an installed package too
    listed = " ".join(capsys.readouterr().out.split())
    assert "options: n_users=30, n_unseen_users=12, pairs_per_user=100," in listed and "balanced_splits=False" in listed


def test_adapt_warns_when_the_pairs_are_several_users(data_dir, tmp_path, vpl_run, caplog):
    rows = [json.loads(line) for line in (data_dir / "test.jsonl").read_text().splitlines()]
    context = [r for r in rows if r.get("role") == "context"]
    two_users = [next(r for r in context if r["user_id"] == u) for u in sorted({r["user_id"] for r in context})[:2]]
    write_jsonl(tmp_path / "pairs.jsonl", two_users)
    assert main(["adapt", "--run", str(vpl_run), "--pairs", str(tmp_path / "pairs.jsonl"), "--out",
                 str(tmp_path / "u.json")]) == 0
    assert "holds the pairs of 2 users" in caplog.text


def test_rank_best_of_n_for_a_user(tmp_path, capsys, caplog):
    """`pluralign rank` on a text run: each record's best response by the reward of a known user, of a new
    user from pairs, of each record's own user, or MaxMin's worst-off group; bad combinations are one line."""
    from pluralign.data.synthetic import build_benchmark
    from pluralign.methods.base import PreferenceModel

    bench = build_benchmark("pets", seed=0, n_users=4, n_unseen_users=1, pairs_per_user=12, test_pairs_per_user=4)
    bench.write(tmp_path / "pets")
    run = tmp_path / "pal"
    assert main(["fit", "pal-a", "--data", str(tmp_path / "pets"), "--out", str(run), "--set", "epochs=3",
                 "--set", "hidden=[]", "--no-progress"]) == 0
    model = PreferenceModel.from_pretrained(run)
    texts = sorted({r["chosen"] for r in bench.test} | {r["rejected"] for r in bench.test})[:5]
    prompt = bench.test[0]["prompt"]
    users = sorted({r["user_id"] for r in bench.train})
    write_jsonl(tmp_path / "c.jsonl", [{"prompt": prompt, "responses": texts[:3], "user_id": users[0]},
                                       {"prompt": prompt, "responses": texts[2:], "user_id": users[1]}])
    write_jsonl(tmp_path / "pairs.jsonl", [r for r in bench.test if r.get("role") == "context"][:4])

    rank = ["rank", "--run", str(run), "--candidates", str(tmp_path / "c.jsonl")]
    assert main([*rank, "--out", str(tmp_path / "r.jsonl")]) == 0
    ranked = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    for record, responses, user in zip(ranked, (texts[:3], texts[2:]), users):
        expected = model.score(prompt, responses, user=user)
        assert record["rewards"] == pytest.approx(expected.tolist(), abs=1e-5)
        assert record["best"] == int(expected.argmax()) and record["response"] == responses[record["best"]]
    assert "each record's user_id" in capsys.readouterr().out
    with caplog.at_level("WARNING", logger="pluralign"):
        assert main([*rank, "--out", str(tmp_path / "n.jsonl"), "--pairs", str(tmp_path / "pairs.jsonl")]) == 0
    assert "a new user from 4 pairs" in capsys.readouterr().out
    # the records' own ids change nothing then: said (they were left without a word)
    assert caplog.messages[-1] == (f"{tmp_path / 'c.jsonl'}: 2 records name a user_id; ranked for a new user from 4 "
                                   "pairs instead")
    write_jsonl(tmp_path / "one.jsonl", [r for r in bench.test if r.get("role") == "context"][:1])
    assert main([*rank, "--out", str(tmp_path / "o.jsonl"), "--pairs", str(tmp_path / "one.jsonl")]) == 0
    assert "ranked for a new user from 1 pair)" in capsys.readouterr().out  # not "1 pairs"
    for extra, message in ((["--egalitarian"], "needs MaxMin's group rewards"),
                           (["--user", "nobody"], "unknown user 'nobody'"),
                           (["--egalitarian", "--user", users[0]], "takes no --user or --pairs")):
        out = tmp_path / "x.jsonl"
        assert main([*rank, "--out", str(out), *extra]) == 2
        assert message in capsys.readouterr().err and not out.exists()
    (tmp_path / "new.jsonl").write_text("".join(json.dumps({"prompt": prompt, "responses": texts[:2], "user_id": u})
                                                + "\n\n" for u in (users[0], "zzz")))
    assert main(["rank", "--run", str(run), "--candidates", str(tmp_path / "new.jsonl"), "--out",
                 str(tmp_path / "x.jsonl")]) == 2
    assert capsys.readouterr().err.strip().endswith(  # the line an editor shows (it said "record 2")
        f"{tmp_path / 'new.jsonl'}, line 3, column 'user_id': 'zzz' is not a user of the run; rank a new user's "
        "records with --pairs FILE of their labelled pairs")
    with pytest.raises(SystemExit) as stop:  # argparse: one user or the other
        main([*rank, "--out", str(tmp_path / "x.jsonl"), "--user", users[0], "--pairs", str(tmp_path / "pairs.jsonl")])
    assert stop.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    maxmin = tmp_path / "maxmin"  # MaxMin-RLHF's best-of-n: the response whose worst group's reward is highest
    assert main(["fit", "maxmin", "--data", str(tmp_path / "pets"), "--out", str(maxmin), "--set", "epochs=2",
                 "--set", "em_iterations=1", "--set", "em_epochs=1", "--no-progress"]) == 0
    assert main(["rank", "--run", str(maxmin), "--candidates", str(tmp_path / "c.jsonl"), "--egalitarian",
                 "--out", str(tmp_path / "e.jsonl")]) == 0
    assert "ranked for the worst-off group" in capsys.readouterr().out
    worst = PreferenceModel.from_pretrained(maxmin)
    for record, responses in zip([json.loads(x) for x in (tmp_path / "e.jsonl").read_text().splitlines()],
                                 (texts[:3], texts[2:])):
        assert record["rewards"] == pytest.approx(worst.maxmin_score(prompt, responses).tolist(), abs=1e-5)
        assert record["best"] == int(torch.tensor(record["rewards"]).argmax())
    # the egalitarian reward is no record's user's: an id the run never saw was refused, then ignored
    assert main(["rank", "--run", str(maxmin), "--candidates", str(tmp_path / "new.jsonl"), "--egalitarian",
                 "--out", str(tmp_path / "e2.jsonl")]) == 0


def test_demo_runs_on_the_shipped_data(tmp_path, capsys):
    """`make demo`'s job, one method: the shipped pets rows, the Bayes ceiling beside it, the record of the run."""
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--methods", "bt"]) == 0
    table = (out / "results.md").read_text()
    assert "| pets | bt |" in table and "| pets | bayes-ceiling |" in table
    assert json.loads((out / "run.json").read_text())["command"] == "demo"
    assert (out / "few_shot.png").stat().st_size > 0 and "what made them" in capsys.readouterr().out
