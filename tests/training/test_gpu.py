"""Every method trains with Lightning's GPU accelerator and learns what it learns on the CPU.

Skipped where no CUDA device is present (CI); ``PLURALIGN_TEST_ACCELERATOR=cpu`` runs the same checks on
the CPU to exercise the test itself. The CPU fit of the same seed is the reference: the accelerator must
not change what a method learns beyond float noise and GPU random draws.
"""

from __future__ import annotations

import os

import pytest
import torch

from pluralign.data.contract import PreferenceSet
from pluralign.data.synthetic import build_benchmark
from pluralign.eval.protocol import score_rows
from pluralign.methods import METHODS

ACCELERATOR = os.environ.get("PLURALIGN_TEST_ACCELERATOR", "gpu")
pytestmark = pytest.mark.skipif(ACCELERATOR == "gpu" and not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def data() -> tuple[PreferenceSet, PreferenceSet]:
    bench = build_benchmark("ideal-points", seed=0, n_users=12, n_unseen_users=2, pairs_per_user=60)
    return PreferenceSet.from_rows(bench.train, "train"), PreferenceSet.from_rows(bench.test, "test")


@pytest.mark.parametrize("name", sorted(METHODS))
def test_fit_on_accelerator_matches_cpu(name: str, data) -> None:
    train, test = data
    probs = {}
    for accelerator in ("cpu", ACCELERATOR):
        model = METHODS[name](epochs=5, seed=0).fit(train, accelerator=accelerator)
        assert next(model.network_.parameters()).device.type == "cpu"  # fitted models come back to the CPU
        _, probs[accelerator] = score_rows(model, test, shots=4)
    gap = abs(probs[ACCELERATOR] - probs["cpu"]).mean()
    assert gap < 0.05, f"{name}: mean |P(gpu) - P(cpu)| = {gap:.3f}"
