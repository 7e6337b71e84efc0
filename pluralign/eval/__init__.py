"""Evaluation: the protocol every method is measured by, its metrics and its plots."""

from pluralign.eval.metrics import preference_metrics
from pluralign.eval.protocol import DEFAULT_SHOTS, evaluate, score_rows

__all__ = ["preference_metrics", "evaluate", "score_rows", "DEFAULT_SHOTS"]
