"""Metrics of P(chosen ≻ rejected) predictions; the label is always "chosen wins" by the contract."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

EPS = 1e-7


def preference_metrics(p_chosen: Sequence[float], oracle_p: Sequence[float | None] | None = None) -> dict:
    """``n``, ``accuracy`` (a tie at 0.5 counts half), ``log_loss``, and ``oracle_accuracy`` — the accuracy
    of the true model on the same sampled labels — where every row has ``oracle_p``."""
    p = np.asarray(p_chosen, dtype=np.float64)
    out: dict = {"n": int(p.size)}
    if p.size == 0:
        return out
    out["accuracy"] = float(np.mean((p > 0.5) + 0.5 * (p == 0.5)))
    out["log_loss"] = float(-np.mean(np.log(np.clip(p, EPS, 1.0))))
    if oracle_p is not None and len(oracle_p) and all(o is not None for o in oracle_p):
        o = np.asarray(oracle_p, dtype=np.float64)
        out["oracle_accuracy"] = float(np.mean((o > 0.5) + 0.5 * (o == 0.5)))
        out["gap_to_oracle"] = out["oracle_accuracy"] - out["accuracy"]
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
