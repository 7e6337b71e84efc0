"""Every example runs (smoke): on a feature benchmark with few epochs so no backbone is needed."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_smoke_run():
    tested = {"fit_and_compare", "few_shot_user", "split_real_data"}
    assert {p.stem for p in EXAMPLES.glob("*.py")} == tested


def test_fit_and_compare():
    results = load("fit_and_compare").main(["--data", "ideal-points", "--epochs", "2"])
    assert "accuracy" in results["bt"]["seen"]


@pytest.mark.parametrize("method", ["bt", "pal-a", "vpl"])
def test_few_shot_user(method):
    accuracy = load("few_shot_user").main(["--data", "ideal-points", "--method", method, "--epochs", "2"])
    assert 0.0 <= accuracy <= 1.0


def test_split_real_data(tmp_path):
    report = load("split_real_data").main(["--data", "ideal-points", "--method", "pal-a", "--epochs", "2",
                                            "--unseen-users", "4", "--out", str(tmp_path)])
    assert set(report["unseen"]) == {"0", "4", "8", "16"} and (tmp_path / "report.json").exists()
