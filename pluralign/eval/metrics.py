"""Metrics of P(chosen ≻ rejected) predictions; the label is always "chosen wins" by the contract."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

EPS = 1e-7


def hits(p: np.ndarray) -> np.ndarray:
    """1 where P(chosen ≻ rejected) > 0.5, a half for a tie: the per-row accuracy."""
    return (p > 0.5) + 0.5 * (p == 0.5)


def clustered_standard_error(values: np.ndarray, clusters: Sequence) -> float | None:
    """Standard error of the mean of ``values`` when rows come in clusters (an unseen user's queries share
    one adaptation, so they are not independent draws): the cluster-robust (sandwich) estimate

        SE² = C / (C − 1) · Σ_c (Σ_{i∈c} (v_i − v̄))² / N²,

    C clusters, N rows. None with fewer than two clusters."""
    labels, index = np.unique(np.asarray(clusters, dtype=object).astype(str), return_inverse=True)
    if len(labels) < 2:
        return None
    residual_sums = np.bincount(index, weights=values - values.mean(), minlength=len(labels))
    c, n = len(labels), len(values)
    return float(np.sqrt(c / (c - 1) * np.sum(residual_sums ** 2)) / n)


def cluster_df(clusters: Sequence) -> int:
    """Degrees of freedom of :func:`clustered_standard_error` over these clusters: their number less one."""
    return len(np.unique(np.asarray(clusters, dtype=object).astype(str))) - 1


def interval_quantile(df: float | None, level: float = 0.95, comparisons: int = 1) -> float:
    """The multiplier of a standard error for a two-sided ``level`` interval, Bonferroni over ``comparisons``
    intervals meant to hold together: Student's t on ``df`` degrees of freedom, since a clustered standard error
    of a dozen users is itself uncertain (2.20 for 12 users, 2.03 for 36, 1.98 for 144, where the normal
    quantile says 1.96 for all). ``df`` None (a record written before 2026-11-29, which kept none): the normal
    quantile."""
    from scipy import stats

    tail = (1 - level) / (2 * comparisons)
    return float(stats.norm.isf(tail) if df is None else stats.t.isf(tail, max(df, 1)))


def half_width(stats: dict, se_key: str) -> float | None:
    """The ± of a 95% interval for ``stats``' estimate whose standard error is ``stats[se_key]``, on the
    ``se_df`` degrees of freedom beside it (:func:`interval_quantile`); None where there is no standard error."""
    if stats.get(se_key) is None:
        return None
    return interval_quantile(stats.get("se_df")) * stats[se_key]


def standard_error_of_mean(standard_errors: Sequence[float]) -> float:
    """The standard error of a mean of independent estimates (seeds), from theirs: √(Σ SE²) / n."""
    return float(np.sqrt(np.sum(np.square(standard_errors))) / len(standard_errors))


def calibration_error(p: np.ndarray, bins: int = 5) -> float:
    """Expected calibration error of the predicted preferences: rows binned by confidence max(p, 1 − p) into
    ``bins`` equal bins of [0.5, 1], then Σ_b (n_b / N) |accuracy_b − confidence_b|. Confidence, not p,
    because a pair's orientation is arbitrary (the label is "chosen wins" by the contract); 0 is calibrated:
    of the pairs called at 80 %, 80 % go that way."""
    confidence = np.maximum(p, 1.0 - p)
    # bins [lo, hi), the last closed; rounded first, so that an edge such as 0.6 (0.999... bins up in floating
    # point) falls in the bin it starts, as 0.8 does
    which = np.minimum(np.floor(np.round((confidence - 0.5) * 2 * bins, 9)).astype(int), bins - 1)
    correct = hits(p)
    error = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            error += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(error)


def preference_metrics(p_chosen: Sequence[float], oracle_p: Sequence[float | None] | None = None,
                       clusters: Sequence | None = None) -> dict:
    """``n``, ``accuracy`` (a tie at 0.5 counts half), ``log_loss``, ``calibration_error`` (ECE, 5 bins of
    confidence), and ``oracle_accuracy`` — the accuracy
    of the true model on the same sampled labels — where every row has ``oracle_p``. With ``clusters``
    (each row's user), also ``gap_to_oracle_se``: the standard error of the gap over those users, so a
    reader sees how much a dozen unseen users can tell, and ``se_df``, its degrees of freedom (users − 1): gap ±
    ``interval_quantile(se_df)`` SE is a 95% interval.

    Both accuracies are on the sampled labels. Where ``oracle_p`` is the true P(chosen ≻ rejected) (synthetic
    data), ``expected_gap_to_oracle`` (and its ``_se``) takes the expectation over the labels instead: a row
    the oracle calls gives it max(o, 1 − o), and the model o where it agrees with the label's side, 1 − o where
    not, ½ at a tie. Same expectation as the gap, without the label noise of the rows drawn."""
    p = np.asarray(p_chosen, dtype=np.float64)
    out: dict = {"n": int(p.size)}
    if p.size == 0:
        return out
    out["accuracy"] = float(np.mean(hits(p)))
    out["log_loss"] = float(-np.mean(np.log(np.clip(p, EPS, 1.0))))
    out["calibration_error"] = calibration_error(p)
    if oracle_p is not None and len(oracle_p) and all(o is not None for o in oracle_p):
        o = np.asarray(oracle_p, dtype=np.float64)
        out["oracle_accuracy"] = float(np.mean(hits(o)))
        out["gap_to_oracle"] = out["oracle_accuracy"] - out["accuracy"]
        expected = np.maximum(o, 1 - o) - np.where(p > 0.5, o, np.where(p < 0.5, 1 - o, 0.5))
        out["expected_gap_to_oracle"] = float(expected.mean())
        if clusters is not None:
            for key, values in (("gap_to_oracle_se", hits(o) - hits(p)), ("expected_gap_to_oracle_se", expected)):
                se = clustered_standard_error(values, clusters)
                if se is not None:
                    out[key], out["se_df"] = se, cluster_df(clusters)
    return out


def round_floats(obj, digits: int = 4):
    """Round every float in a nested structure, for readable JSON."""
    if isinstance(obj, float):
        return obj if math.isnan(obj) else round(obj, digits)
    if isinstance(obj, dict):
        return {k: round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, list):
        return [round_floats(v, digits) for v in obj]
    return obj
