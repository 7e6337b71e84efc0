"""``pluralign bench``: the table, the mean over seeds, and a two-seed run end to end."""

import json

import pytest

from conftest import two_group_rows
from pluralign.cli import main
from pluralign.eval.bench import finished_cells, gap_table, mean_over_seeds, run_bench_seeds, table
from pluralign.io import write_jsonl


def report(seen: float, worst: str, unseen8: float) -> dict:
    return {"seen": {"n": 10, "accuracy": seen, "oracle_accuracy": 0.9},
            "controversial": {"n": 4, "accuracy": seen - 0.1, "oracle_accuracy": None},
            "unseen": {"8": {"accuracy": unseen8, "oracle_accuracy": 0.8}},
            "worst_group": {"group": worst, "accuracy": seen - 0.2},
            "fit": {"fit_seconds": 2.0, "pairs_per_second": 100.0, "peak_memory_mb": 512.4, "added_memory_mb": 40.6}}


def test_mean_over_seeds_by_hand():
    merged = mean_over_seeds([report(0.8, "a", 0.7), report(0.6, "a", 0.7), report(0.7, "b", 0.7)])
    assert merged["seen"]["accuracy"] == pytest.approx(0.7)
    assert merged["seen"]["accuracy_sd"] == pytest.approx(0.1)  # sample sd of 0.8, 0.6, 0.7
    assert merged["unseen"]["8"]["accuracy_sd"] == pytest.approx(0.0)
    assert merged["controversial"]["oracle_accuracy"] is None
    assert merged["worst_group"]["group"] == "a"  # the most common label
    row = table({"bench": {"bt": merged}}).splitlines()[2]
    assert "| 0.700 ± 0.100 (0.900) |" in row and "| a: 0.500 ± 0.100 |" in row
    assert row.endswith("| 2.0 | 100 | 512 (+41) |")  # fit s, pairs/s, peak MB (what the fit added)


def test_the_worst_group_over_seeds_is_the_lowest_mean():
    """Not the mean of each seed's own worst group under the most common name."""
    accuracies = ((0.70, 0.80), (0.75, 0.50), (0.72, 0.80))  # groups A, B: A worst, B worst, A worst
    runs = [{"groups": {"A": {"accuracy": a}, "B": {"accuracy": b}},
             "worst_group": {"group": "A" if a < b else "B", "accuracy": min(a, b)}} for a, b in accuracies]
    worst = mean_over_seeds(runs)["worst_group"]
    assert worst["group"] == "B" and worst["accuracy"] == pytest.approx(0.70)  # A: 0.723; not "A: 0.64"


def test_gap_interval_over_seeds_and_its_table():
    runs = [report(0.8, "a", 0.7), report(0.6, "a", 0.75)]
    for run, se in zip(runs, (0.03, 0.04)):
        run["unseen"]["8"].update(gap_to_oracle=0.8 - run["unseen"]["8"]["accuracy"], gap_to_oracle_se=se,
                                  expected_gap_to_oracle_se=se / 2, se_df=11)
    merged = mean_over_seeds(runs)["unseen"]["8"]
    assert merged["gap_to_oracle"] == pytest.approx(0.075)
    assert merged["gap_to_oracle_se"] == pytest.approx(0.025)  # of the mean of two seeds: √(0.03² + 0.04²) / 2
    assert merged["expected_gap_to_oracle_se"] == pytest.approx(0.0125)  # the same rule
    assert merged["se_df"] == 22  # 24 users in 2 seeds: 24 − 2, as in a stratified sample
    # a folder's users are the same under every seed: their errors move together, no √n to divide by
    shared = mean_over_seeds(runs, shared_users=True)["unseen"]["8"]
    assert shared["gap_to_oracle_se"] == pytest.approx(0.035) and shared["se_df"] == 11  # and the same 12 users
    text = gap_table({"bench": {"bt": {"unseen": {"8": merged}}, "gpm": {"unseen": {}}}})
    # 7.5 ± t₂₂ 2.074 · 2.5
    assert "| method | bench |" in text and "| bt | 7.5 ± 5.2 |" in text and "| gpm | – |" in text
    assert gap_table({"bench": {"bt": report(0.8, "a", 0.7)}}) == ""  # no standard error, no table


def test_bench_over_two_seeds(tmp_path, capsys, caplog):
    out = tmp_path / "bench"
    (out / "seed-7").mkdir(parents=True)  # an earlier bench's: named, not deleted
    with caplog.at_level("WARNING", logger="pluralign.bench"):
        assert main(["bench", "--methods", "bt", "--benchmarks", "ideal-points", "--seeds", "0", "1",
                     "--out", str(out)]) == 0
    assert f"bench: seed-7 in {out} is from an earlier bench (not among these seeds), left as it was" in caplog.text
    assert (out / "seed-7").is_dir()
    runs = json.loads((out / "results.json").read_text())
    assert runs["seeds"] == [0, 1] and set(runs["runs"]) == {"0", "1"}
    seen = [runs["runs"][s]["ideal-points"]["bt"]["seen"]["accuracy"] for s in ("0", "1")]
    assert seen[0] != seen[1]  # the seeds differ in data and model
    assert runs["mean"]["ideal-points"]["bt"]["seen"]["accuracy"] == pytest.approx(sum(seen) / 2)
    assert "±" in (out / "results.md").read_text() and (out / "few_shot.png").stat().st_size > 0
    assert "diagnostics" not in (out / "results.md").read_text()  # bt reports nothing of its own fit
    assert (out / "gaps.png").stat().st_size > 0
    # the Bayes few-shot ceiling rides along, averaged like a method, and no method beats it by much
    ceiling = runs["mean"]["ideal-points"]["bayes-ceiling"]["unseen"]
    assert ceiling["8"]["accuracy"] >= runs["mean"]["ideal-points"]["bt"]["unseen"]["8"]["accuracy"]
    assert "| ideal-points | bayes-ceiling | – | – |" in (out / "results.md").read_text()
    assert (out / "seed-1" / "results.md").exists()
    assert "bayes-ceiling" in json.loads((out / "seed-1" / "results.json").read_text())["ideal-points"]
    record = json.loads((out / "run.json").read_text())  # how the figures were made
    assert record["command"] == "bench" and record["arguments"]["seeds"] == [0, 1]
    assert record["environment"]["libraries"]["torch"] and record["environment"]["time_utc"]
    assert main(["bench", "--methods", "bt", "--seeds", "1", "1", "--out", str(out)]) == 2
    assert "distinct" in capsys.readouterr().err


def test_a_fresh_bench_clears_only_a_benchs_outputs(tmp_path, capsys):
    """``bench --out .`` in a project deleted its runs/ of fitted models and replaced the user's results.md: a
    folder whose run.json is not a bench's is refused, and nothing in it is touched."""
    project = tmp_path / "project"
    (project / "runs" / "my-fit").mkdir(parents=True)
    (project / "results.md").write_text("my notes")
    argv = ["bench", "--methods", "bt", "--benchmarks", "ideal-points", "--set", "epochs=1", "--out", str(project)]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"pluralign: error: --out {project}: {project / 'results.md'} (and 1 more) is not an earlier bench's (no "
        f"bench's run.json in {project}), and a bench would replace it; choose an empty folder")
    assert (project / "runs" / "my-fit").is_dir() and (project / "results.md").read_text() == "my notes"
    assert not (project / "run.json").exists()
    (project / "run.json").write_text('{"command": "demo"}')  # another command's record is not a bench's
    assert main(argv) == 2 and (project / "runs" / "my-fit").is_dir()
    out = tmp_path / "bench"
    assert main([*argv[:-1], str(out), "--save-runs"]) == 0 and (out / "runs").is_dir()
    (out / "results.md").write_text("stale")
    assert main(argv[:-1] + [str(out)]) == 0  # an earlier bench's: replaced, and its saved runs go
    assert not (out / "runs").exists() and (out / "results.md").read_text() != "stale"


def test_bench_overrides_one_method_or_all_and_names_them(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "--methods", "bt", "pal-a", "--benchmarks", "ideal-points", "--out", str(out),
                 "--set", "pal-a.k=2", "--set", "epochs=3"]) == 0
    results = json.loads((out / "results.json").read_text())["ideal-points"]
    assert results["bt"]["fit"]["epochs"] == 3 and results["pal-a"]["fit"]["epochs"] == 3
    assert results["pal-a"]["overrides"] == "k=2, epochs=3" and results["bt"]["overrides"] == "epochs=3"
    assert "| ideal-points | pal-a (k=2, epochs=3) |" in (out / "results.md").read_text()
    # a method not run, or a key the method does not take, fails before any fit
    for wrong, message in ((["vpl.k=4"], "'vpl' is not one of the methods run"),
                           (["bt.k=4"], "bt: unknown argument(s) k"), (["k=4"], "bt: unknown argument(s) k")):
        assert main(["bench", "--methods", "bt", "pal-a", "--out", str(tmp_path / "x"), "--set", *wrong]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_bench_jobs_gives_the_one_thread_figures(tmp_path, capsys):
    import torch

    from pluralign.eval.bench import run_bench_seeds

    args = dict(methods=["gpm", "bt"], benchmarks=["cyclic"], seeds=[0], overrides={"gpm": {"epochs": 3}, "bt": {"epochs": 3}})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what each worker runs with
    try:
        alone = run_bench_seeds(out_dir=tmp_path / "one", **args)["cyclic"]
    finally:
        torch.set_num_threads(threads)
    assert main(["bench", "--methods", "gpm", "bt", "--benchmarks", "cyclic", "--set", "epochs=3",
                 "--jobs", "2", "--save-runs", "--out", str(tmp_path / "two")]) == 0
    assert (tmp_path / "two" / "runs" / "cyclic" / "gpm" / "model.safetensors").exists()  # saved by a worker
    assert "against the best one on the same rows" in (tmp_path / "two" / "results.md").read_text()
    assert "_unseen_hits" not in (tmp_path / "two" / "results.json").read_text()  # the per-row hits stay in memory
    workers = json.loads((tmp_path / "two" / "results.json").read_text())["cyclic"]
    assert list(workers) == ["gpm", "bt", "bayes-ceiling"]  # the order asked for, the ceiling last
    for method in ("gpm", "bt"):
        for key in ("seen", "controversial"):
            assert workers[method][key]["accuracy"] == alone[method][key]["accuracy"]
        assert workers[method]["unseen"]["8"]["accuracy"] == alone[method]["unseen"]["8"]["accuracy"]
    assert workers["bt"]["overrides"] == "epochs=3"
    assert main(["bench", "--methods", "bt", "--jobs", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_bench_workers_keep_the_finished_cells_when_one_fails(tmp_path):
    from pluralign.eval.bench import run_cells_parallel

    overrides = {"bt": {"epochs": 1}, "maxmin": {"n_groups": 100}}  # more groups than cyclic has users
    with pytest.raises(RuntimeError, match=r"maxmin on cyclic \(seed 0\) failed: .*fewer than n_groups=100"):
        run_cells_parallel(["bt", "maxmin"], ["cyclic"], [0], {}, overrides, jobs=1, out_dirs={0: tmp_path})
    kept = json.loads((tmp_path / "results.json").read_text())
    assert list(kept) == ["cyclic"] and list(kept["cyclic"]) == ["bt"] and "seen" in kept["cyclic"]["bt"]


def test_bench_data_options_reach_the_builder_in_every_process(tmp_path):
    import torch

    from pluralign.eval.bench import run_bench_seeds

    small = {"n_users": 6, "test_pairs_per_user": 12}  # the default seen test rows: 30 users x 21
    args = dict(methods=["bt"], benchmarks=["cyclic"], seeds=[0, 1], overrides={"bt": {"epochs": 1}}, data_options=small)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = run_bench_seeds(out_dir=tmp_path / "one", **args)["cyclic"]["bt"]
    finally:
        torch.set_num_threads(threads)
    workers = run_bench_seeds(out_dir=tmp_path / "two", jobs=2, **args)["cyclic"]["bt"]
    assert alone["seen"]["n"] == workers["seen"]["n"] == 6 * 12
    assert alone["seen"]["accuracy"] == workers["seen"]["accuracy"]
    assert json.loads((tmp_path / "two" / "results.json").read_text())["data_options"] == small


def test_bench_data_set_builds_every_benchmark_with_it_and_says_so(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "--methods", "bt", "--benchmarks", "cyclic", "--set", "epochs=1",
                 "--data-set", "n_users=6", "--data-set", "test_pairs_per_user=12", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())["cyclic"]
    assert results["bt"]["seen"]["n"] == 6 * 12
    assert "Benchmarks built with n_users=6, test_pairs_per_user=12." in (out / "results.md").read_text()
    folder = tmp_path / "data"  # a folder is read as it stands: the note said it too was built with the options
    assert main(["data", "build", "cyclic", "--out", str(folder), "--set", "n_users=6"]) == 0
    assert main(["bench", "--methods", "bt", "--benchmarks", str(folder), "--set", "epochs=1", "--data-set",
                 "n_users=6", "--out", str(tmp_path / "folder")]) == 0
    assert "built with" not in (tmp_path / "folder" / "results.md").read_text()
    assert main(["bench", "--methods", "bt", "--benchmarks", "cyclic", str(folder), "--set", "epochs=1", "--data-set",
                 "n_users=6", "--out", str(tmp_path / "both")]) == 0
    assert (f"Benchmarks built with n_users=6 (not the folders {folder}: read as they stand)."
            in (tmp_path / "both" / "results.md").read_text())
    assert json.loads((out / "run.json").read_text())["environment"]["torch_threads"] == 1  # --jobs 1: one thread
    # an option one of the benchmarks lacks, or the context, fails before any fit
    for wrong, message in ((["balanced_splits=true"], "benchmark 'pets' has no option 'balanced_splits'"),
                           (["context=survey"], "use --context")):
        assert main(["bench", "--methods", "bt", "--benchmarks", "attributes", "pets", "--out", str(tmp_path / "x"),
                     "--data-set", *wrong]) == 2
        assert message in capsys.readouterr().err
    assert main(["bench", "--methods", "bt", "--benchmarks", "petz", "--out", str(tmp_path / "x")]) == 2
    assert "unknown benchmark 'petz'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_bench_data_set_values_are_checked_before_any_output(tmp_path, capsys):
    """A bad value was caught only by the builder, after OUT/run.json was written (a later --resume took it for a
    bench), and the message did not name --data-set."""
    out = tmp_path / "bench"
    assert main(["bench", "--methods", "bt", "--benchmarks", "pets", "cyclic", "--data-set", "n_users=6",
                 "--data-set", "pairs_per_user=abc", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == ("pluralign: error: --data-set pairs_per_user=abc: size 'pairs_per_user' "
                                               "must be an integer >= 1, got 'abc'")
    assert not out.exists()


def test_bench_takes_a_folder_of_real_data_beside_the_benchmarks(tmp_path, caplog, capsys):
    train, _ = two_group_rows(n_users=6, pairs=30)
    write_jsonl(tmp_path / "pooled.jsonl", [{k: v for k, v in r.items() if k != "oracle_p"} for r in train])
    folder = tmp_path / "real"
    assert main(["data", "split", str(tmp_path / "pooled.jsonl"), "--out", str(folder), "--unseen-users", "2"]) == 0
    out = tmp_path / "bench"
    assert main(["bench", "--methods", "bt", "pal-a", "--benchmarks", str(folder), "--set", "epochs=2",
                 "--context", "survey", "--save-runs", "--out", str(out)]) == 0
    assert "folders are read as they stand" in caplog.text  # --context builds synthetic benchmarks only
    results = json.loads((out / "results.json").read_text())
    assert list(results) == [str(folder)] and list(results[str(folder)]) == ["bt", "pal-a"]  # no ceiling: no oracle
    assert set(results[str(folder)]["pal-a"]["unseen"]) == {"0", "1", "2", "4", "8", "16"}
    assert f"| {folder} | pal-a (epochs=2) |" in (out / "results.md").read_text()
    # the saved runs are the bench's models: compare reproduces their accuracies on the same rows
    runs = out / "runs" / str(folder).strip("/").replace("/", "_")
    assert main(["compare", "--runs", str(runs / "pal-a"), str(runs / "bt"), "--data", str(folder),
                 "--out", str(tmp_path / "c.json")]) == 0
    compared = json.loads((tmp_path / "c.json").read_text())
    assert compared["unseen"]["accuracy_a"] == pytest.approx(results[str(folder)]["pal-a"]["unseen"]["8"]["accuracy"], abs=1e-4)
    assert compared["seen"]["accuracy_b"] == pytest.approx(results[str(folder)]["bt"]["seen"]["accuracy"], abs=1e-4)
    assert main(["bench", "--methods", "bt", "--benchmarks", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "nowhere: no such folder" in capsys.readouterr().err


def test_bench_on_a_folder_with_short_contexts_says_which_k_it_cannot_score(tmp_path, caplog):
    """A split with --context 4: the table's "k = 8" and "k = 16" are the 4-shot figures, as eval warns; bench
    did not."""
    train, _ = two_group_rows(n_users=6, pairs=12)
    write_jsonl(tmp_path / "pooled.jsonl", train)
    folder = tmp_path / "real"
    assert main(["data", "split", str(tmp_path / "pooled.jsonl"), "--out", str(folder), "--context", "4"]) == 0
    with caplog.at_level("WARNING", logger="pluralign"):
        assert main(["bench", "--methods", "bt", "--benchmarks", str(folder), "--set", "epochs=1",
                     "--out", str(tmp_path / "bench")]) == 0
    assert (f"shots 8,16: the largest context in {folder}/test.jsonl is 4 pair(s); at a larger k every unseen user "
            "adapts on all of theirs") in caplog.messages


def test_a_folders_repeated_rows_are_warned_of_once_per_bench(tmp_path, capfd, caplog):
    """The folder is read by this process and by every worker: its repeated-rows warning was printed once by each.
    This process's log reaches caplog, the workers' their own stderr."""
    train, test = two_group_rows(n_users=4, pairs=20)
    folder = tmp_path / "real"
    write_jsonl(folder / "train.jsonl", train + train[:10])
    write_jsonl(folder / "test.jsonl", test)
    capfd.readouterr()
    assert main(["bench", "--methods", "bt", "gpm", "--benchmarks", str(folder), "--set", "epochs=1", "--jobs", "2",
                 "--out", str(tmp_path / "bench")]) == 0
    assert capfd.readouterr().err.count("10 repeated row(s)") == 0  # not from the workers
    assert sum("10 repeated row(s)" in m for m in caplog.messages) == 1


def test_bench_resume_refuses_a_folder_whose_rows_changed(tmp_path, capsys):
    """run.json named the folder, not its rows: a resume after the folder's files changed kept the old data's
    cells (and a method added on the resume would share one table with them)."""
    train, _ = two_group_rows(n_users=6, pairs=20)
    write_jsonl(tmp_path / "pooled.jsonl", train)
    folder, out = tmp_path / "real", tmp_path / "bench"
    assert main(["data", "split", str(tmp_path / "pooled.jsonl"), "--out", str(folder), "--context", "4"]) == 0
    base = ["bench", "--methods", "bt", "--benchmarks", str(folder), "--set", "epochs=1", "--out", str(out)]
    assert main(base) == 0
    digest = json.loads((out / "run.json").read_text())["arguments"]["folder_rows"][str(folder)]
    assert main([*base, "--resume"]) == 0  # the same rows: kept
    assert main(["data", "split", str(tmp_path / "pooled.jsonl"), "--out", str(folder), "--context", "4",
                 "--seed", "1"]) == 0  # the folder rewritten: another split of the same users
    capsys.readouterr()
    assert main([*base, "--resume"]) == 2
    assert capsys.readouterr().err.startswith(f"pluralign: error: --resume: the rows of {folder} changed since {out} "
                                              f"was made (sha256 {digest[:12]}, now ")


def test_bench_resume_from_a_damaged_hits_file_names_it_and_leaves_run_json(tmp_path, capsys):
    """A half-written hits.json stopped the resume with json's words alone ("Expecting ',' delimiter"), after
    run.json had gained a record of a resume that never ran."""
    out = tmp_path / "bench"
    base = ["bench", "--methods", "bt", "--benchmarks", "cyclic", "--set", "epochs=1", "--out", str(out)]
    assert main(base) == 0
    hits = out / "hits.json"
    hits.write_text(hits.read_text()[:40])
    record = (out / "run.json").read_text()
    capsys.readouterr()
    assert main([*base, "--resume"]) == 2
    assert capsys.readouterr().err.startswith(f"pluralign: error: {hits}: invalid JSON (")
    assert (out / "run.json").read_text() == record
    # valid JSON of another shape: a traceback ('list' object has no attribute 'get'), or words naming no file
    for path, text in ((hits, "[]"), (out / "results.json", '{"cyclic": {"bt": 3}}')):
        path.write_text(text)
        assert main([*base, "--resume"]) == 2
        assert capsys.readouterr().err.strip() == (
            f"pluralign: error: {path}: not a bench's {path.name} (expected {{benchmark: {{method: figures}}}}); "
            "bench without --resume to start over")
        assert (out / "run.json").read_text() == record


def test_bench_resume_keeps_the_finished_cells(tmp_path, capsys, caplog):
    """An interrupted bench (here: one that ran bt only) is resumed: its cells are kept as they were (the
    same fit seconds: not refitted), the rest are fitted; with saved models the kept cells' hits are scored
    again, so the paired table keeps them. Options that would make different cells refuse to resume."""
    out = tmp_path / "bench"
    base = ["bench", "--benchmarks", "cyclic", "--set", "epochs=2", "--save-runs", "--out", str(out)]
    assert main([*base, "--methods", "bt"]) == 0
    first = json.loads((out / "results.json").read_text())["cyclic"]["bt"]
    with caplog.at_level("INFO", logger="pluralign.bench"):
        assert main([*base, "--methods", "bt", "gpm", "--resume"]) == 0
    assert "bt on cyclic kept from the earlier run" in caplog.text
    resumed = json.loads((out / "results.json").read_text())["cyclic"]
    assert list(resumed) == ["bt", "gpm", "bayes-ceiling"]
    assert resumed["bt"]["fit"]["fit_seconds"] == first["fit"]["fit_seconds"]
    paired = (out / "results.md").read_text().split("against the best one")[1]
    assert "| bt |" in paired and "| gpm |" in paired
    # the same in worker processes: every cell kept, nothing to fit
    assert main([*base, "--methods", "bt", "gpm", "--resume", "--jobs", "2"]) == 0
    again = json.loads((out / "results.json").read_text())["cyclic"]
    assert again["gpm"]["fit"]["fit_seconds"] == resumed["gpm"]["fit"]["fit_seconds"]
    # other code made the kept cells: a warning, and run.json keeps every earlier run's record
    record = json.loads((out / "run.json").read_text())
    assert [r["arguments"]["methods"] for r in record["resumes"]] == [["bt"], ["bt", "gpm"]]
    record["environment"]["pluralign"] = "0.0.1"
    (out / "run.json").write_text(json.dumps(record))
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert main([*base, "--methods", "bt", "gpm", "--resume"]) == 0
    assert "made by pluralign = 0.0.1" in caplog.text
    assert json.loads((out / "run.json").read_text())["resumes"][-1]["environment"]["pluralign"] == "0.0.1"
    capsys.readouterr()
    assert main(["bench", "--benchmarks", "cyclic", "--set", "epochs=3", "--methods", "bt", "--resume",
                 "--out", str(out)]) == 2
    assert f"{out}'s bt cells were fitted with epochs=2 (now 3)" in capsys.readouterr().err
    assert main(["bench", "--methods", "bt", "--resume", "--out", str(tmp_path / "new")]) == 2
    assert "no earlier bench" in capsys.readouterr().err


def test_bench_resume_without_saved_models_keeps_the_cells_hits_from_hits_json(tmp_path, caplog):
    """Without --save-runs a kept cell has no model to score its rows again: its per-row hits come from hits.json,
    so it stays in the paired table (a bench of before, with no hits.json: it stays out, and the log says so).
    A bench stopped before its first cell keeps none."""
    out = tmp_path / "bench"
    base = ["bench", "--benchmarks", "cyclic", "--set", "epochs=2", "--out", str(out)]
    assert main([*base, "--methods", "bt"]) == 0
    hits = json.loads((out / "hits.json").read_text())["cyclic"]["bt"]["_unseen_hits"]
    assert len(hits["hit"]) == len(hits["user"]) > 0 and set(hits["hit"]) <= {0.0, 1.0}
    with caplog.at_level("WARNING", logger="pluralign.bench"):
        assert main([*base, "--methods", "bt", "pal-a", "--resume"]) == 0
    assert "no saved model" not in caplog.text
    paired = (out / "results.md").read_text().split("against the best one")[1]
    assert "| bt |" in paired and "| pal-a |" in paired
    (out / "hits.json").unlink()  # a bench of before: no hits written
    with caplog.at_level("WARNING", logger="pluralign.bench"):
        assert main([*base, "--methods", "bt", "pal-a", "pal-b", "--resume"]) == 0
    assert "the kept cells of cyclic, seed 0 (bt, pal-a) have no saved model (--save-runs)" in caplog.text
    assert list(json.loads((out / "results.json").read_text())["cyclic"]) == ["bt", "pal-a", "pal-b", "bayes-ceiling"]
    table = (out / "results.md").read_text()
    assert "| cyclic | bt (epochs=2) |" in table and "against the best one" not in table  # pal-b alone has hits
    (out / "results.json").unlink()  # interrupted before any cell finished: run.json alone
    assert finished_cells(out, ["cyclic"], 0, {}, save_runs=False) == {}



def test_bench_active_asks_chosen_questions_in_every_process(tmp_path, capsys):
    """--active: the methods and the Bayes ceiling adapt unseen users on the questions they choose; at 16 shots
    (all of a user's context pairs) the figures are the file order's, at fewer they are not. A bench made one way
    does not resume the other."""
    base = ["bench", "--methods", "bt", "maxmin", "--benchmarks", "attributes", "--set", "epochs=2"]
    assert main([*base, "--out", str(tmp_path / "given")]) == 0
    assert main([*base, "--active", "--jobs", "2", "--save-runs", "--out", str(tmp_path / "chosen")]) == 0
    given = json.loads((tmp_path / "given" / "results.json").read_text())["attributes"]
    chosen = json.loads((tmp_path / "chosen" / "results.json").read_text())["attributes"]
    for method in ("maxmin", "bayes-ceiling"):
        assert chosen[method]["questions"] == "chosen" and "questions" not in given[method]
        assert chosen[method]["unseen"]["16"]["accuracy"] == pytest.approx(given[method]["unseen"]["16"]["accuracy"])
        assert any(chosen[method]["unseen"][k]["accuracy"] != given[method]["unseen"][k]["accuracy"] for k in "124")
    assert chosen["bt"]["unseen"]["8"] == given["bt"]["unseen"]["8"]  # no user to ask about: the file's order
    written = (tmp_path / "chosen" / "results.md").read_text()
    assert "Chosen questions (`--active`)" in written and "| bt | +0.0 ± 0.0 |" in written  # the paired gain
    assert "Chosen questions against the file's order" not in (tmp_path / "given" / "results.md").read_text()
    # each method's own report of its fit (MaxMin's EM and the groups it found), in every process
    for folder in ("given", "chosen"):
        em = json.loads((tmp_path / folder / "results.json").read_text())["attributes"]["maxmin"]["fit"]
        ari = em["group_recovery"]["adjusted_rand"]
        recovery = f"groups vs the data's: adjusted Rand index {ari:.2f} over 32 users"
        assert f"- `attributes`, maxmin: {recovery}" in (tmp_path / folder / "results.md").read_text()
    assert "_given_hits" not in (tmp_path / "chosen" / "results.json").read_text()
    assert json.loads((tmp_path / "chosen" / "run.json").read_text())["arguments"]["active"] is True
    capsys.readouterr()
    assert main([*base, "--resume", "--out", str(tmp_path / "chosen")]) == 2
    assert "was made with active = True" in capsys.readouterr().err
    # resumed from the saved models, the kept cells keep their row in the gain table
    assert main([*base, "--active", "--jobs", "2", "--save-runs", "--resume", "--out", str(tmp_path / "chosen")]) == 0
    gains = (tmp_path / "chosen" / "results.md").read_text().split("against the file's order")[1]
    assert gains.count("| maxmin |") == 1


def test_benchmark_data_names_the_benchmarks_it_knows() -> None:
    """benchmark_data from Python with a misspelt name: the known names, not a KeyError inside the builder."""
    from pluralign.data.synthetic import BENCHMARKS
    from pluralign.eval.bench import benchmark_data

    with pytest.raises(ValueError) as err:
        benchmark_data("petz")
    assert str(err.value) == f"unknown benchmark 'petz' (known: {', '.join(BENCHMARKS)})"
    train, test = benchmark_data("cyclic", seed=0, n_users=3)
    assert train.source == "cyclic/train" and test.source == "cyclic/test" and len(train) > 0


def test_the_table_note_speaks_of_an_oracle_only_where_there_is_one():
    """A folder of real data has no oracle: its table's note said "accuracy (oracle accuracy on the same rows)"."""
    without = table({"data/prism": {"bt": {"seen": {"n": 4, "accuracy": 0.5}}}})
    assert "Cells: accuracy. `peak MB`" in without
    with_oracle = table({"pets": {"bt": {"seen": {"n": 4, "accuracy": 0.5, "oracle_accuracy": 0.9}}}})
    assert "Cells: accuracy (oracle accuracy on the same rows, where the data has an oracle)." in with_oracle


def test_a_python_bench_refuses_a_fixed_seed_as_the_cli_does(tmp_path):
    """Only the CLI refused --set seed: from Python every seed's model was one model, with seeds' intervals."""
    with pytest.raises(ValueError, match=r"^--set seed: each cell's model takes its seed from --seeds"):
        run_bench_seeds(["bt"], ["pets"], tmp_path / "out", seeds=[0, 1], overrides={"bt": {"seed": 3}})
    assert not (tmp_path / "out").exists()
