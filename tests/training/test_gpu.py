"""Every method trains with Lightning's GPU accelerator and learns what it learns on the CPU.

Skipped where no CUDA device is present (CI); ``PLURALIGN_TEST_ACCELERATOR=cpu`` runs the same checks on
the CPU to exercise the test itself. The CPU fit of the same seed is the reference: the accelerator must
not change what a method learns beyond float noise and GPU random draws.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from pluralign.data.contract import PreferenceSet
from pluralign.data.synthetic import build_benchmark
from pluralign.eval.protocol import score_rows
from pluralign.methods import METHODS, PreferenceModel

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
        if accelerator in ("gpu", "cuda"):
            assert model.fit_stats_["peak_gpu_memory_mb"] > 0
        _, probs[accelerator] = score_rows(model, test, shots=4)
    gap = abs(probs[ACCELERATOR] - probs["cpu"]).mean()
    assert gap < 0.05, f"{name}: mean |P(gpu) - P(cpu)| = {gap:.3f}"


LARGE_TINY = {
    "bt": dict(hidden=[16]),
    "gpm": dict(n_blocks=2, hidden=[16], adapt_steps=10),
    "micro": dict(n_heads=2, hidden=[], adapt_steps=10),
    "pal-a": dict(k=2, pref_dim=8, hidden=[], few_shot_steps=10),
    "vpl": dict(latent_dim=2, hidden=[16], encoder_hidden=[16], encoder_width=16, context_max=4),
}


@pytest.mark.parametrize("name", sorted(LARGE_TINY))
def test_large_setting_on_accelerator_matches_cpu(name: str, tmp_path) -> None:
    """The "Large" setting (top backbone layer trained through the method's objective) on the accelerator.

    Fine-tuning draws dropout masks (and VPL its z samples) from the device's generator, so on a model
    this small the accelerator's fit differs from the CPU's by a few points. The check: it lands nearer
    the CPU's fine-tuned model than the CPU's frozen model does, i.e. it did the fine-tuning. The device's
    fit then saves only what trained and reloads on the CPU to the same predictions."""
    bench = build_benchmark("pets", seed=0, n_users=4, n_unseen_users=1, pairs_per_user=12, test_pairs_per_user=4)
    train, test = PreferenceSet.from_rows(bench.train), PreferenceSet.from_rows(bench.test)
    probs = {}
    for key, accelerator, layers in (("frozen", "cpu", 0), ("cpu", "cpu", 1), ("device", ACCELERATOR, 1)):
        model = METHODS[name](epochs=2, lr=0.01, batch_size=16, seed=0, finetune_layers=layers, finetune_epochs=1,
                              finetune_lr=1e-3, **LARGE_TINY[name]).fit(train, accelerator=accelerator, progress=False)
        assert next(model.network_.parameters()).device.type == "cpu"
        _, probs[key] = score_rows(model, test, shots=2)
    model.save_pretrained(tmp_path)
    _, reloaded = score_rows(PreferenceModel.from_pretrained(tmp_path), test, shots=2)
    assert np.array_equal(reloaded, probs["device"]), f"{name}: the saved device fit predicts otherwise"
    gap = abs(probs["device"] - probs["cpu"]).mean()
    tuning = abs(probs["frozen"] - probs["cpu"]).mean()
    assert tuning > 0.02 and gap < tuning, f"{name}: |P(device) - P(cpu)| = {gap:.3f}, fine-tuning moved P by {tuning:.3f}"
