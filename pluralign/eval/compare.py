"""Is method A better than method B on these users? A paired comparison on the same rows.

Two accuracies, each with its own interval, overlap long after their difference is clear: both models are
scored on the same pairs of the same users, so most of the noise (which users, which pairs) is shared. The
paired estimate takes the per-row difference of hits, d_i = hit_A(i) − hit_B(i), and its standard error
clustered by user (:func:`~pluralign.eval.metrics.clustered_standard_error`), since a user's rows share one
user vector. It needs no oracle, so it is the interval real data gets.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

import numpy as np

from pluralign.data.contract import PreferenceSet
from pluralign.data.readers import read_preferences
from pluralign.eval.metrics import cluster_df, clustered_standard_error, half_width, hits, interval_quantile
from pluralign.eval.protocol import checked_shots, score_rows, warn_short_contexts


def paired_difference(hits_a: np.ndarray, hits_b: np.ndarray, users: list) -> dict:
    """Accuracy of A and of B on the same rows, their difference A − B, and its clustered standard error
    (``difference_se``, with its degrees of freedom ``se_df``, users − 1; absent with fewer than two users)."""
    difference = hits_a - hits_b
    out = {"n": int(difference.size), "users": len(set(users)), "accuracy_a": float(hits_a.mean()),
           "accuracy_b": float(hits_b.mean()), "difference": float(difference.mean())}
    se = clustered_standard_error(difference, users)
    if se is not None:
        out["difference_se"], out["se_df"] = se, cluster_df(users)
    return out


def compare(model_a, model_b, data: Any, shots: int = 8, active: bool = False,
            progress: bool = False) -> dict:
    """Both models on ``data``: seen users' rows, and unseen users' query rows after each model adapts on
    the same first ``shots`` context rows (``active``: on the ``shots`` it asks first,
    :func:`~pluralign.eval.protocol.chosen_contexts`).
    Keys ``seen`` and ``unseen`` (where the data has such rows), and ``questions`` with ``active``. ``users``
    counts user ids only: rows without one (``rows_without_user``, scored with the population model) are each
    their own cluster in the standard error, but no user. ``progress``: a bar while each model chooses questions.
    ``data``: anything ``fit`` reads (a folder: its test split); users with fewer than ``shots`` context rows are
    named in the log (:func:`~pluralign.eval.protocol.warn_short_contexts`)."""
    data = read_preferences(data, split="test")
    checked_shots([shots])
    warn_short_contexts(data, [shots])
    rows_a, p_a = score_rows(model_a, data, shots, active=active, progress=progress)
    rows_b, p_b = score_rows(model_b, data, shots, active=active, progress=progress)
    if not np.array_equal(rows_a, rows_b):  # the same data and shots score the same rows; guard all the same
        raise RuntimeError("compare: the two models scored different rows")
    roles, users = data.column("role"), data.column("user_id")
    report: dict = {"shots": shots, **({"questions": "chosen"} if active else {})}
    for name, role in (("seen", None), ("unseen", "query")):
        keep = np.asarray([roles[i] == role for i in rows_a], dtype=bool)
        if keep.any():
            chosen = rows_a[keep]
            # rows without a user id are each their own cluster
            clusters = [users[i] if users[i] is not None else f"<row {i}>" for i in chosen]
            report[name] = paired_difference(hits(p_a[keep]), hits(p_b[keep]), clusters)
            report[name]["users"] = len({users[i] for i in chosen if users[i] is not None})
            if without_user := sum(users[i] is None for i in chosen):
                report[name]["rows_without_user"] = without_user
    return report


# ---------------------------------------------------------------------------------------- in the bench
def unseen_hits(model, data: PreferenceSet, shots: int = 8, scored: tuple | None = None,
                active: bool = False) -> dict | None:
    """Each unseen-user query row's hit at ``shots`` and its user, in row order: what the bench keeps of a
    cell (in memory only) to compare methods on the same rows. None where the data has no unseen users.
    ``scored``: those rows and probabilities already computed (``evaluate``'s ``query_probs``); ``active``: after
    the model's chosen questions."""
    rows, p = scored if scored is not None else score_rows(model, data, shots, include_seen=False, active=active)
    if not len(rows):
        return None
    users = data.column("user_id")
    return {"user": [users[i] for i in rows], "hit": hits(p).tolist()}


def simultaneous_quantile(methods: int, clusters: int, level: float = 0.95) -> float:
    """The multiplier of intervals that hold together, at ``level``, for every pair of ``methods`` (Bonferroni over
    their m(m − 1)/2 pairs), so they hold for the pairs with the best method too, though the best is picked on the
    same rows; Student's t on C − 1 degrees of freedom for C clusters, since a clustered standard error of a dozen
    users is itself uncertain. Simulated with 7 equally good methods and 12 users, 1.96 for each interval alone
    separated some method from the best in 55% of columns, the normal quantile with Bonferroni (3.04) in 13%, this
    (3.92) in 3%; over all 21 pairs, 4.7% of columns (the 5% it promises)."""
    return interval_quantile(clusters - 1, level, comparisons=methods * (methods - 1) // 2)


def paired_table(runs: dict[int, dict[str, dict[str, dict]]], key: str, shared_users: Sequence[str] = (),
                 k: int = 8) -> str:
    """Markdown: on each benchmark, every method's difference from the best one on unseen users at ``k``
    shots, with a paired interval that holds for all the column's pairs of methods at once
    (:func:`simultaneous_quantile`). ``runs[seed][benchmark][method][key]`` holds :func:`unseen_hits`.
    Seeds are pooled: a synthetic benchmark draws new users under each seed (clusters ``seed:user``);
    the benchmarks in ``shared_users`` (folders of real data) keep theirs, so a user is one cluster."""
    columns: dict[str, dict[str, str]] = {}
    order: dict[str, None] = {}  # the methods in the bench's order, not the best first
    quantiles: dict[tuple[int, int], float] = {}  # (methods, users) → the quantile the note gives
    for bench in next(iter(runs.values())):
        pooled: dict[str, tuple[list, list]] = {}
        for seed, results in runs.items():
            for method, report in results[bench].items():
                if report.get(key):
                    order.setdefault(method)
                    hit, users = pooled.setdefault(method, ([], []))
                    hit += report[key]["hit"]
                    users += [u if bench in shared_users else f"{seed}:{u}" for u in report[key]["user"]]
        # compared on the rows most methods were scored on (a kept cell without its saved model lacks a seed's),
        # so that one method with fewer rows can neither be the best nor drop the others
        rows = Counter(tuple(users) for _, users in pooled.values())
        if not rows:  # no cell has hits here: every one kept by --resume without its saved model, or no unseen users
            continue
        common = list(max(rows, key=lambda r: (rows[r], len(r))))
        elsewhere = [m for m, (_, users) in pooled.items() if users != common]
        pooled = {m: (hit, users) for m, (hit, users) in pooled.items() if users == common}
        if len(pooled) < 2:
            continue
        best = max(pooled, key=lambda m: np.mean(pooled[m][0]))
        best_hits, best_users = np.asarray(pooled[best][0]), pooled[best][1]
        columns[bench] = {best: "best", **{m: "other rows" for m in elsewhere}}
        q = simultaneous_quantile(len(pooled), len(set(best_users)))
        for method, (hit, users) in pooled.items():
            if method != best:
                d = paired_difference(np.asarray(hit), best_hits, users)
                interval = f" ± {100 * q * d['difference_se']:.1f}" if "difference_se" in d else ""
                if interval:  # the note gives the quantiles of the intervals shown (one user: none)
                    quantiles[len(pooled), len(set(best_users))] = q
                columns[bench][method] = f"{100 * d['difference']:+.1f}{interval}"
    if not columns:
        return ""
    return (f"\nEach method against the best one on the same rows (unseen users, k = {k}): the difference in points, "
            "± a 95% interval that holds for every pair of the column's m methods at once, so it allows for picking "
            "the best on the same rows: standard errors clustered by user, times Student's t on C − 1 degrees of "
            "freedom for C users at Bonferroni's 1 − 0.05 / (m(m − 1))"
            + (" (" + ", ".join(f"{q:.2f} for {m} methods and {c} users" for (m, c), q in sorted(quantiles.items()))
               + ")" if quantiles else "") + ". An interval that holds 0 does not separate the two.\n\n"
            + _method_table(columns, order))


def _method_table(columns: dict[str, dict[str, str]], order: dict[str, None]) -> str:
    """Markdown: a row per method (in ``order``), a column per benchmark, "–" where a cell is missing."""
    methods = [m for m in order if any(m in cells for cells in columns.values())]
    lines = ["| method | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 1)]
    lines += [f"| {m} | " + " | ".join(cells.get(m, "–") for cells in columns.values()) + " |" for m in methods]
    return "\n".join(lines) + "\n"


def gain_table(runs: dict[int, dict[str, dict[str, dict]]], key: str, before_key: str,
               shared_users: Sequence[str] = (), k: int = 8) -> str:
    """Markdown: each method's accuracy under ``key``'s hits minus under ``before_key``'s, on the same unseen
    users' rows at ``k`` shots (both :func:`unseen_hits` of one model: ``bench --active`` keeps the file order's
    beside the chosen questions'), with its paired 95% interval; seeds pooled as in :func:`paired_table`."""
    columns: dict[str, dict[str, str]] = {}
    order: dict[str, None] = {}
    for bench in next(iter(runs.values())):
        pooled: dict[str, tuple[list, list, list]] = {}
        for seed, results in runs.items():
            for method, report in results[bench].items():
                after, before = report.get(key), report.get(before_key)
                if after and before and after["user"] == before["user"]:
                    order.setdefault(method)
                    hit, hit_before, users = pooled.setdefault(method, ([], [], []))
                    hit += after["hit"]
                    hit_before += before["hit"]
                    users += [u if bench in shared_users else f"{seed}:{u}" for u in after["user"]]
        for method, (hit, hit_before, users) in pooled.items():
            d = paired_difference(np.asarray(hit), np.asarray(hit_before), users)
            interval = f" ± {100 * half:.1f}" if (half := half_width(d, "difference_se")) is not None else ""
            columns.setdefault(bench, {})[method] = f"{100 * d['difference']:+.1f}{interval}"
    if not columns:
        return ""
    return (f"\nChosen questions against the file's order, the same model on the same rows (unseen users, k = {k}): "
            "the difference in points, ± a 95% interval: standard errors clustered by user, times Student's t on "
            "C − 1 degrees of freedom for C users.\n\n" + _method_table(columns, order))
