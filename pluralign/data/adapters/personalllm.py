"""PersonalLLM (Zollo et al. 2025; ``namkoong-lab/PersonalLLM``) with simulated users.

Format read: the dataset's Parquet files (``data/train-00000-of-00001.parquet``; JSON lines with the same
columns also work), one prompt per row: ``prompt``, ``response_1`` ... ``response_8``, and one reward
score per response and reward model in ``response_{i}_{model}`` (e.g. ``response_3_gemma_7b``; the
``{model}_response_{i}`` spelling is accepted too). Score columns are found by name; non-numeric columns
with the same pattern (e.g. the generating model's name) are ignored.

Users, as in the PersonalLLM paper: a user is a weighting over the reward models; their reward for a
response is the weighted sum of its scores. Pass named users (``users={"alice": {"gemma_2b": 1.0}}``)
or sample ``n_users`` weightings from a symmetric Dirichlet(``alpha``) with ``seed``. For each user
and pair of responses, chosen = the response with the higher weighted score (scores equal up to float
rounding: a tie, skipped and counted), margin = the score difference, and the attributes are the per-model scores.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from pluralign.data.adapters._common import (
    SourcedRows, field, finish, input_files, is_missing, number, pair_problem, read_records,
)
from pluralign.data.contract import DataError, PreferenceSet, fail

RESPONSE = re.compile(r"^response_(\d+)$")
SCORE = (re.compile(r"^response_(\d+)_(.+)$"), re.compile(r"^(.+)_response_(\d+)$"))


def from_personalllm(
    path: str | Path,
    users: Mapping[str, Mapping[str, float] | Sequence[float]] | None = None,
    n_users: int = 10,
    alpha: float = 1.0,
    seed: int = 0,
    pairs_per_prompt: int | None = None,
    reward_models: Sequence[str] | None = None,
) -> PreferenceSet:
    """Read PersonalLLM (a file or a folder of files) into pairs labelled by simulated users.

    ``pairs_per_prompt``: per user and prompt, sample this many response pairs (with ``seed``); None
    keeps every pair. ``reward_models``: which score columns to use (default: all found in the data).
    """
    if pairs_per_prompt is not None and pairs_per_prompt < 1:
        raise ValueError(f"--set pairs_per_prompt={pairs_per_prompt}: must be at least 1 (or null: every pair)")
    if seed < 0:
        raise ValueError(f"--set seed={seed}: must be a non-negative integer")
    if reward_models is not None and not reward_models:
        raise ValueError("--set reward_models=[]: name at least one score column (or null: every one found)")
    records = [(str(file), i, r) for file in input_files(Path(path)) for i, r in read_records(file)]
    if not records:
        raise DataError(f"{path}: no rows")
    models = list(reward_models) if reward_models is not None else _reward_models(records[0][2], *records[0][:2])
    weights = _user_weights(users, models, n_users, alpha, seed, str(path))
    rng = np.random.default_rng(seed)
    rows = SourcedRows()
    dropped: Counter = Counter()
    for source, i, record in records:
        rows.at(source, i)
        prompt = field(record, "prompt", source, i, str)
        responses, scores = _responses(record, models, source, i, dropped)
        for user_id, w in weights.items():
            for a, b in _pairs(len(responses), pairs_per_prompt, rng):
                row = _row(prompt, (responses[a], scores[a]), (responses[b], scores[b]), models, w, dropped)
                if row is not None:
                    rows.append({**row, "user_id": user_id})
    users_meta = {user: dict(zip(models, map(float, w))) for user, w in weights.items()}
    return finish(rows, path, dropped, "personalllm", reward_models=models, users=users_meta,
                  alpha=None if users else alpha, seed=seed)


def _reward_models(record: Any, source: str, i: int) -> list[str]:
    """Reward-model names with a score column for every response of the first row: a number, or a null, which
    the row's own check then names (a null in row 1 once dropped the whole model without a word)."""
    if not isinstance(record, dict):
        raise fail(source, i, None, f"expected a record (mapping), got {type(record).__name__}")
    found: dict[str, set[int]] = {}
    responses = set(_response_numbers(record))  # Parquet's absent responses are nulls, their scores too
    for column, value in record.items():
        for pattern, (n, m) in zip(SCORE, ((1, 2), (2, 1))):
            match = pattern.match(column)
            if (match and int(match.group(n)) in responses
                    and (is_missing(value) or isinstance(value, (int, float)) and not isinstance(value, bool))):
                found.setdefault(match.group(m), set()).add(int(match.group(n)))
    models = sorted(name for name, numbers in found.items() if numbers == responses)
    if not models:
        raise fail(source, i, "response_1_<model>", "no reward-model score columns found")
    return models


def _response_numbers(record: dict) -> list[int]:
    """The ``n`` of every non-empty ``response_{n}`` (Parquet stores absent responses as nulls)."""
    return sorted(int(m.group(1)) for m in map(RESPONSE.match, record) if m and not is_missing(record[m.group(0)]))


def _responses(record: Any, models: list[str], source: str, i: int, dropped: Counter) -> tuple[list[str], np.ndarray]:
    """The response texts and their (responses x reward models) score matrix."""
    numbers = _response_numbers(record)
    dropped["missing_response"] += sum(1 for column in record if RESPONSE.match(column)) - len(numbers)
    if len(numbers) < 2:
        raise fail(source, i, "response_2", "missing: need at least two responses")
    texts = [field(record, f"response_{n}", source, i, str) for n in numbers]
    scores = np.array([[number(_score(record, n, m, source, i), source, i, f"response_{n}_{m}") for m in models]
                       for n in numbers])
    return texts, scores


def _score(record: dict, n: int, model: str, source: str, i: int) -> Any:
    for column in (f"response_{n}_{model}", f"{model}_response_{n}"):
        if column in record and not is_missing(record[column]):
            return record[column]
    raise fail(source, i, f"response_{n}_{model}", "missing reward-model score")


def _user_weights(users: Mapping[str, Any] | None, models: list[str], n_users: int, alpha: float, seed: int,
                  source: str) -> dict[str, np.ndarray]:
    if users is None:
        if n_users < 1 or not (0 < alpha < float("inf")):  # NaN fails the comparison too
            raise DataError(f"{source}: need n_users >= 1 and a finite alpha > 0, got n_users={n_users}, "
                            f"alpha={alpha}")
        sampled = np.random.default_rng(seed).dirichlet([alpha] * len(models), size=n_users)
        return {f"user_{k}": w for k, w in enumerate(sampled)}
    if not users:
        raise DataError(f"{source}: users is empty; give at least one user's weights, or None to sample n_users")
    weights = {}
    for name, spec in users.items():
        if isinstance(spec, Mapping):
            unknown = set(spec) - set(models)
            if unknown:
                raise DataError(f"{source}: user {name!r} weights unknown reward models {sorted(unknown)} "
                                f"(known: {models})")
            spec = [spec.get(m, 0.0) for m in models]
        if isinstance(spec, (str, bytes)) or not isinstance(spec, Sequence):
            raise DataError(f"{source}: user {name!r}: expected a list of {len(models)} weights or a mapping of reward "
                            f"model to weight, got {spec!r}")
        if len(spec) != len(models):
            raise DataError(f"{source}: user {name!r} has {len(spec)} weights for {len(models)} reward models")
        if bad := [w for w in spec if isinstance(w, bool) or not isinstance(w, (int, float))]:
            raise DataError(f"{source}: user {name!r}: weight {bad[0]!r} is not a number")
        weights[str(name)] = np.asarray(spec, dtype=float)
        if not np.isfinite(weights[str(name)]).all():
            raise DataError(f"{source}: user {name!r} has a weight that is not a finite number ({list(spec)})")
    return weights


def _pairs(n: int, k: int | None, rng: np.random.Generator) -> list[tuple[int, int]]:
    pairs = list(itertools.combinations(range(n), 2))
    if k is None or k >= len(pairs):
        return pairs
    return [pairs[j] for j in sorted(rng.choice(len(pairs), size=k, replace=False))]


def _row(prompt: str, a: tuple[str, np.ndarray], b: tuple[str, np.ndarray], models: list[str], w: np.ndarray,
         dropped: Counter) -> dict | None:
    reward_a, reward_b = float(a[1] @ w), float(b[1] @ w)
    if math.isclose(reward_a, reward_b, rel_tol=1e-9, abs_tol=1e-12):  # equal up to the sums' rounding
        dropped["ties"] += 1
        return None
    chosen, rejected = (a, b) if reward_a > reward_b else (b, a)
    problem = pair_problem(chosen[0], rejected[0])
    if problem:
        dropped[problem] += 1
        return None
    return {
        "prompt": prompt, "chosen": chosen[0], "rejected": rejected[0], "margin": abs(reward_a - reward_b),
        "chosen_attributes": dict(zip(models, map(float, chosen[1]))),
        "rejected_attributes": dict(zip(models, map(float, rejected[1]))),
    }
