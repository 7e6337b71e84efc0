"""DDP on 2 CPU processes gives the accuracy of one process; a run resumes from its last checkpoint."""

import json
import os
import subprocess
import sys

import pytest

from conftest import two_group_rows
from pluralign.data import PreferenceSet
from pluralign.eval import evaluate
from pluralign.io import write_jsonl
from pluralign.methods import PreferenceModel
from pluralign.methods.bt import BradleyTerry


def fit_cli(data, out, *extra):
    cmd = [sys.executable, "-m", "pluralign.cli", "fit", "bt", "--data", str(data), "--out", str(out),
           "--set", "epochs=8", "--set", "hidden=[16]", "--set", "lr=0.003", "--no-progress", *extra]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    train, test = two_group_rows(n_users=3, pairs=400, seed=1)
    majority = [r for r in train if r["group"] == "a"]
    write_jsonl(folder / "train.jsonl", majority)
    return folder, PreferenceSet.from_rows([r for r in test if r["group"] == "a" and "role" not in r])


def test_ddp_two_processes_match_one(data, tmp_path):
    folder, test = data
    fit_cli(folder, tmp_path / "one")
    fit_cli(folder, tmp_path / "two", "--strategy", "ddp", "--devices", "2")
    one = evaluate(PreferenceModel.from_pretrained(tmp_path / "one"), test)["seen"]["accuracy"]
    two = evaluate(PreferenceModel.from_pretrained(tmp_path / "two"), test)["seen"]["accuracy"]
    assert one > 0.8
    assert abs(one - two) < 0.04  # same data, half the steps per process: equal within noise


def test_resume_continues_from_last_checkpoint(data, tmp_path):
    folder, _ = data
    rows = PreferenceSet.from_rows([json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()])
    BradleyTerry(epochs=2, hidden=[8]).fit(rows, out_dir=str(tmp_path), progress=False)
    resumed = BradleyTerry(epochs=4, hidden=[8]).fit(rows, out_dir=str(tmp_path), resume=True, progress=False)
    assert resumed.fit_stats_["n_pairs"] == len(rows)
    assert resumed.fit_stats_["epochs"] == 2  # the epochs this fit ran and timed: pairs/s counts these only
    seconds = resumed.fit_stats_["fit_seconds"]  # rounded to the millisecond
    assert 2 * len(rows) / (seconds + 5e-4) <= resumed.fit_stats_["pairs_per_second"] <= 2 * len(rows) / (seconds - 5e-4)

    def logged_epochs(version: str) -> list[int]:
        lines = (tmp_path / "logs" / version / "metrics.csv").read_text().splitlines()
        column = lines[0].split(",").index("epoch")
        return sorted({int(float(v)) for line in lines[1:] if (v := line.split(",")[column])})

    assert logged_epochs("fit") == [0, 1]  # the first run's logs are kept
    assert logged_epochs("fit-2") == [2, 3]  # the resumed run starts where the checkpoint ended
