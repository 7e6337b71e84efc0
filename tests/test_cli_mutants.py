"""Mutation audit of the `pluralign` command (pluralign/cli): each test here fails on a hand-made mutant of the
CLI that the rest of the suite let through: how main() reports an error, the flags' documented defaults and
their wiring to the commands, --config, predict/users/compare/adapt/rank options that were never checked to
take effect. Tiny embedding data (no backbone); one bt and one vpl run shared by the module."""

import json
import os
import sys
from pathlib import Path

import pytest

from conftest import two_group_rows
from pluralign import cli
from pluralign.cli import main
from pluralign.io import write_jsonl


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    train, test = two_group_rows(n_users=3, pairs=40, context=8, queries=6)
    write_jsonl(folder / "train.jsonl", train)
    write_jsonl(folder / "test.jsonl", test)
    context = [r for r in test if r.get("role") == "context"]
    write_jsonl(folder / "pairs.jsonl", context[:2])
    write_jsonl(folder / "pool.jsonl", context[2:12])
    return folder


@pytest.fixture(scope="module")
def bt_run(data_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "bt"
    assert main(["fit", "bt", "--data", str(data_dir), "--out", str(run), "--set", "epochs=1", "--set", "hidden=[8]",
                 "--no-progress"]) == 0
    return run


@pytest.fixture(scope="module")
def vpl_run(data_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "vpl"
    assert main(["fit", "vpl", "--data", str(data_dir), "--out", str(run), "--set", "epochs=2", "--no-progress"]) == 0
    return run


def _rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _raising(error):
    def handler(**kwargs):
        raise error
    return handler


def test_a_key_error_is_its_text_without_quotes(monkeypatch, capsys):
    """Mutant: ``message = err`` for a KeyError (str() of a KeyError is its repr, in quotes)."""
    monkeypatch.setitem(cli.COMMANDS, "data_list", _raising(KeyError("no column 'chosen'")))
    assert main(["data", "list"]) == 2
    assert capsys.readouterr().err == "pluralign: error: no column 'chosen'\n"


def test_an_os_error_names_its_path_first(monkeypatch, capsys):
    """Mutant: the OSError branch dropped, so the line reads "[Errno 13] Permission denied: '/x/run'"."""
    monkeypatch.setitem(cli.COMMANDS, "data_list", _raising(PermissionError(13, "Permission denied", "/x/run")))
    assert main(["data", "list"]) == 2
    assert capsys.readouterr().err == "pluralign: error: /x/run: Permission denied\n"


def test_a_broken_pipe_exits_1_with_stdout_sent_to_devnull(monkeypatch):
    """Mutant: ``return 0`` after a BrokenPipeError (output cut short by `head` is not a success)."""
    moved = []

    class Stdout:
        @staticmethod
        def fileno():
            return 99

    monkeypatch.setitem(cli.COMMANDS, "data_list", _raising(BrokenPipeError()))
    monkeypatch.setattr(sys, "stdout", Stdout())
    monkeypatch.setattr(os, "open", lambda path, flags: moved.append(path) or 98)
    monkeypatch.setattr(os, "dup2", lambda source, target: moved.append((source, target)))
    assert main(["data", "list"]) == 1
    assert moved == [os.devnull, (98, 99)]


def _received(monkeypatch, name: str, argv: list[str]) -> dict:
    """The keywords ``main(argv)`` hands to command NAME."""
    got = {}
    monkeypatch.setitem(cli.COMMANDS, name, lambda **kwargs: got.update(kwargs))
    assert main(argv) == 0
    return got


@pytest.mark.parametrize("name, argv, expected", [
    ("predict", ["predict", "--run", "r", "--data", "d", "--out", "o"], {"shots": 8, "active": False}),
    ("eval", ["eval", "--run", "r", "--data", "d", "--out", "o"], {"shots": "0,1,2,4,8,16", "plot": None}),
    ("compare", ["compare", "--runs", "a", "b", "--data", "d", "--out", "o"], {"shots": 8, "runs": ["a", "b"]}),
    ("users", ["users", "--run", "r", "--data", "d", "--out", "o.png"], {"shots": 8}),
    ("adapt", ["adapt", "--run", "r", "--pairs", "p", "--out", "o"], {"active": None, "queries": None}),
    ("fit", ["fit", "bt", "--data", "d", "--out", "o"],
     {"accelerator": "cpu", "devices": "1", "strategy": "auto", "precision": "32-true", "progress": True,
      "resume": False, "overrides": [], "config": None, "threads": None}),
    ("fit", ["fit", "bt", "--data", "d", "--out", "o", "--no-progress"], {"progress": False}),
    ("data_split", ["data", "split", "s", "--out", "o"],
     {"unseen_users": None, "context": 16, "test_fraction": 0.2, "seed": 0, "stratify": False}),
    ("data_build", ["data", "build", "pets", "--out", "o"], {"seed": 0, "context": "random", "options": []}),
    ("bench", ["bench", "--out", "o"],
     {"seeds": [0], "jobs": 1, "context": "random", "overrides": [], "data_options": [], "save_runs": False,
      "resume": False, "active": False, "methods": None, "benchmarks": None}),
])
def test_each_flag_reaches_its_command_with_the_documented_default(monkeypatch, name, argv, expected):
    """Mutants: predict/compare/users --shots 8 → 4, eval --shots without 16, fit --accelerator auto,
    --no-progress as store_true, data split --test-fraction 0.25, bench --seeds [1] or --jobs 2."""
    got = _received(monkeypatch, name, argv)
    assert {k: got[k] for k in expected} == expected


def test_fit_takes_its_arguments_from_config_with_set_on_top(data_dir, tmp_path):
    """Mutant: --config ignored (the shipped preset used). The file's lr and hidden are kept, constructor defaults
    fill the rest, and --set epochs=1 wins over the file's epochs: 3."""
    config = tmp_path / "bt.yaml"
    config.write_text("hidden: [6]\nlr: 0.005\nepochs: 3\n")
    run = tmp_path / "run"
    assert main(["fit", "bt", "--data", str(data_dir), "--out", str(run), "--config", str(config), "--set", "epochs=1",
                 "--no-progress"]) == 0
    saved = json.loads((run / "config.json").read_text())["config"]
    assert (saved["hidden"], saved["lr"], saved["epochs"]) == ([6], 0.005, 1)


def test_predict_writes_the_protocols_probabilities_with_chosen_questions(vpl_run, data_dir, tmp_path):
    """Mutants: predict --active passed on as active=False; p_chosen written as 1 − p. Each line is the
    protocol's P(chosen ≻ rejected) for its row, after the questions the model asks (which differ from the file's
    first 2 here, so the two orders give different lines)."""
    from pluralign.data import read_preferences
    from pluralign.eval import score_rows
    from pluralign.methods import PreferenceModel

    out = tmp_path / "p.jsonl"
    assert main(["predict", "--run", str(vpl_run), "--data", str(data_dir), "--out", str(out), "--shots", "2",
                 "--active"]) == 0
    model, rows = PreferenceModel.from_pretrained(vpl_run), read_preferences(data_dir, split="test")
    written = [json.loads(line) for line in out.read_text().splitlines()]
    indices, probs = score_rows(model, rows, 2, active=True)
    expected = [(int(i), round(float(q), 6)) for i, q in zip(indices, probs)]
    assert [(p["index"], p["p_chosen"]) for p in written] == expected
    _, given = score_rows(model, rows, 2)
    assert [round(float(q), 6) for q in given] != [p["p_chosen"] for p in written]


def test_eval_refuses_a_negative_shot_count(bt_run, data_dir, tmp_path, capsys):
    """Mutant: the eval check of negative --shots dropped."""
    out = tmp_path / "m.json"
    assert main(["eval", "--run", str(bt_run), "--data", str(data_dir), "--shots", "0,-2", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == "pluralign: error: --shots '0,-2': shot counts must be non-negative"
    assert not out.exists()
    # a list that starts with a dash is --shots' value too, not an option argparse cannot find
    assert main(["eval", "--run", str(bt_run), "--data", str(data_dir), "--shots", "-1,2", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == "pluralign: error: --shots '-1,2': shot counts must be non-negative"


def test_compare_takes_exactly_two_runs_a_non_negative_k_and_names_them_in_order(bt_run, vpl_run, data_dir, tmp_path,
                                                                               capsys):
    """Mutants: ``len(runs) < 2`` (a third run silently ignored); the --shots check dropped; run_a and run_b
    swapped in the report."""
    out = tmp_path / "c.json"
    command = ["compare", "--data", str(data_dir), "--out", str(out)]
    assert main([*command, "--runs", str(vpl_run), str(bt_run), str(bt_run)]) == 2
    assert capsys.readouterr().err.strip() == "pluralign: error: --runs: give two runs to compare, got 3"
    assert main([*command, "--runs", str(vpl_run), str(bt_run), "--shots", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "pluralign: error: --shots -1: must be non-negative"
    assert not out.exists()
    assert main([*command, "--runs", str(vpl_run), str(bt_run), "--shots", "2"]) == 0
    report = json.loads(out.read_text())
    assert (report["run_a"], report["run_b"]) == (str(vpl_run), str(bt_run))


def test_users_infers_unseen_users_from_shots_pairs_and_says_how_many(vpl_run, data_dir, tmp_path):
    """Mutants: the vectors inferred from 8 pairs whatever --shots says; the JSON's "shots" fixed at 8. With
    --shots 2, each unseen user's vector is the one inferred from their first 2 context pairs (not 8)."""
    from pluralign.data import read_preferences
    from pluralign.eval.user_map import user_vectors
    from pluralign.methods import PreferenceModel

    out = tmp_path / "map.png"
    assert main(["users", "--run", str(vpl_run), "--data", str(data_dir), "--out", str(out), "--shots", "2"]) == 0
    saved = json.loads(out.with_suffix(".json").read_text())
    model, rows = PreferenceModel.from_pretrained(vpl_run), read_preferences(data_dir, split="test")
    unseen = {r["user_id"]: r["vector"] for r in saved["users"] if not r["seen"]}
    two = {r["user_id"]: r["vector"] for r in user_vectors(model, rows, 2) if not r["seen"]}
    eight = {r["user_id"]: r["vector"] for r in user_vectors(model, rows, 8) if not r["seen"]}
    assert saved["shots"] == 2 and sorted(unseen) == ["new0", "new1"]
    for user in unseen:
        assert unseen[user] == pytest.approx(two[user], abs=1e-6)
        assert max(abs(a - b) for a, b in zip(two[user], eight[user])) > 1e-5  # 2 pairs tell other than 8


def test_adapt_active_asks_4_by_default_given_the_users_pairs(vpl_run, data_dir, tmp_path, monkeypatch):
    """Mutants: the default --queries 4 → 3; the pool ranked without the user's labelled pairs (context=None).
    The model is asked for 4 pool pairs given the 2 rows of --pairs, and its answer is written as it came."""
    from pluralign.methods.base import PreferenceModel

    asked = []

    def select_queries(model, pool, n=1, context=None):
        asked.append((len(pool), n, None if context is None else context.rows))
        return [7, 2, 5, 0][:n]

    monkeypatch.setattr(PreferenceModel, "select_queries", select_queries)
    out = tmp_path / "u.json"
    pairs, pool = data_dir / "pairs.jsonl", data_dir / "pool.jsonl"
    assert main(["adapt", "--run", str(vpl_run), "--pairs", str(pairs), "--active", str(pool), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["next_queries"] == [7, 2, 5, 0]
    assert asked == [(10, 4, _rows(pairs))]


def test_rank_refuses_egalitarian_with_pairs_and_an_embedding_run(bt_run, data_dir, tmp_path, capsys):
    """Mutants: --egalitarian checked against --user only (not --pairs); the embedding-run check dropped (a run
    fitted on embeddings cannot score text candidates)."""
    candidates = tmp_path / "c.jsonl"
    write_jsonl(candidates, [{"prompt": "Which pet?", "responses": ["A cat.", "A dog."]}])
    out = tmp_path / "r.jsonl"
    rank = ["rank", "--run", str(bt_run), "--candidates", str(candidates), "--out", str(out)]
    assert main([*rank, "--egalitarian", "--pairs", str(data_dir / "pairs.jsonl")]) == 2
    assert capsys.readouterr().err.strip() == ("pluralign: error: --egalitarian ranks for every group at once: it "
                                               "takes no --user or --pairs")
    assert main(rank) == 2
    assert capsys.readouterr().err.strip() == (f"pluralign: error: {bt_run}: the run was fitted on embedding features "
                                               "of width 4; rank scores text candidates")
    assert not out.exists()


def test_data_build_uses_its_seed(tmp_path):
    """Mutant: data build's --seed ignored (always seed 0). --seed 1 writes build_benchmark(seed=1)'s rows, which
    are not seed 0's."""
    from pluralign.data.synthetic import build_benchmark

    sizes = {"n_users": 3, "n_unseen_users": 1, "pairs_per_user": 4}
    assert main(["data", "build", "pets", "--out", str(tmp_path / "b"), "--seed", "1",
                 *[f"--set={k}={v}" for k, v in sizes.items()]]) == 0
    written = _rows(tmp_path / "b" / "train.jsonl")
    assert written == build_benchmark("pets", seed=1, **sizes).train != build_benchmark("pets", seed=0, **sizes).train


def test_data_split_uses_its_seed_and_stratify(tmp_path):
    """Mutants: data split's --seed ignored (seed 0), its --stratify ignored. Nine users, groups a (u1, u2, u4, u5,
    u7, u8) and b (u0, u3, u6), 2 held out with 4 context pairs: seed 3 draws u0 and u6 (both b; seed 0 would draw
    u5, u6); with --stratify, one user of each group."""
    train, _ = two_group_rows(n_users=9, pairs=20)
    write_jsonl(tmp_path / "all.jsonl", train)
    group = {r["user_id"]: r["group"] for r in train}
    split = ["data", "split", str(tmp_path / "all.jsonl"), "--unseen-users", "2", "--context", "4", "--seed", "3"]

    def unseen(folder) -> list[str]:
        return sorted({r["user_id"] for r in _rows(folder / "test.jsonl") if r.get("role")})

    assert main([*split, "--out", str(tmp_path / "plain")]) == 0
    assert unseen(tmp_path / "plain") == ["u0", "u6"]
    assert main([*split, "--stratify", "--out", str(tmp_path / "strata")]) == 0
    assert sorted(group[u] for u in unseen(tmp_path / "strata")) == ["a", "b"]


def test_data_convert_names_the_known_adapters(tmp_path, capsys):
    """Mutant: data convert's check of the adapter's name dropped (a bare KeyError: "pluralign: error: nope")."""
    source = tmp_path / "source.jsonl"
    source.write_text("{}\n")
    assert main(["data", "convert", "nope", str(source), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert capsys.readouterr().err.startswith("pluralign: error: unknown adapter 'nope' (known: prism, ")


@pytest.fixture
def bench_calls(monkeypatch):
    """pluralign bench up to its run: run_bench_seeds caught (its arguments kept, a results.md written)."""
    import pluralign.eval.bench

    calls = []

    def run_bench_seeds(methods, benchmarks, out, **options):
        calls.append({"methods": methods, "benchmarks": benchmarks, **options})
        (Path(out) / "results.md").write_text("| table |\n")

    monkeypatch.setattr(pluralign.eval.bench, "run_bench_seeds", run_bench_seeds)
    return calls


def test_bench_hands_every_option_to_the_run(bench_calls, tmp_path):
    """Mutant: --context not handed on (the run built with "random"). Every option reaches run_bench_seeds,
    parsed: --set per method, --data-set as numbers."""
    assert main(["bench", "--methods", "bt", "pal-a", "--benchmarks", "cyclic", "--seeds", "2", "5", "--context",
                 "survey", "--set", "pal-a.k=3", "--set", "epochs=2", "--jobs", "2", "--data-set", "n_users=6",
                 "--save-runs", "--active", "--out", str(tmp_path / "b")]) == 0
    assert bench_calls == [{"methods": ["bt", "pal-a"], "benchmarks": ["cyclic"], "seeds": [2, 5], "context": "survey",
                            "overrides": {"bt": {"epochs": 2}, "pal-a": {"k": 3, "epochs": 2}}, "jobs": 2,
                            "data_options": {"n_users": 6}, "save_runs": True, "resume": False, "active": True}]


def test_bench_resumes_a_run_recorded_before_active_existed(bench_calls, tmp_path):
    """Mutant: ``active=False`` always recorded in run.json, so a record without the key (made before --active
    existed) no longer matches and --resume refuses it."""
    out = tmp_path / "b"
    out.mkdir()
    earlier = {"command": "bench", "arguments": {"methods": ["bt"], "benchmarks": ["cyclic"], "seeds": [0],
                                                 "context": "random", "overrides": [], "data_options": [], "jobs": 1,
                                                 "save_runs": False}}
    (out / "run.json").write_text(json.dumps(earlier))
    assert main(["bench", "--methods", "bt", "--benchmarks", "cyclic", "--resume", "--out", str(out)]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["resumes"] == [earlier] and "active" not in record["arguments"]
    assert bench_calls[0]["resume"] is True


def test_bench_refuses_a_negative_seed(bench_calls, tmp_path, capsys):
    """Mutant: ``s < -1`` (seed -1 let through)."""
    out = tmp_path / "b"
    assert main(["bench", "--methods", "bt", "--benchmarks", "cyclic", "--seeds", "-1", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == ("pluralign: error: --seeds must be distinct non-negative integers, "
                                               "got [-1]")
    assert not bench_calls and not out.exists()


def test_a_fresh_bench_clears_an_earlier_runs_cells_and_a_resume_compares_settings(bench_calls, tmp_path, capsys,
                                                                                   monkeypatch):
    """A bench without --resume left the earlier run's seed-N/results.json until its seed came: a --resume after
    an interruption kept those cells, made under other options. A resume compares each method's settings (preset
    and --set), not the --set strings: the same options in another order resume, an edited preset does not."""
    import pluralign.config

    out = tmp_path / "b"
    for folder in (out, out / "seed-1", out / "seed-7"):
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("results.json", "hits.json"):
            (folder / name).write_text("{}")
    (out / "notes.txt").write_text("mine")
    (out / "run.json").write_text('{"command": "bench"}')  # an earlier bench's folder (another's is refused)
    for stale in ("gaps.png", "seed-1/few_shot.png", "runs/cyclic/bt/config.json"):  # a plot this run may not
        (out / stale).parent.mkdir(parents=True, exist_ok=True)  # draw, a saved run compare would read
        (out / stale).write_text("old")
    command = ["bench", "--methods", "bt", "--benchmarks", "cyclic", "--seeds", "0", "1", "--out", str(out)]
    assert main([*command, "--set", "epochs=2", "--set", "lr=0.01", "--data-set", "n_users=6", "--data-set",
                 "n_unseen_users=4"]) == 0
    assert not (out / "runs").exists()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "notes.txt", "results.md", "run.json", "seed-7/hits.json", "seed-7/results.json"]  # seed 7: not this run's
    assert json.loads((out / "run.json").read_text())["arguments"]["configs"]["bt"]["epochs"] == 2
    assert main([*command, "--set", "lr=0.01", "--set", "bt.epochs=2", "--data-set", "n_unseen_users=4",
                 "--data-set", "n_users=6", "--resume"]) == 0
    edited = {**pluralign.config.preset("bt"), "hidden": [7]}
    monkeypatch.setattr(pluralign.config, "preset", lambda method: dict(edited))
    capsys.readouterr()
    assert main([*command, "--set", "epochs=2", "--set", "lr=0.01", "--data-set", "n_users=6", "--data-set",
                 "n_unseen_users=4", "--resume"]) == 2
    assert capsys.readouterr().err.startswith(f"pluralign: error: --resume: {out}'s bt cells were fitted with hidden=")


@pytest.mark.parametrize("extra, message", [
    (["--set", "seed=3"], "--set seed: each cell's model takes its seed from --seeds (the benchmark's); a fixed one "
                          "would make every seed's bt the same model"),
    (["--benchmarks", "cyclic", "pets", "cyclic"], "--benchmarks names cyclic more than once"),
])
def test_bench_refuses_a_fixed_model_seed_and_a_benchmark_named_twice(bench_calls, tmp_path, capsys, extra, message):
    out = tmp_path / "b"
    assert main(["bench", "--methods", "bt", "--seeds", "0", "1", *extra, "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"pluralign: error: {message}"
    assert not bench_calls and not out.exists()


def test_a_synthetic_benchmark_and_a_folder_of_its_name_are_two(bench_calls, tmp_path, monkeypatch):
    """The shipped data/pets is a build of the synthetic pets: run from data/, `pets ./pets` are two benchmarks."""
    import shutil

    shutil.copytree(Path(__file__).resolve().parents[1] / "data" / "pets", tmp_path / "pets")
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--methods", "bt", "--benchmarks", "pets", "./pets", "--out", "b"]) == 0
    assert bench_calls[0]["benchmarks"] == ["pets", "./pets"]
