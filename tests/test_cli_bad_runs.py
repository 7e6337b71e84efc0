"""Bad runs and bad options end in one line on stderr, exit 2 and no output: damaged run folders, --resume from
a checkpoint that does not fit, a missing GPU, rows of the wrong kind, nothing to score, malformed --set."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import two_group_rows
from pluralign.cli import main
from pluralign.data import read_preferences
from pluralign.io import write_jsonl
from pluralign.methods import METHODS, ConfigError

TEXT_ROWS = [{"prompt": "Tell me about pets.", "chosen": f"Answer {i} is kind.", "rejected": f"Answer {i} is rude.",
              "user_id": f"u{i % 2}"} for i in range(6)]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    train, test = two_group_rows(n_users=3, pairs=40, context=4, queries=6)
    write_jsonl(folder / "train.jsonl", train)
    write_jsonl(folder / "test.jsonl", test)
    write_jsonl(folder / "context_only.jsonl", [r for r in test if r.get("role") == "context"])
    write_jsonl(folder / "wide.jsonl", two_group_rows(n_users=2, pairs=4, dim=6)[0])
    write_jsonl(folder / "text.jsonl", TEXT_ROWS)
    write_jsonl(folder / "pairs.jsonl", [r for r in test if r.get("role") == "context"][:3])
    return folder


def _fit(data_dir, out, method: str = "bt", epochs: int = 2, *extra: str) -> int:
    return main(["fit", method, "--data", str(data_dir), "--out", str(out), "--set", f"epochs={epochs}",
                 "--set", "hidden=[8]", "--no-progress", *extra])


@pytest.fixture(scope="module")
def bt_run(data_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "bt"
    assert _fit(data_dir, run) == 0
    return run


@pytest.fixture(scope="module")
def vpl_run(data_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "vpl"
    assert main(["fit", "vpl", "--data", str(data_dir), "--out", str(run), "--set", "epochs=1", "--no-progress"]) == 0
    return run


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("pluralign: error: ")
    return err.removeprefix("pluralign: error: ")


def test_gpu_accelerator_without_a_gpu_stops_before_any_work(data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    out = tmp_path / "run"
    assert _fit(data_dir, out, "bt", 1, "--accelerator", "gpu") == 2
    assert _one_line(capsys) == "--accelerator gpu: no GPU is available on this machine"
    assert not out.exists()
    assert _fit(data_dir, out, "bt", 1, "--strategy", "nope") == 2
    assert _one_line(capsys).startswith("--strategy nope: ") and not out.exists()
    assert _fit(data_dir, out, "bt", 1, "--precision", "77") == 2
    assert _one_line(capsys).startswith("--precision 77: ") and not out.exists()


def test_library_warnings_are_one_line_and_the_callers_display_comes_back(data_dir, tmp_path, capsys):
    """Lightning's warning that CPU AMP takes bf16 for fp16: one line, without its site-packages path; --debug leaves
    the display to the caller (Python's form, with the path); after main returns, the caller's warnings.showwarning is its own again."""
    import warnings

    before = warnings.showwarning
    assert _fit(data_dir, tmp_path / "run", "bt", 1, "--precision", "16-mixed") == 0
    err = capsys.readouterr().err
    assert "UserWarning: You passed `Trainer(accelerator='cpu', precision='16-mixed')`" in err
    assert "site-packages" not in err and warnings.showwarning is before
    with pytest.warns(UserWarning, match="AMP with fp16 is not supported on CPU"):  # shown by the caller's display
        assert _fit(data_dir, tmp_path / "debug", "bt", 1, "--precision", "16-mixed", "--debug") == 0


def test_a_run_whose_user_ids_repeat_is_refused(data_dir, tmp_path, capsys):
    """A config.json edited so that two users share an id loaded, and one of them silently got the other's
    vector (or the population's): each id is a row of the weights, so a repeat is damage, named."""
    run = tmp_path / "pal"
    assert _fit(data_dir, run, "pal-a", 1) == 0
    config = json.loads((run / "config.json").read_text())
    assert len(config["user_ids"]) == 3
    config["user_ids"][2] = config["user_ids"][0]
    (run / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["predict", "--run", str(run), "--data", str(data_dir), "--out", str(tmp_path / "p.jsonl")]) == 2
    assert _one_line(capsys) == (f"{run}/config.json: user_ids lists {config['user_ids'][0]!r} 2 times; each user is "
                                 "one row of the weights, so the file is damaged")
    assert not (tmp_path / "p.jsonl").exists()


def _damage(run, how: str) -> None:
    weights, config = run / "model.safetensors", run / "config.json"
    saved = json.loads(config.read_text())
    if how == "truncated weights":
        weights.write_bytes(weights.read_bytes()[:100])
    elif how == "invalid JSON":
        config.write_text('{"method": ')
    elif how == "not an object":
        config.write_text("[1, 2]")
    elif how == "no config key":
        del saved["config"]
        config.write_text(json.dumps(saved))
    elif how == "another method":
        config.write_text(json.dumps({**saved, "method": "pal-a", "config": {}}))
    elif how == "edited shape":
        saved["config"]["hidden"] = [16]
        config.write_text(json.dumps(saved))
    elif how == "a wrong type":
        saved["config"]["epochs"] = "abc"
        config.write_text(json.dumps(saved))
    elif how == "NaN weights":
        state = load_file(str(weights))
        state["head.0.weight"][0, 0] = float("nan")
        save_file(state, str(weights))


@pytest.mark.parametrize("how, message", [
    ("truncated weights", "{run}/model.safetensors: cannot read the weights ("),
    ("invalid JSON", "{run}/config.json: invalid JSON (Expecting value at line 1, column 12)"),
    ("not an object", "{run}/config.json: expected a JSON object, got list"),
    ("no config key", "{run}/config.json: no 'config' key"),
    ("another method", "{run}/config.json: method 'pal-a' does not match the weights in model.safetensors ("),
    ("a wrong type", "{run}/config.json: bt: epochs='abc' must be an integer"),
    ("NaN weights", "{run}/model.safetensors: head.0.weight holds NaN or inf; the fit that wrote it diverged"),
    ("edited shape", "{run}/config.json: the weights in model.safetensors do not match the config (head.0.weight: "
                     "[8, 4] in the file, [16, 4] in the model; 3 mismatches in all)"),
])
def test_a_damaged_run_is_one_line_naming_the_file(bt_run, data_dir, tmp_path, capsys, how, message):
    run = tmp_path / "run"
    shutil.copytree(bt_run, run)
    _damage(run, how)
    out = tmp_path / "m.json"
    assert main(["eval", "--run", str(run), "--data", str(data_dir), "--out", str(out)]) == 2
    assert _one_line(capsys).startswith(message.format(run=run))
    assert not out.exists()


def test_every_command_that_loads_a_run_reports_its_damage(bt_run, data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(bt_run, run)
    _damage(run, "truncated weights")
    data, pairs = str(data_dir / "test.jsonl"), str(data_dir / "pairs.jsonl")
    for command in (["eval", "--run", str(run), "--data", data, "--out", str(tmp_path / "o.json")],
                    ["predict", "--run", str(run), "--data", data, "--out", str(tmp_path / "o.jsonl")],
                    ["compare", "--runs", str(bt_run), str(run), "--data", data, "--out", str(tmp_path / "o.json")],
                    ["adapt", "--run", str(run), "--pairs", pairs, "--out", str(tmp_path / "o.json")],
                    ["rank", "--run", str(run), "--candidates", pairs, "--out", str(tmp_path / "o.jsonl")],
                    ["users", "--run", str(run), "--data", data, "--out", str(tmp_path / "o.png")]):
        assert main(command) == 2, command
        assert _one_line(capsys).startswith(f"{run}/model.safetensors: cannot read the weights ("), command
    assert not list(tmp_path.glob("o.*"))


def test_resume_from_a_checkpoint_that_does_not_fit(data_dir, vpl_run, tmp_path, capsys):
    run = tmp_path / "run"
    assert _fit(data_dir, run, "bt", 2) == 0
    last = run / "checkpoints" / "last.ckpt"
    weights = (run / "model.safetensors").read_bytes()
    assert _fit(data_dir, run, "bt", 1, "--resume") == 2
    assert _one_line(capsys) == (f"--resume: {last} is at epoch 2, past this fit's epochs=1 (the preset's or "
                                 "--set's; train on with --set epochs=N, N > 2)")
    shutil.copy(vpl_run / "checkpoints" / "last.ckpt", last)
    assert _fit(data_dir, run, "bt", 3, "--resume") == 2
    assert _one_line(capsys) == (f"--resume: {last} is a checkpoint of a vpl fit, not bt; fit without --resume, or "
                                 "into another folder, to start over")
    checkpoint = torch.load(last, weights_only=True)
    del checkpoint["pluralign_settings"]  # as checkpoints of before recorded none: the state tells
    torch.save(checkpoint, last)
    assert _fit(data_dir, run, "bt", 3, "--resume") == 2
    assert _one_line(capsys).startswith(f"--resume: {last} is not a checkpoint of this model (")
    last.write_bytes((vpl_run / "checkpoints" / "last.ckpt").read_bytes()[:500])
    assert _fit(data_dir, run, "bt", 3, "--resume") == 2
    said = _one_line(capsys)  # torch's reason alone was "[Errno 22] Invalid argument" for some truncations
    assert said.startswith(f"--resume: {last}: cannot read the checkpoint, damaged or truncated (500 bytes; ")
    assert said.endswith("); fit without --resume to start over")
    assert (run / "model.safetensors").read_bytes() == weights  # the run is as it was


def test_a_fresh_fit_into_a_run_folder_starts_clean(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert _fit(data_dir, run, "bt", 3) == 0
    (run / "checkpoints" / "notes.txt").write_text("mine")
    assert _fit(data_dir, run, "bt", 1) == 0  # no --resume: the earlier fit's epoch-3 checkpoint must go
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt", "notes.txt"]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["pluralign_epochs"] == 1
    assert _fit(data_dir, run, "bt", 2, "--resume") == 0  # resumes this fit's epoch 1, not the stale epoch 3


def test_a_fit_does_not_replace_another_tools_model_folder(data_dir, tmp_path, capsys):
    """``fit --out`` a transformers checkpoint's folder wrote its config.json and model.safetensors over the
    model's own; a Lightning project's checkpoints and logs went too."""
    folder = tmp_path / "their-model"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (folder / "model.safetensors").write_bytes(b"weights")
    assert _fit(data_dir, folder, "bt", 1) == 2
    assert _one_line(capsys) == (f"--out {folder}: holds {folder / 'config.json'}, which no pluralign fit wrote, and "
                                 "a fit would replace it; choose another folder")
    assert (folder / "model.safetensors").read_bytes() == b"weights" and not (folder / "logs").exists()
    project = tmp_path / "lightning-project"  # its checkpoint and logs: written over, then deleted by a second fit
    (project / "checkpoints").mkdir(parents=True)
    (project / "logs" / "version_0").mkdir(parents=True)
    torch.save({"state_dict": {}, "epoch": 3}, project / "checkpoints" / "last.ckpt")
    (project / "logs" / "version_0" / "metrics.csv").write_text("theirs")
    assert _fit(data_dir, project, "bt", 1) == 2
    assert _one_line(capsys) == (f"--out {project}: holds {project / 'checkpoints' / 'last.ckpt'}, which no pluralign "
                                 "fit wrote, and a fit would replace it; choose another folder")
    (project / "checkpoints" / "last.ckpt").unlink()
    assert _fit(data_dir, project, "bt", 1) == 2 and "logs/version_0/metrics.csv, which no" in _one_line(capsys)
    assert (project / "logs" / "version_0" / "metrics.csv").read_text() == "theirs"
    # a fit of ours stopped in its first epoch left logs but no checkpoint: its mark says whose they are
    ours = tmp_path / "ours"
    (ours / "logs" / "fit").mkdir(parents=True)
    (ours / "logs" / "fit" / "metrics.csv").write_text("epoch 0")
    (ours / ".pluralign-fit").write_text('{"method": "bt"}')
    assert _fit(data_dir, ours, "bt", 1) == 0 and (ours / "config.json").is_file()


def test_rows_of_the_other_kind_or_width(bt_run, data_dir, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["eval", "--run", str(bt_run), "--data", str(data_dir / "wide.jsonl"), "--out", str(out)]) == 2
    assert _one_line(capsys) == (f"{data_dir / 'wide.jsonl'}: the run (bt) was fitted on response embedding "
                                 "features of width 4; these rows give width 6")
    assert main(["predict", "--run", str(bt_run), "--data", str(data_dir / "text.jsonl"), "--out",
                 str(out.with_suffix(".jsonl"))]) == 2
    assert _one_line(capsys) == (f"{data_dir / 'text.jsonl'}: the run (bt) was fitted on embedding features of "
                                 "width 4; these rows are text (give chosen_embedding and rejected_embedding)")
    text_run = tmp_path / "text_run"  # a run that says it was fitted on text
    shutil.copytree(bt_run, text_run)
    config = json.loads((text_run / "config.json").read_text())
    (text_run / "config.json").write_text(json.dumps({**config, "uses_embeddings": False}))
    assert main(["eval", "--run", str(text_run), "--data", str(data_dir), "--out", str(out)]) == 2
    assert _one_line(capsys) == (f"{data_dir / 'test.jsonl'}: the run (bt) was fitted on text (backbone "
                                 "all-MiniLM-L6-v2); these rows hold precomputed embeddings")
    assert not out.exists()


def test_finetune_layers_beyond_the_backbone_stop_before_training(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "pal-a", "--data", str(data_dir / "text.jsonl"), "--out", str(out), "--set",
                 "finetune_layers=999", "--no-progress"]) == 2
    assert _one_line(capsys) == ("pal-a: finetune_layers=999 is more than the 6 transformer layers of backbone "
                                 "all-MiniLM-L6-v2")
    assert not out.exists()


def test_bench_on_a_folder_without_splits_writes_nothing(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "bench"
    assert main(["bench", "--methods", "bt", "--benchmarks", str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert "directory holds no train" in _one_line(capsys)
    assert not out.exists()
    pooled = tmp_path / "pooled"  # rows without user ids: bt trains on them, vpl cannot; said before any fit
    pooled.mkdir()
    write_jsonl(pooled / "train.jsonl", [{k: v for k, v in r.items() if k != "user_id"} for r in TEXT_ROWS])
    write_jsonl(pooled / "test.jsonl", TEXT_ROWS)
    assert main(["bench", "--methods", "bt", "vpl", "--benchmarks", str(pooled), "--out", str(out)]) == 2
    assert _one_line(capsys) == f"vpl: {pooled / 'train.jsonl'}: no row has a user_id; VPL learns a user from their " \
        "own pairs (bt and micro train on pooled pairs)"
    assert not out.exists()


def test_users_wants_a_png(vpl_run, data_dir, tmp_path, capsys):
    out = tmp_path / "u.json"
    assert main(["users", "--run", str(vpl_run), "--data", str(data_dir), "--out", str(out)]) == 2
    assert _one_line(capsys) == f"--out {out}: expected a .png file (the vectors are written beside it, as .json)"
    assert not out.exists()


def test_bt_has_no_user_to_infer(bt_run, data_dir, tmp_path, capsys):
    pairs, out = str(data_dir / "pairs.jsonl"), tmp_path / "o.json"
    assert main(["adapt", "--run", str(bt_run), "--pairs", pairs, "--out", str(out)]) == 2
    assert _one_line(capsys).startswith(f"bt has no user vector: {bt_run} scores every user with one reward")
    assert main(["rank", "--run", str(bt_run), "--candidates", pairs, "--pairs", pairs, "--out",
                 str(out.with_suffix(".jsonl"))]) == 2
    assert _one_line(capsys).startswith("bt has no user vector: ")
    assert not out.exists() and not out.with_suffix(".jsonl").exists()


def test_rank_for_a_user_of_a_run_that_keeps_none_is_refused(data_dir, tmp_path, capsys):
    """micro trains on pooled pairs: `rank --user nobody-at-all` said it ranked for that user, with the
    population's rewards."""
    run = tmp_path / "micro"
    assert _fit(data_dir, run, "micro", 1) == 0
    capsys.readouterr()
    assert main(["rank", "--run", str(run), "--candidates", str(data_dir / "pairs.jsonl"), "--user", "nobody",
                 "--out", str(tmp_path / "r.jsonl")]) == 2
    assert _one_line(capsys) == (f"--user nobody: micro keeps no users ({run} was trained on pooled pairs), so any "
                                 "id would be ranked with the population; give --pairs FILE of the user's labelled "
                                 "pairs to adapt to them, or leave --user out")


def test_nothing_to_score_and_shots(bt_run, data_dir, tmp_path, capsys, caplog):
    context_only, out = data_dir / "context_only.jsonl", tmp_path / "o.json"
    copy = shutil.copytree(bt_run, tmp_path / "bt-copy")
    for command in (["eval", "--run", str(bt_run)], ["predict", "--run", str(bt_run)],
                    ["compare", "--runs", str(bt_run), str(copy)]):
        written = out.with_suffix(".jsonl") if command[0] == "predict" else out  # predict writes JSON lines
        assert main([*command, "--data", str(context_only), "--out", str(written)]) == 2
        assert _one_line(capsys).startswith(f"{context_only}: no query rows to score"), command
    assert main(["compare", "--runs", str(bt_run), str(bt_run), "--data", str(data_dir), "--out", str(out)]) == 2
    assert _one_line(capsys) == f"--runs names {bt_run} twice: a run against itself differs by nothing"
    assert main(["eval", "--run", str(bt_run), "--data", str(data_dir), "--shots", "", "--out", str(out)]) == 2
    assert _one_line(capsys) == "--shots '': give at least one shot count, e.g. --shots 0,4,8"
    assert not out.exists()
    assert main(["eval", "--run", str(bt_run), "--data", str(data_dir), "--shots", "2,100,0,2", "--out", str(out)]) == 0
    assert list(json.loads(out.read_text())["unseen"]) == ["0", "2", "100"]  # by k, once each
    assert (f"shots 100: the largest context in {data_dir / 'test.jsonl'} is 4 pair(s); at a larger k every "
            "unseen user adapts on all of theirs") in caplog.text


@pytest.mark.parametrize("entry", ["=5", "epochs=", "epochs", " =1"])
def test_a_malformed_set_entry_is_named(data_dir, tmp_path, capsys, entry):
    out = tmp_path / "run"
    assert main(["fit", "bt", "--data", str(data_dir), "--out", str(out), "--set", entry]) == 2
    assert _one_line(capsys).startswith(f"--set {entry!r}: expected KEY=VALUE")
    assert not out.exists()
    assert main(["bench", "--methods", "bt", "--benchmarks", "pets", "--out", str(out), "--set", f"bt.{entry}"]) == 2
    assert _one_line(capsys).startswith(f"--set 'bt.{entry}': expected KEY=VALUE")


def test_debug_after_the_subcommand_shows_the_traceback(tmp_path, capsys):
    command = ["eval", "--run", str(tmp_path), "--data", str(tmp_path), "--out", str(tmp_path / "m.json")]
    assert main(command) == 2
    assert "not a saved pluralign model" in _one_line(capsys)
    for debug in (["--debug", *command], [*command, "--debug"]):
        with pytest.raises(FileNotFoundError, match="not a saved pluralign model"):
            main(debug)


def test_settings_must_be_finite_and_a_diverged_fit_writes_no_run(data_dir, tmp_path, capsys):
    """An infinite lr (or any float argument) stops before any work; a finite one that still drives the weights
    to NaN or inf is refused after the fit, with no run written and no checkpoint to --resume from."""
    out = tmp_path / "r"
    assert _fit(data_dir, out, "bt", 1, "--set", "lr=inf") == 2
    assert _one_line(capsys) == "bt: lr='inf' must be a finite number" and not out.exists()
    with pytest.raises(ConfigError, match=r"pal-a: user_gain=inf must be a finite number"):
        METHODS["pal-a"](user_gain=float("inf"), epochs=1).fit(str(data_dir), progress=False)
    assert _fit(data_dir, out, "bt", 5, "--set", "lr=1e30") == 2
    assert _one_line(capsys).startswith("bt: training diverged: ")
    assert not out.exists()  # not even its logs: a folder that looks like a run
    out.mkdir()
    assert _fit(data_dir, out, "bt", 5, "--set", "lr=1e30") == 2
    assert _one_line(capsys).startswith("bt: training diverged: ")
    assert not (out / "model.safetensors").exists() and not (out / "config.json").exists()
    assert not list(out.rglob("*.ckpt"))
    assert _fit(data_dir, out, "bt", 1, "--set", "lr=1e38") == 2  # a step float32 cannot hold, in torch's words
    assert _one_line(capsys).startswith("bt: the optimizer's step overflowed float32 (")


def test_an_output_never_replaces_an_input(bt_run, data_dir, tmp_path, capsys):
    """--out (or --plot) naming the data, a file of the run or the other output is refused before any work."""
    test = tmp_path / "test.jsonl"
    shutil.copy(data_dir / "test.jsonl", test)
    before = test.read_bytes()
    assert main(["eval", "--run", str(bt_run), "--data", str(test), "--out", str(test)]) == 2
    assert _one_line(capsys) == f"--out {test}: would overwrite --data {test}; choose another file"
    config = bt_run / "config.json"
    assert main(["predict", "--run", str(bt_run), "--data", str(test), "--out", str(config)]) == 2
    assert _one_line(capsys) == f"--out {config}: would overwrite --run {bt_run}; choose another file"
    csv = tmp_path / "p.csv"  # JSON lines under a .csv name: pluralign's readers then read it as CSV, and fail
    assert main(["predict", "--run", str(bt_run), "--data", str(test), "--out", str(csv)]) == 2
    assert _one_line(capsys) == f"--out {csv}: expected a .jsonl file (what it holds is written as JSON lines)"
    assert main(["data", "convert", "psoups", str(test), "--out", str(tmp_path / "c.json")]) == 2
    assert _one_line(capsys).endswith("c.json: expected a .jsonl file (what it holds is written as JSON lines)")
    last = bt_run / "checkpoints" / "last.ckpt"  # what fit --resume reads: a JSON over it broke the resume
    assert main(["eval", "--run", str(bt_run), "--data", str(test), "--shots", "0", "--out", str(last)]) == 2
    assert _one_line(capsys) == f"--out {last}: would overwrite --run {bt_run}; choose another file"
    out = tmp_path / "m.png"
    assert main(["eval", "--run", str(bt_run), "--data", str(test), "--out", str(out), "--plot", str(out)]) == 2
    assert _one_line(capsys) == f"--plot {out}: would overwrite --out {out}; choose another file"
    assert main(["eval", "--run", str(bt_run), "--data", str(test), "--out", str(tmp_path / "m.json"),
                 "--plot", str(tmp_path / "curve.pdf")]) == 2
    assert _one_line(capsys).endswith("expected a .png file (the plot is drawn as PNG)")
    assert main(["fit", "bt", "--data", str(data_dir), "--out", str(data_dir)]) == 2
    assert _one_line(capsys) == f"--out {data_dir}: would overwrite --data {data_dir}; choose another folder"
    assert main(["fit", "bt", "--data", str(data_dir), "--out", ""]) == 2
    assert _one_line(capsys) == "--out: empty path; name a folder"
    assert test.read_bytes() == before and json.loads(config.read_text())["method"] == "bt"
    assert not out.exists() and not (tmp_path / "m.json").exists()


def test_option_errors_are_one_line(bt_run, data_dir, tmp_path, capsys):
    """argparse's own errors too (it prints its usage block first), and options that would be ignored."""
    with pytest.raises(SystemExit) as stopped:
        main(["predict", "--run", str(bt_run), "--data", str(data_dir), "--out", str(tmp_path / "p"), "--shots", "1,2"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == ("pluralign predict: error: argument --shots: invalid int value: '1,2' "
                   "(see pluralign predict --help)")
    pairs = str(data_dir / "pairs.jsonl")
    assert main(["adapt", "--run", str(bt_run), "--pairs", pairs, "--out", str(tmp_path / "u.json"),
                 "--queries", "3"]) == 2
    assert _one_line(capsys) == "--queries picks pairs from an --active POOL; give --active POOL too"
    assert main(["rank", "--run", str(bt_run), "--candidates", pairs, "--user", "u0", "--out",
                 str(tmp_path / "o.jsonl")]) == 2
    assert _one_line(capsys).startswith("bt has no user vector: ")
    assert main(["bench", "--methods", "bt", "bt", "--out", str(tmp_path / "b")]) == 2
    assert _one_line(capsys) == "--methods names bt more than once"
    assert main(["demo", "--methods", "bt", "nope", "--out", str(tmp_path / "d")]) == 2
    assert _one_line(capsys).startswith("unknown method 'nope'")
    assert main(["eval", "--run", str(tmp_path / "none"), "--data", str(data_dir), "--out", str(tmp_path / "m")]) == 2
    assert _one_line(capsys) == f"{tmp_path / 'none'}: no such folder (a run folder written by pluralign fit)"
    assert not list(tmp_path.iterdir())


def test_what_would_silently_surprise_is_said(bt_run, data_dir, tmp_path, capsys, caplog):
    """--resume with nothing to resume, a trained user's rows marked as queries, a folder given to data split."""
    assert _fit(data_dir, tmp_path / "r", "bt", 1, "--resume") == 0
    assert f"--resume: no checkpoint at {tmp_path / 'r' / 'checkpoints' / 'last.ckpt'}; training from the start" \
        in caplog.text
    known = [{**row, "role": "query"} for row in read_preferences(data_dir / "train.jsonl").rows[:4]]
    write_jsonl(tmp_path / "known.jsonl", known)
    run = tmp_path / "pal"
    assert _fit(data_dir, run, "pal-a", 1) == 0
    assert main(["eval", "--run", str(run), "--data", str(tmp_path / "known.jsonl"), "--out", str(tmp_path / "m.json"),
                 "--shots", "0"]) == 0
    assert f"known.jsonl: query rows of 1 user(s) the run was trained on ({known[0]['user_id']}, ...)" in caplog.text
    assert main(["data", "split", str(data_dir), "--out", str(tmp_path / "split"), "--unseen-users", "1",
                 "--context", "4"]) == 0
    assert f"{data_dir}: a folder; splitting its train split alone" in caplog.text
