"""benchmarks/few_shot_bound.py: the Bayes few-shot predictor that knows each benchmark's generator."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "few_shot_bound.py"


@pytest.fixture(scope="module")
def bound_module():
    spec = importlib.util.spec_from_file_location("few_shot_bound", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["pets", "attributes", "ideal-points"])
def test_user_models_reproduce_the_oracle(bound_module, name):
    """The predictor's reward model is the generator's: the true user's logit gives each row's oracle_p."""
    from pluralign.data.synthetic import build_benchmark

    bench = build_benchmark(name, seed=1)
    users, logits = bound_module.USER_MODELS[name](1)
    rows = [r for r in bench.test if r.get("role") == "query"][:40]
    probs = 1 / (1 + np.exp(-logits(users, rows)))  # [users, rows]
    # every row's oracle_p is one of the prior's users (exactly for types, nearly for Dirichlet samples)
    nearest = np.abs(probs - np.array([r["oracle_p"] for r in rows])).min(0)
    assert nearest.max() < (1e-4 if name != "ideal-points" else 0.05)


def test_bayes_predictor_ceiling(bound_module):
    """More context never hurts in expectation, the oracle bounds it, and with survey contexts pets' two
    types are told apart by 16 pairs: the predictor equals the oracle."""
    result = bound_module.bound("pets", 0, "survey")
    assert result["16"]["accuracy"] == pytest.approx(result["16"]["oracle_accuracy"])
    assert result["0"]["accuracy"] < result["4"]["accuracy"] <= result["16"]["accuracy"] + 1e-9
    for k in ("0", "1", "2", "4", "8", "16"):
        assert result[k]["accuracy"] <= result[k]["oracle_accuracy"] + 0.03  # one draw may beat it slightly
