"""Is method A better than method B on these users? A paired comparison on the same rows.

Two accuracies, each with its own interval, overlap long after their difference is clear: both models are
scored on the same pairs of the same users, so most of the noise (which users, which pairs) is shared. The
paired estimate takes the per-row difference of hits, d_i = hit_A(i) − hit_B(i), and its standard error
clustered by user (:func:`~pluralign.eval.metrics.clustered_standard_error`), since a user's rows share one
user vector. It needs no oracle, so it is the interval real data gets.
"""

from __future__ import annotations

import numpy as np

from pluralign.data.contract import PreferenceSet
from pluralign.eval.metrics import clustered_standard_error, hits
from pluralign.eval.protocol import score_rows


def paired_difference(hits_a: np.ndarray, hits_b: np.ndarray, users: list) -> dict:
    """Accuracy of A and of B on the same rows, their difference A − B, and its clustered standard error
    (``difference_se``; absent with fewer than two users)."""
    difference = hits_a - hits_b
    out = {"n": int(difference.size), "users": len(set(users)), "accuracy_a": float(hits_a.mean()),
           "accuracy_b": float(hits_b.mean()), "difference": float(difference.mean())}
    se = clustered_standard_error(difference, users)
    if se is not None:
        out["difference_se"] = se
    return out


def compare(model_a, model_b, data: PreferenceSet, shots: int = 8) -> dict:
    """Both models on ``data``: seen users' rows, and unseen users' query rows after each model adapts on
    the same first ``shots`` context rows. Keys ``seen`` and ``unseen`` (where the data has such rows)."""
    rows_a, p_a = score_rows(model_a, data, shots)
    rows_b, p_b = score_rows(model_b, data, shots)
    if not np.array_equal(rows_a, rows_b):  # the same data and shots score the same rows; guard all the same
        raise RuntimeError("compare: the two models scored different rows")
    roles, users = data.column("role"), data.column("user_id")
    report = {"shots": shots}
    for name, role in (("seen", None), ("unseen", "query")):
        keep = np.asarray([roles[i] == role for i in rows_a], dtype=bool)
        if keep.any():
            chosen = rows_a[keep]
            # rows without a user id are each their own cluster
            clusters = [users[i] if users[i] is not None else f"<row {i}>" for i in chosen]
            report[name] = paired_difference(hits(p_a[keep]), hits(p_b[keep]), clusters)
    return report
