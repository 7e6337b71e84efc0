"""pluralign.eval.metrics by hand: the edges test_protocol.py leaves open."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pluralign.eval.metrics import calibration_error, preference_metrics


def test_full_confidence_falls_in_the_last_bin() -> None:
    """Confidence 1 (p = 0 or 1) is in the last bin, [0.9, 1], which is closed: p = 0 says "rejected wins" for
    sure and is wrong by the contract's label, an error of |0 − 1| = 1; p = 1 and 0.9 are right, |1 − 0.95|."""
    assert calibration_error(np.array([0.0])) == pytest.approx(1.0)
    assert calibration_error(np.array([1.0, 0.9])) == pytest.approx(0.05)
    assert calibration_error(np.array([1.0, 0.0])) == pytest.approx(0.5)  # one bin: |0.5 − 1|


def test_log_loss_clips_only_at_eps() -> None:
    """A confident mistake costs its full log loss: −log(0.001) = 6.9078, not a loss capped at some larger floor;
    p = 0 is clipped to 1e-7, −log(1e-7) = 16.118."""
    assert preference_metrics([0.001])["log_loss"] == pytest.approx(-math.log(0.001))
    assert preference_metrics([0.0])["log_loss"] == pytest.approx(-math.log(1e-7))


def test_no_oracle_figures_unless_every_row_has_one() -> None:
    """One row without oracle_p (real data mixed in) and there is no oracle accuracy, nor a gap."""
    m = preference_metrics([0.9, 0.4], oracle_p=[0.8, None], clusters=["u", "v"])
    assert m["accuracy"] == 0.5 and not {"oracle_accuracy", "gap_to_oracle", "gap_to_oracle_se"} & set(m)
    assert "oracle_accuracy" not in preference_metrics([0.9], oracle_p=[])


def test_gap_standard_error_is_clustered_by_user() -> None:
    """Oracle hits 1, 1, 1, 1; the model's 0, 0, 1, 1 on users u, u, v, v: per-row gaps 1, 1, 0, 0, mean 0.5;
    per-user residual sums +1 and −1, SE = √(2/1 · 2) / 4 = 0.5 (per-row clusters would give √(1/3)/2 = 0.289)."""
    m = preference_metrics([0.4, 0.3, 0.8, 0.9], oracle_p=[0.8, 0.9, 0.7, 0.6], clusters=["u", "u", "v", "v"])
    assert m["gap_to_oracle"] == pytest.approx(0.5)
    assert m["gap_to_oracle_se"] == pytest.approx(0.5)


def test_gap_standard_error_reads_the_oracles_hits_too() -> None:
    """The oracle misses a row here (o = 0.3: it calls rejected, the label is chosen): per-row gaps of hits(o) −
    hits(p) are 0 − 1, 1 − 1, 1 − 0, 1 − 0 = −1, 0, 1, 1 on users u, u, v, v; mean 0.25, per-user residual sums
    −1.5, +1.5: SE = √(2 · 4.5) / 4 = 0.75 (the model's hits alone give √(2 · 2) / 4 = 0.5)."""
    m = preference_metrics([0.9, 0.8, 0.2, 0.1], oracle_p=[0.3, 0.9, 0.7, 0.6], clusters=["u", "u", "v", "v"])
    assert m["gap_to_oracle"] == pytest.approx(0.25)
    assert m["gap_to_oracle_se"] == pytest.approx(0.75)


def test_expected_gap_by_hand() -> None:
    """Labels averaged out: oracle max(o, 1 − o) = 0.8, 0.9, 0.7, 0.6; the model, on the label's side where
    p > 0.5, gets o (0.7, 0.6), against it 1 − o (0.2, 0.1), a tie ½. p = 0.4, 0.3, 0.8, 0.9 → per-row gaps
    0.6, 0.8, 0, 0, mean 0.35; per-user residual sums +0.7, −0.7: SE = √(2 · 0.98) / 4. A tie at p = ½ against
    o = 0.3 gives 0.7 − 0.5."""
    m = preference_metrics([0.4, 0.3, 0.8, 0.9], oracle_p=[0.8, 0.9, 0.7, 0.6], clusters=["u", "u", "v", "v"])
    assert m["expected_gap_to_oracle"] == pytest.approx(0.35)
    assert m["expected_gap_to_oracle_se"] == pytest.approx((2 * 0.98) ** 0.5 / 4)
    assert preference_metrics([0.5], oracle_p=[0.3])["expected_gap_to_oracle"] == pytest.approx(0.2)
