"""`pluralign eval` on data the protocol cannot score as it would like: unseen users with fewer context rows
than k (or none), and no unseen users at all. Each is said, naming what and where; nothing is silently empty."""

import json

import pytest

from conftest import two_group_rows
from pluralign.cli import main
from pluralign.io import write_jsonl


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """new0: 4 context and 5 query rows; new1: 5 query rows and no context; new2: 2 context rows and 5 queries."""
    folder = tmp_path_factory.mktemp("data")
    train, test = two_group_rows(n_users=3, pairs=20, unseen=3, context=4, queries=5)
    test = [r for r in test if not (r["user_id"] == "new1" and r.get("role") == "context")]
    surplus = [i for i, r in enumerate(test) if r["user_id"] == "new2" and r.get("role") == "context"][2:]
    write_jsonl(folder / "train.jsonl", train)
    write_jsonl(folder / "test.jsonl", [r for i, r in enumerate(test) if i not in surplus])
    write_jsonl(folder / "seen.jsonl", [r for r in test if not r.get("role")])
    return folder


@pytest.fixture(scope="module")
def bt_run(data_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("bt")
    assert main(["fit", "bt", "--data", str(data_dir), "--out", str(run), "--set", "epochs=1", "--set", "hidden=[8]",
                 "--no-progress"]) == 0
    return run


def test_unseen_users_with_fewer_context_rows_than_k_are_named(bt_run, data_dir, tmp_path, caplog) -> None:
    """A user with query rows and no context rows gets the population model at every k, one with fewer than k
    adapts on all of theirs: both named; their query rows stay in every k's rows."""
    test, out = data_dir / "test.jsonl", tmp_path / "e.json"
    with caplog.at_level("WARNING", logger="pluralign"):
        assert main(["eval", "--run", str(bt_run), "--data", str(test), "--shots", "0,2,4", "--out", str(out)]) == 0
    assert (f"{test}: 1 unseen user(s) with query rows have no context rows (new1); they are scored with the "
            "population model at every k") in caplog.text
    assert (f"shots 4: 1 unseen user(s) in {test} have fewer than 4 context pairs (new2 has 2); at a k above "
            "theirs they adapt on all of them") in caplog.text
    assert "the largest context" not in caplog.text  # new0 has 4: no k is above every user's context
    unseen = json.loads(out.read_text())["unseen"]
    assert {k: m["n"] for k, m in unseen.items()} == {"0": 15, "2": 15, "4": 15}
    # the context each k used, users with 4, 0 and 2 context pairs: at k = 2, (2 + 0 + 2) / 3, each capped at k
    assert (unseen["2"]["users_short_of_k"], unseen["2"]["context_pairs"]) == (1, 1.33)
    assert (unseen["4"]["users_short_of_k"], unseen["4"]["context_pairs"]) == (2, 2.0)
    caplog.clear()
    with caplog.at_level("WARNING", logger="pluralign"):
        assert main(["eval", "--run", str(bt_run), "--data", str(test), "--shots", "0", "--out", str(out)]) == 0
    assert "context" not in caplog.text  # k = 0 adapts nobody: nothing is short
    caplog.clear()
    with caplog.at_level("WARNING", logger="pluralign"):
        assert main(["predict", "--run", str(bt_run), "--data", str(test), "--shots", "8", "--out",
                     str(tmp_path / "p.jsonl")]) == 0
    assert "the largest context in" in caplog.text and "(new1)" in caplog.text
    assert "shots 8: 1 unseen user(s)" in caplog.text and "fewer than 4 context pairs (new2 has 2)" in caplog.text


def test_eval_without_unseen_users_says_shots_score_nothing_and_draws_no_empty_curve(
        bt_run, data_dir, tmp_path, capsys, caplog) -> None:
    seen, out, plot = data_dir / "seen.jsonl", tmp_path / "m.json", tmp_path / "m.png"
    assert main(["eval", "--run", str(bt_run), "--data", str(seen), "--out", str(out), "--plot", str(plot)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"pluralign: error: --plot {plot}: {seen} has no unseen users (rows with role query), so there is no "
        "few-shot curve to draw; leave out --plot")
    assert not out.exists() and not plot.exists()
    with caplog.at_level("WARNING", logger="pluralign"):
        assert main(["eval", "--run", str(bt_run), "--data", str(seen), "--out", str(out)]) == 0
    assert (f"{seen}: no unseen users' query rows (role query), so --shots 0,1,2,4,8,16 scores nothing; the report "
            "holds seen users only") in caplog.text
    assert json.loads(out.read_text())["unseen"] == {}


def test_fit_on_held_out_rows_or_with_nothing_left_to_train_says_so(data_dir, tmp_path, caplog, capsys) -> None:
    """Fitting a split's test.jsonl trains on unseen users' held-out rows: said. A --resume of a finished fit
    trains nothing: said, not "fit 60 pairs in 0.0 s (0 pairs/s)"."""
    test, run = data_dir / "test.jsonl", tmp_path / "run"
    fit = ["fit", "bt", "--data", str(test), "--out", str(run), "--set", "epochs=1", "--set", "hidden=[8]",
           "--no-progress"]
    with caplog.at_level("WARNING", logger="pluralign"):
        assert main(fit) == 0
    assert (f"{test}: 21 training row(s) have a role (context/query: unseen users' held-out rows); bt trains on "
            "them as ordinary pairs") in caplog.messages
    capsys.readouterr()
    assert main([*fit, "--resume"]) == 0
    assert capsys.readouterr().out == f"bt: nothing left to train; saved to {run}\n"


def test_ctrl_c_in_a_fit_is_one_line_that_says_how_to_go_on(data_dir, tmp_path, monkeypatch, capsys) -> None:
    """Lightning answers Ctrl-C with sys.exit(1) and SIGINT ignored: the CLI said nothing (under --no-progress)
    and exited 1, a Python caller got SystemExit, and Ctrl-C was dead after. A run folder left so says what it
    is when read."""
    import signal

    from pluralign.training.module import ObjectiveModule

    def ctrl_c_in_the_second_epoch(self):
        if self.current_epoch == 1:
            raise KeyboardInterrupt
        self.epochs_trained += 1

    monkeypatch.setattr(ObjectiveModule, "on_train_epoch_end", ctrl_c_in_the_second_epoch)
    handler = signal.getsignal(signal.SIGINT)
    run = tmp_path / "run"
    fit = ["fit", "bt", "--data", str(data_dir), "--out", str(run), "--set", "epochs=3", "--no-progress"]
    capsys.readouterr()
    assert main(fit) == 130
    assert capsys.readouterr().err == (f"pluralign: interrupted: {run / 'checkpoints'} keeps the last finished epoch: "
                                       "the same command with --resume goes on from there\n")
    assert signal.getsignal(signal.SIGINT) is handler
    assert main(["eval", "--run", str(run), "--data", str(data_dir), "--out", str(tmp_path / "m.json")]) == 2
    assert capsys.readouterr().err == (f"pluralign: error: {run}: no config.json: a fit that stopped before it "
                                       "finished (its checkpoints are there); finish it with the same pluralign fit "
                                       "command and --resume\n")
    monkeypatch.undo()
    assert main([*fit, "--resume"]) == 0
    # before any checkpoint (embedding, say): the line alone, and nothing to go on from
    from pluralign.methods.base import PreferenceModel

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(PreferenceModel, "fit", ctrl_c)
    capsys.readouterr()
    assert main([*fit[:5], str(tmp_path / "fresh"), *fit[6:]]) == 130
    assert capsys.readouterr().err == "pluralign: interrupted\n"
    # nor from an earlier fit's checkpoints, which a fresh fit clears only after its embedding
    assert main(fit) == 130
    assert capsys.readouterr().err == "pluralign: interrupted\n"


def test_resume_into_another_methods_run_is_refused(data_dir, tmp_path, capsys) -> None:
    """MaxMin's stage checkpoints (pooled/, em0/) are none that bt looks for: bt --resume started over without a
    word, leaving them beside its own; and maxmin --resume into a bt folder did the same."""
    run = tmp_path / "run"
    common = ["--data", str(data_dir), "--out", str(run), "--set", "epochs=1", "--no-progress"]
    assert main(["fit", "maxmin", *common, "--set", "em_iterations=1"]) == 0
    capsys.readouterr()
    assert main(["fit", "bt", *common, "--resume"]) == 2
    assert capsys.readouterr().err == (f"pluralign: error: --resume: {run / 'checkpoints' / 'em0' / 'last.ckpt'} is a "
                                       "checkpoint of a maxmin fit, not bt; fit without --resume, or into another "
                                       "folder, to start over\n")
    assert main(["fit", "bt", *common]) == 0  # without --resume: a fresh fit, the old checkpoints cleared
    assert main(["fit", "maxmin", *common, "--set", "em_iterations=1", "--resume"]) == 2


def test_rank_reads_user_as_the_rows_ids_are_read(tmp_path, capsys) -> None:
    """A record's "user_id": 1.0 is user 1 (README: an integer-valued id is the integer in every format); --user 1.0
    was refused as unknown."""
    write_jsonl(tmp_path / "train.jsonl", [{"prompt": f"q{i}", "chosen": f"a long answer {i}", "rejected": "no",
                                            "user_id": user} for user in (1, 2) for i in range(4)])
    run = tmp_path / "run"
    assert main(["fit", "pal-a", "--data", str(tmp_path / "train.jsonl"), "--out", str(run), "--set", "epochs=1",
                 "--no-progress"]) == 0
    write_jsonl(tmp_path / "c.jsonl", [{"prompt": "q0", "responses": ["a long answer", "no"]}])
    rank = ["rank", "--run", str(run), "--candidates", str(tmp_path / "c.jsonl")]
    assert main([*rank, "--user", "1", "--out", str(tmp_path / "a.jsonl")]) == 0
    assert main([*rank, "--user", "1.0", "--out", str(tmp_path / "b.jsonl")]) == 0
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
    assert "ranked for user 1)" in capsys.readouterr().out


def test_eval_writes_its_report_and_plot_both_or_neither(bt_run, data_dir, tmp_path, monkeypatch, capsys) -> None:
    """The report was written before the plot: a plot that failed (a path the check could not foresee) left the
    report; and where the report fails after the plot, the plot goes too."""
    import pluralign.cli.runs as runs
    import pluralign.eval.plots as plots

    out, plot = tmp_path / "m.json", tmp_path / "m.png"
    command = ["eval", "--run", str(bt_run), "--data", str(data_dir), "--shots", "0,2", "--out", str(out),
               "--plot", str(plot)]

    def no_plot(*args):
        raise OSError(28, "No space left on device", str(plot))

    with monkeypatch.context() as patched:
        patched.setattr(plots, "plot_few_shot", no_plot)
        assert main(command) == 2
    assert not out.exists() and not plot.exists()

    def no_report(*args):
        raise OSError(28, "No space left on device", str(out))

    with monkeypatch.context() as patched:
        patched.setattr(runs, "write_json", no_report, raising=False)
        patched.setattr("pluralign.io.write_json", no_report)
        assert main(command) == 2
    assert not out.exists() and not plot.exists()
    capsys.readouterr()
    assert main(command) == 0 and out.exists() and plot.exists()
    assert capsys.readouterr().out.strip().endswith(f"wrote {out} and {plot}")
