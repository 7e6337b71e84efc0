"""Where the users sit: the learned user vectors on one map, coloured by each user's known group.

Seen users are the model's own vectors (``known_user``); unseen users are inferred from their first k
context pairs (``infer_user``), as the few-shot protocol does. The map shows the first two principal
components of all vectors together. A method that merges two user types puts their colours on one spot,
which no accuracy figure shows as directly (``models/vpl.md``, "A decoder linear in z").

``type_recovery`` puts a number on it: the share of unseen users whose inferred vector lies nearest (in
Euclidean distance) to the mean vector of the seen users of their own group.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from pluralign.data import PreferenceSet, read_preferences


def user_groups(data: PreferenceSet) -> dict[str, tuple[str | None, bool]]:
    """{user_id: (most common group of their rows, seen?)}; a user is unseen where their rows have a role."""
    groups: dict[str, Counter] = defaultdict(Counter)
    unseen: set[str] = set()
    for row in data.rows:
        user = row.get("user_id")
        if user is None:
            continue
        groups[user][row.get("group")] += 1
        if row.get("role"):
            unseen.add(user)
    return {u: (c.most_common(1)[0][0], u not in unseen) for u, c in groups.items()}


def user_vectors(model, data: PreferenceSet, shots: int = 8) -> list[dict]:
    """One record per user of ``data``: ``user_id``, ``group``, ``seen`` and ``vector`` (a list of floats).

    Seen users the model was trained on get their learned vector; unseen users the vector inferred from
    their first ``shots`` context rows. Users of neither kind (seen by the data, unknown to the model)
    are left out."""
    model.check_fitted()
    data = read_preferences(data, split="test")  # a path too, as evaluate takes one
    if model.network_.user_dim == 0:
        raise ValueError(f"{model.name}: this method has no user vectors (one reward for everyone)")
    features = model.featurize(data)
    contexts: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(data.rows):
        if row.get("role") == "context":
            contexts[row["user_id"]].append(i)
    known = set(model.user_ids_) if model.uses_user_ids else set()
    records = []
    for user, (group, seen) in user_groups(data).items():
        if seen and user in known:
            vector = model.known_user(user).mean
        elif not seen:
            vector = model.infer_user(features[contexts[user][:shots]] if shots else None).mean
        else:
            continue
        records.append({"user_id": user, "group": group, "seen": seen, "vector": vector.float().tolist()})
    return records


def type_recovery(records: list[dict]) -> float | None:
    """Share of unseen users nearest to their own group's centroid of seen users (None without groups, and where
    the unseen users share one vector, as at k = 0: one nearest centroid for all says nothing of the method)."""
    centroids: dict[str, list] = defaultdict(list)
    for r in records:
        if r["seen"] and r["group"] is not None:
            centroids[r["group"]].append(r["vector"])
    if len(centroids) < 2:
        return None
    names = list(centroids)
    centres = np.array([np.mean(centroids[g], axis=0) for g in names])
    unseen = [r for r in records if not r["seen"] and r["group"] in centroids]
    if not unseen or (len(unseen) > 1 and len({tuple(r["vector"]) for r in unseen}) == 1):
        return None
    nearest = [names[int(np.argmin(((centres - np.array(r["vector"])) ** 2).sum(1)))] for r in unseen]
    return float(np.mean([n == r["group"] for n, r in zip(nearest, unseen)]))


def plot_user_map(records: list[dict], path: str | Path, title: str = "") -> Path:
    """Scatter of the first two principal components: circles for seen users, crosses for unseen ones."""
    from pluralign.eval.plots import plt, save_figure  # sets the Agg backend: no screen on servers and CI

    if not records:
        raise ValueError("no users to draw: the data has no user ids the model knows, and no unseen users")
    vectors = np.array([r["vector"] for r in records], dtype=float)
    centred = vectors - vectors.mean(0)
    _, _, basis = np.linalg.svd(centred, full_matrices=False)
    # one user, or one-dimensional vectors, give fewer than two components: the missing ones are 0 (a line, a point)
    points = np.zeros((len(centred), 2))
    projected = centred @ basis[:2].T
    points[:, :projected.shape[1]] = projected
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    groups = list(dict.fromkeys(str(r["group"]) for r in records))
    colours = {g: plt.get_cmap("tab10")(i % 10) for i, g in enumerate(groups)}
    for seen, marker, label in ((True, "o", "seen"), (False, "x", "unseen")):
        for g in groups:
            keep = [i for i, r in enumerate(records) if r["seen"] == seen and str(r["group"]) == g]
            if keep:
                ax.scatter(points[keep, 0], points[keep, 1], marker=marker, color=colours[g], s=36,
                           label=f"{g} ({label})")
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)
