"""The evaluation protocol of DESIGN.md, the same for every method.

- seen users: held-out rows without a ``role`` scored with the user's learned vector (population
  vector where the model keeps no user ids, or the user is unknown to it);
- unseen users, few-shot: for each k, adapt on the user's first k ``context`` rows, score their
  ``query`` rows (k = 0 is the model's prior user: the population, but for GPM's ``training-users``); with
  ``active``, on the k context rows the model itself asks first, one at a time by expected information gain
  (:func:`~pluralign.methods.active.question_order`); a user with fewer than k context rows adapts on all of
  them (none: the model's prior user) and stays in the k-shot rows, so every k scores the same rows
  (:func:`short_contexts` names such users);
- groups and the worst group, controversial pairs (the ``controversial`` column, else pairs that users
  label both ways), oracle accuracy on the same rows, and the fit cost.

Rows without a ``group`` are left out of the groups (``rows_without_group`` counts them), unless none of the
rows the groups are read on has one: then the one group "all" is all of them. Seen rows without a ``user_id``
are scored with the population model (``rows_without_user`` counts them), and counted as no user; so are seen
rows of a user id the fit never met (``rows_unknown_user``): only ``context`` rows can adapt a new user.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Sequence

import numpy as np
import torch

from pluralign.data.contract import PreferenceSet
from pluralign.data.features import PairFeatures
from pluralign.data.readers import read_preferences
from pluralign.eval.metrics import half_width, preference_metrics, round_floats

DEFAULT_SHOTS = (0, 1, 2, 4, 8, 16)

log = logging.getLogger("pluralign")


def controversial_mask(data: PreferenceSet) -> np.ndarray:
    """The ``controversial`` column where every row has it; else True for pairs labelled both ways by the users
    (a column on only some rows is ignored, with a warning)."""
    flags = data.column("controversial")
    if all(f is not None for f in flags):
        return np.asarray(flags, dtype=bool)
    if flagged := sum(f is not None for f in flags):
        log.warning("%s: the controversial column is set on %d of %d rows only, so it is ignored; controversial "
                    "pairs are those the users label both ways", data.source or "the data", flagged, len(flags))
    directions: dict[tuple, set] = defaultdict(set)
    keys = []
    for row in data.rows:
        a, b = row.get("chosen", str(row.get("chosen_embedding"))), row.get("rejected", str(row.get("rejected_embedding")))
        key = (row.get("prompt", ""), min(a, b), max(a, b))
        directions[key].add(a < b)
        keys.append(key)
    return np.asarray([len(directions[k]) > 1 for k in keys], dtype=bool)


def unknown_users(model, data: PreferenceSet) -> list[str]:
    """User ids of rows without a role that the model was not trained on: they are scored with the
    population model, since only rows marked ``context`` can adapt a new user."""
    if not model.uses_user_ids:
        return []
    known = set(model.user_ids_)
    return sorted({u for u, r in zip(data.column("user_id"), data.column("role"))
                   if r is None and u is not None and u not in known})


def unseen_rows(data: PreferenceSet) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Each unseen user's ``context`` row indices and ``query`` row indices, in file order."""
    contexts: dict[str, list[int]] = defaultdict(list)
    queries: dict[str, list[int]] = defaultdict(list)
    for i, (role, user) in enumerate(zip(data.column("role"), data.column("user_id"))):
        if role == "context":
            contexts[user].append(i)
        elif role == "query":
            queries[user].append(i)
    return contexts, queries


def short_contexts(data: PreferenceSet, shots: int) -> dict[str, int]:
    """{user: number of context rows} for the unseen users with query rows and fewer than ``shots`` context rows:
    at k = ``shots`` they adapt on all they have (none: the population model, as at k = 0)."""
    contexts, queries = unseen_rows(data)
    return {user: len(contexts.get(user, [])) for user in queries if len(contexts.get(user, [])) < shots}


def named(users: Sequence[str]) -> str:
    return ", ".join(users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "")


def warn_short_contexts(data: PreferenceSet, shots: Sequence[int]) -> None:
    """A k above an unseen user's context size scores what the user's whole context scores (none: the population
    model), and their query rows stay in the k-shot rows: say so once, naming the users."""
    contexts, queries = unseen_rows(data)
    if not queries or not shots or max(shots) == 0:
        return
    source = data.source or "the data"
    largest = max(len(contexts.get(user, [])) for user in queries)
    if none := sorted(short_contexts(data, 1)):
        log.warning("%s: %d unseen user(s) with query rows have no context rows (%s); they are scored with the "
                    "population model at every k", source, len(none), named(none))
    if largest and (over := [k for k in shots if k > largest]):
        log.warning("shots %s: the largest context in %s is %d pair(s); at a larger k every unseen user adapts "
                    "on all of theirs", ",".join(map(str, over)), source, largest)
    k = min(max(shots), largest)  # above the largest context, the warning above says it of every user
    if short := sorted((u, n) for u, n in short_contexts(data, k).items() if n):
        log.warning("shots %d: %d unseen user(s) in %s have fewer than %d context pairs (%s); at a k above "
                    "theirs they adapt on all of them", max(shots), len(short), source, k,
                    named([f"{u} has {n}" for u, n in short]))


def chosen_contexts(model, data: PreferenceSet, shots: int, features: PairFeatures | None = None,
                    progress: bool = False) -> dict[str, list[int]]:
    """Each unseen user's context rows in the order the model asks them (at most ``shots``): the rows are the
    pool of questions and their labels the user's answers (:func:`~pluralign.methods.active.question_order`).
    ``progress``: a bar over the users (asking is one posterior update per question: seconds a user)."""
    from tqdm.auto import tqdm

    from pluralign.methods.active import question_order

    features = features if features is not None else model.featurize(data)
    contexts, queries = unseen_rows(data)
    users = tqdm(queries, desc="choosing questions", unit="user", disable=not progress or len(queries) < 2)
    return {user: [contexts[user][j] for j in question_order(model, features[contexts[user]], shots)]
            if contexts[user] else [] for user in users}


def score_rows(model, data: PreferenceSet, shots: int, features: PairFeatures | None = None,
               include_seen: bool = True, order: dict[str, list[int]] | None = None,
               active: bool = False, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(row indices, P(chosen ≻ rejected)) for every row that is not a ``context`` row (only the
    ``query`` rows when not ``include_seen``).

    Unseen users (rows with a role) are adapted on their first ``shots`` context rows: in file order, or in
    ``order`` (each user's context rows in the order to use them), or, with ``active`` and no ``order``, in the
    order the model asks them (:func:`chosen_contexts`, on the same features). A user with fewer context rows
    adapts on all of theirs, and one with none gets the population model (:func:`short_contexts` names them);
    their query rows are scored all the same, so every k scores the same rows. ``progress``: a bar while the
    questions are chosen.
    """
    features = features if features is not None else model.featurize(data)
    if active and shots and order is None:  # no questions to choose at k = 0
        order = chosen_contexts(model, data, shots, features, progress)
    roles = data.column("role")
    users = data.column("user_id")
    known = set(model.user_ids_)
    seen = [i for i, r in enumerate(roles) if r is None] if include_seen else []
    index_parts, prob_parts = [], []
    if seen:
        seen_users = [users[i] if users[i] in known else None for i in seen]
        logits = model.logits_features(features[seen], model.user_matrix(seen_users, len(seen)))
        index_parts.append(np.asarray(seen))
        prob_parts.append(torch.sigmoid(logits).numpy())
    contexts, queries = unseen_rows(data)
    if order is not None:
        contexts = defaultdict(list, order)
    for user, rows in queries.items():
        context = contexts[user][:shots] if shots else []
        vector = model.infer_user(features[context] if context else None)
        logits = model.logits_features(features[rows], vector.mean.expand(len(rows), -1))
        index_parts.append(np.asarray(rows))
        prob_parts.append(torch.sigmoid(logits).numpy())
    if not index_parts:
        return np.zeros(0, dtype=int), np.zeros(0)
    indices = np.concatenate(index_parts)
    order = np.argsort(indices, kind="stable")
    return indices[order], np.concatenate(prob_parts)[order]


def _metrics(rows: np.ndarray, probs: np.ndarray, oracle: list, users: list | None = None) -> dict:
    return preference_metrics(probs, [oracle[i] for i in rows], None if users is None else [users[i] for i in rows])


def checked_shots(shots: list) -> list:
    """``shots``, refused unless every one is a non-negative integer (a negative k would slice from the end)."""
    if any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0 for k in shots):
        raise ValueError(f"shots={shots}: shot counts must be non-negative integers")
    return shots


def evaluate(model, data: PreferenceSet, shots: Sequence[int] = DEFAULT_SHOTS,
             query_probs: dict | None = None, active: bool = False, warn_short: bool = True,
             progress: bool = False) -> dict:
    """Every figure of the protocol as one JSON-ready dict (keys: seen, unseen, groups, worst_group,
    controversial, fit, predict). A dict passed as ``query_probs`` receives, for each k, the unseen users'
    query rows and their P(chosen ≻ rejected), so a caller needs not adapt every user again. ``active``: each
    unseen user's k context rows are the first k the model asks (:func:`chosen_contexts`), not the first k
    in the file; the report then holds ``"questions": "chosen"`` (not for a model without a posterior over users,
    which keeps the file's order). ``data``: anything ``fit`` reads.
    An unseen user with fewer than k context rows adapts on all they have: that k's entry then says so
    (``users_short_of_k``, and ``context_pairs``, the mean context size the users adapted on), and, with
    ``warn_short``, the log names them (:func:`warn_short_contexts`). ``progress``: a bar while the questions are
    chosen."""
    data = read_preferences(data, split="test")
    shots = checked_shots([shots] if isinstance(shots, int) else list(shots))
    if warn_short:
        warn_short_contexts(data, shots)
    features = model.featurize(data)
    oracle = data.column("oracle_p")
    groups = np.asarray(data.column("group"), dtype=object)
    contested = controversial_mask(data)
    roles = np.asarray([r or "" for r in data.column("role")], dtype=object)
    users = data.column("user_id")

    start = time.perf_counter()
    rows, probs = score_rows(model, data, 0, features)
    seconds = time.perf_counter() - start
    is_seen = roles[rows] == ""
    report: dict = {"seen": _metrics(rows[is_seen], probs[is_seen], oracle)}
    if without_user := sum(users[i] is None for i in rows[is_seen]):
        report["rows_without_user"] = without_user
    if model.uses_user_ids:  # a seen row of a user the fit never met gets the population model, as one without a user
        known = set(model.user_ids_)
        if unknown := sum(users[i] is not None and users[i] not in known for i in rows[is_seen]):
            report["rows_unknown_user"] = unknown
    report["controversial"] = _metrics(rows[is_seen & contested[rows]], probs[is_seen & contested[rows]], oracle)

    report["unseen"] = {}
    by_k: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if (roles == "query").any():
        contexts, queries = unseen_rows(data)
        # greedy questions: the first k of the longest order are the order for k, so it is chosen once
        order = chosen_contexts(model, data, max(shots), features, progress) if active and shots else None
        for k in shots:
            # seen rows do not depend on k: only the queries are scored again
            k_rows, k_probs = (score_rows(model, data, k, features, include_seen=False, order=order) if k
                               else (rows, probs))
            query = roles[k_rows] == "query"
            by_k[k] = (k_rows[query], k_probs[query])
            if query_probs is not None:
                query_probs[k] = by_k[k]
            entry = _metrics(*by_k[k], oracle, users)  # with the gap's standard error over unseen users
            hard = contested[by_k[k][0]]
            entry["controversial"] = _metrics(by_k[k][0][hard], by_k[k][1][hard], oracle, users)
            if short := short_contexts(data, k):  # "k = 16" on users of 4 context pairs is a 4-shot figure
                sizes = [min(k, len(contexts.get(u, []))) for u in queries]
                entry.update(users_short_of_k=len(short), context_pairs=round(float(np.mean(sizes)), 2))
            report["unseen"][str(k)] = entry

    # groups on seen users' held-out rows; where there are none, on unseen users' queries at k = 8
    if is_seen.any():
        g_rows, g_probs = rows[is_seen], probs[is_seen]
    else:
        g_rows, g_probs = by_k.get(8, next(iter(by_k.values()), (rows, probs)))
    named = np.asarray([g is not None for g in groups[g_rows]], dtype=bool)
    if named.any():  # rows without a group are no group: not a made-up one, which a real "all" would merge with
        if without_group := int((~named).sum()):
            report["rows_without_group"] = without_group
        g_rows, g_probs = g_rows[named], g_probs[named]
    else:  # no group labels at all: one group, every row
        groups = np.full(len(groups), "all", dtype=object)
    report["groups"] = {
        str(g): _metrics(g_rows[groups[g_rows] == g], g_probs[groups[g_rows] == g], oracle)
        for g in sorted(set(groups[g_rows]))
    }
    if report["groups"]:
        worst = min(report["groups"], key=lambda g: report["groups"][g].get("accuracy", 1.0))
        report["worst_group"] = {"group": worst, **report["groups"][worst]}
    if active and model.has_active_queries:  # BT has no posterior to ask by: its rows stay the file's first k
        report["questions"] = "chosen"
    report["fit"] = dict(model.fit_stats_)
    report["predict"] = {"pairs_per_second": round(len(rows) / max(seconds, 1e-9), 1)}
    return round_floats(report)


def summary_lines(report: dict) -> list[str]:
    """The report of :func:`evaluate` as a short table for the terminal: rows scored, accuracy, calibration
    error, the oracle's accuracy on the same rows and the gap in points (± its 95% interval over unseen
    users, where known). Rows scored without a user and rows left out of the groups get a line with their count."""
    def line(label: str, m: dict) -> str:
        if "note" in m:
            return f"{label:<{width}} {m['n']:>6}  {m['note']}"
        if "accuracy" not in m:
            return f"{label:<{width}} {m.get('n', 0):>6}  no rows"
        oracle = f"{m['oracle_accuracy']:.3f}" if "oracle_accuracy" in m else "–"
        gap = f"{100 * m['gap_to_oracle']:.1f}" if "gap_to_oracle" in m else "–"
        if (half := half_width(m, "gap_to_oracle_se")) is not None:
            gap += f" ± {100 * half:.1f}"
        ece = f"{m['calibration_error']:.3f}" if "calibration_error" in m else "–"
        return f"{label:<{width}} {m['n']:>6}  {m['accuracy']:<8.3f} {ece:<5}  {oracle:<6}  {gap}"

    worst = report.get("worst_group", {}).get("group")
    without_user, without_group = report.get("rows_without_user", 0), report.get("rows_without_group", 0)
    if without_user and without_user == report["seen"].get("n"):  # no seen row has a user: no "seen users"
        rows = [("rows without a user (population)", report["seen"])]
    else:
        rows = [("seen users", report["seen"])]
        rows += [("  of them without a user", {"n": without_user, "note": "scored with the population model"})
                 ] if without_user else []
        if unknown := report.get("rows_unknown_user", 0):
            rows += [("  of them unknown to the run", {"n": unknown, "note": "scored with the population model"})]
    rows += [("  controversial pairs", report["controversial"])]
    if len(report.get("groups", {})) > 1 or without_group:
        rows += [(f"  group {g}" + (" (worst)" if g == worst else ""), m) for g, m in report["groups"].items()]
        rows += [("  without a group", {"n": without_group, "note": "not in the groups"})] if without_group else []
    asked = " chosen" if report.get("questions") == "chosen" else ""
    rows += [(f"unseen users, {k}{asked} shot{'' if k == '1' else 's'}", m) for k, m in report.get("unseen", {}).items()]
    width = max(24, *(len(label) for label, _ in rows))  # long group names and "chosen shots" stay aligned
    header = f"{'':<{width}} {'rows':>6}  {'accuracy':<8} {'ECE':<5}  {'oracle':<6}  gap, points (± 95%)"
    return [header, *(line(label, m) for label, m in rows)] + diagnostic_lines(report.get("fit", {}))


def diagnostic_lines(fit_stats: dict) -> list[str]:
    """What a method reports of its own fit, one line each: VPL's posterior-collapse check, MiCRo's head
    specialization (the head that tracks each true attribute best), MaxMin's EM and, where the data names
    each user's group, how well EM found them."""
    lines = []
    if collapse := fit_stats.get("collapse"):
        state = "collapsed" if collapse["collapsed"] else "not collapsed"
        if "decoder_spread" in collapse:  # runs saved before 2026-11-27 lack it
            state += (", but the decoder ignores z" if collapse["decoder_ignores_z"] and not collapse["collapsed"]
                      else "") + f"; users' P(a ≻ b) differ by {collapse['decoder_spread']:.3f} (sd)"
        lines.append(f"latent: {collapse['active_units_kl']} of {collapse['latent_dim']} units active, KL "
                     f"{collapse['kl_total']:.2f} nats ({state})")
    if heads := fit_stats.get("head_specialization"):
        best = [f"{a} → head {h} (r = {heads['correlation'][h][j]:+.2f})"
                for j, (a, h) in enumerate(heads["best_head"].items())]
        lines.append("heads: " + ", ".join(best))
    if "em_iterations" in fit_stats:
        n = fit_stats["em_iterations"]
        lines.append(f"EM: {n} iteration{'' if n == 1 else 's'}, "
                     f"{'converged' if fit_stats['em_converged'] else 'not converged'}; group sizes "
                     f"{', '.join(f'{s:g}' for s in fit_stats['group_sizes'])}; BIC {fit_stats['bic']:,.1f}")
    if recovery := fit_stats.get("group_recovery"):
        found = "; ".join(f"{t} → " + ", ".join(f"{n} in {g}" for g, n in by_group.items())
                          for t, by_group in recovery["table"].items())
        lines.append(f"groups vs the data's: adjusted Rand index {recovery['adjusted_rand']:.2f} over "
                     f"{recovery['users']} users ({found})")
    return lines
