"""UltraFeedback with per-attribute ratings (Cui et al. 2023; ``openbmb/UltraFeedback``), as UltraFeedback-P.

Format read: the original JSON lines / Parquet, one prompt per record: ``instruction`` and
``completions``, a list of {``model``, ``response``, ``annotations``}, where ``annotations`` maps each
of ``helpfulness``, ``honesty``, ``instruction_following``, ``truthfulness`` to {``Rating``, ...}
(a string ``"1"``-``"5"``, or ``"N/A"``).

UltraFeedback-P (the VPL recipe, Poddar et al. 2024): a *user* is one attribute. For each attribute and
each pair of completions of a prompt, chosen = the completion rated higher on that attribute, margin =
the rating difference; equal ratings are ties, skipped and counted. Every row carries all four ratings
of both responses as ``chosen_attributes``/``rejected_attributes``, and ``controversial`` says whether
the attributes disagree on the pair (some prefer one response, some the other); ``controversial_only``
keeps only those pairs.

Also read: the binarized flat format (``HuggingFaceH4/ultrafeedback_binarized``: ``prompt``,
``chosen``/``rejected`` chat messages, ``score_chosen``/``score_rejected``), one row per record, no user.
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from pluralign.data.adapters._common import (
    SourcedRows, field, finish, input_files, is_missing, number, pair_problem, read_records,
)
from pluralign.data.contract import DataError, PreferenceSet, fail

ATTRIBUTES = ("helpfulness", "honesty", "instruction_following", "truthfulness")


def from_ultrafeedback(
    path: str | Path,
    attributes: Sequence[str] = ATTRIBUTES,
    controversial_only: bool = False,
) -> PreferenceSet:
    """Read UltraFeedback (a file or a folder of files) into UltraFeedback-P pairs, one user per attribute."""
    unknown = set(attributes) - set(ATTRIBUTES)
    if unknown or not attributes:
        raise DataError(f"{path}: attributes must be a non-empty subset of {ATTRIBUTES}, got {list(attributes)}")
    rows = SourcedRows()
    dropped: Counter = Counter()
    for file in input_files(Path(path)):
        source = str(file)
        for i, record in read_records(file):
            rows.at(source, i)
            if isinstance(record, dict) and "completions" not in record and "chosen" in record:
                rows.extend(_binarized(record, source, i, dropped))
            else:
                rows.extend(_per_attribute(record, source, i, tuple(attributes), controversial_only, dropped))
    return finish(rows, path, dropped, "ultrafeedback", attributes=list(attributes),
                  controversial_only=controversial_only)


def _per_attribute(record: Any, source: str, i: int, attributes: tuple[str, ...], controversial_only: bool,
                   dropped: Counter) -> list[dict]:
    prompt = field(record, "instruction", source, i, str)
    completions = field(record, "completions", source, i, list)
    responses = [field(c, "response", source, i, str, f"completions[{k}].response") for k, c in enumerate(completions)]
    ratings = [_ratings(c, source, i, k, dropped) for k, c in enumerate(completions)]
    if len(completions) < 2:
        dropped["prompts_with_one_completion" if completions else "prompts_without_completions"] += 1
    rows = []
    for a, b in itertools.combinations(range(len(completions)), 2):
        problem = pair_problem(responses[a], responses[b])
        if problem:
            dropped[problem] += len(attributes)
            continue
        pair_rows = [_attribute_row(prompt, (responses[a], ratings[a]), (responses[b], ratings[b]), name, dropped)
                     for name in attributes]
        pair_rows = [row for row in pair_rows if row is not None]
        controversial = len({row["chosen"] for row in pair_rows}) > 1  # the attribute-users disagree
        if controversial_only and not controversial:
            dropped["uncontroversial"] += len(pair_rows)
            continue
        rows.extend({**row, "controversial": controversial} for row in pair_rows)
    return rows


def _attribute_row(prompt: str, a: tuple[str, dict], b: tuple[str, dict], name: str, dropped: Counter) -> dict | None:
    (text_a, ratings_a), (text_b, ratings_b) = a, b
    if name not in ratings_a or name not in ratings_b:
        dropped["missing_rating"] += 1
        return None
    if ratings_a[name] == ratings_b[name]:
        dropped["ties"] += 1
        return None
    if ratings_a[name] < ratings_b[name]:
        (text_a, ratings_a), (text_b, ratings_b) = b, a
    return {
        "prompt": prompt, "chosen": text_a, "rejected": text_b, "user_id": name,
        "margin": ratings_a[name] - ratings_b[name],
        "chosen_attributes": dict(ratings_a), "rejected_attributes": dict(ratings_b),
    }


def _ratings(completion: dict, source: str, i: int, k: int, dropped: Counter) -> dict[str, float]:
    """The completion's numeric ratings by attribute; ``"N/A"`` and absent ones are left out."""
    annotations = field(completion, "annotations", source, i, dict, f"completions[{k}].annotations")
    ratings = {}
    for name in ATTRIBUTES:
        annotation = annotations.get(name)
        if isinstance(annotation, list):  # some mirrors store a one-element list per aspect
            annotation = annotation[0] if annotation else None
        rating = annotation.get("Rating") if isinstance(annotation, dict) else None
        if is_missing(rating) or rating == "N/A":
            continue
        ratings[name] = number(rating, source, i, f"completions[{k}].annotations.{name}.Rating")
    return ratings


def _binarized(record: dict, source: str, i: int, dropped: Counter) -> list[dict]:
    chosen, rejected = (_last_reply(field(record, key, source, i), source, i, key) for key in ("chosen", "rejected"))
    scores = [record.get(key) for key in ("score_chosen", "score_rejected")]
    row: dict[str, Any] = {"prompt": field(record, "prompt", source, i, str), "chosen": chosen, "rejected": rejected}
    if not any(is_missing(s) for s in scores):
        row["margin"] = number(scores[0], source, i, "score_chosen") - number(scores[1], source, i, "score_rejected")
        if row["margin"] == 0:
            dropped["ties"] += 1
            return []
    problem = pair_problem(chosen, rejected)
    if problem:
        dropped[problem] += 1
        return []
    return [row]


def _last_reply(value: Any, source: str, i: int, column: str) -> str:
    """The binarized format stores [user turn, assistant turn]; the response is the last message, the assistant's
    (a chat that ends with the user's turn has no response: its last message is the prompt)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], dict) and isinstance(value[-1].get("content"), str):
        if value[-1].get("role", "assistant") != "assistant":
            raise fail(source, i, column, f"the chat ends with a {value[-1]['role']!r} message, not the assistant's "
                                          "response")
        return value[-1]["content"]
    raise fail(source, i, column, "expected a string or chat messages ending with the response")
