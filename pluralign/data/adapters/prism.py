"""PRISM (Kirk et al. 2024; ``HannahRoseKirk/prism-alignment``) onto the preference contract.

Format read: ``conversations.jsonl``, one conversation per line, with ``conversation_id``, ``user_id``,
``conversation_type`` and ``conversation_history``: a list of utterances, each with ``turn`` (0-based),
``role`` (``"user"`` or ``"model"``), ``content``, and for model utterances ``model_provider``,
``model_name``, ``score`` (the participant's 1-100 rating), ``if_chosen`` and ``within_turn_id``.
Optionally ``survey.jsonl`` (one participant per line, keyed by ``user_id``) supplies a ``group``.

Pairs: in every turn, chosen = the model response with ``if_chosen``; rejected = each other response
of that turn; margin = chosen ``score`` minus rejected ``score``, negative where the participant chose the
response they rated lower (kept as it is, counted in ``meta["chosen_rated_lower"]`` and warned: TRL's margin
loss, -log σ(r_c - r_r - margin), would read such a pair as nearly a tie). The prompt is the conversation so far
as chat messages (earlier user messages and the *chosen* responses, which is what the participant
continued from) ending with this turn's user message.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from pluralign.data.adapters._common import (
    LOG, SourcedRows, field, finish, is_missing, number, pair_problem, read_records,
)
from pluralign.data.contract import DataError, PreferenceSet, fail

HISTORY = "conversation_history"


def from_prism(
    path: str | Path,
    survey: str | Path | None = None,
    group_by: str | None = None,
    drop_ties: bool = False,
) -> PreferenceSet:
    """Read PRISM conversations into chosen/rejected pairs, one user per participant.

    ``path``: ``conversations.jsonl`` or the dataset folder holding it (and ``survey.jsonl``).
    ``group_by``: a field of the conversation (e.g. ``conversation_type``) or of the participant's survey
    record (dotted for nested fields, e.g. ``location.reside_region``) to use as ``group``.
    ``drop_ties``: drop pairs whose two responses got the same ``score`` (counted as ``ties``).
    """
    if survey is not None and not group_by:  # it would be read for nothing, and the user would think it was used
        raise DataError(f"survey={survey}: the survey is read only for group_by's values; give group_by too (e.g. "
                        "group_by=location.reside_region), or leave out survey")
    path = Path(path)
    conversations = path / "conversations.jsonl" if path.is_dir() else path
    if not conversations.exists():
        raise DataError(f"{conversations}: no such file (expected PRISM's conversations.jsonl)")
    source = str(conversations)
    # the dataset ships survey.jsonl beside conversations.jsonl: found there whether the folder or the file is given
    if survey is None and (conversations.parent / "survey.jsonl").exists():
        survey = conversations.parent / "survey.jsonl"
    survey_groups = _survey_groups(Path(survey), group_by) if survey is not None and group_by else {}

    rows = SourcedRows()
    dropped: Counter = Counter()
    for i, conversation in read_records(conversations):
        rows.at(source, i)
        user_id = str(field(conversation, "user_id", source, i))
        group = _group(conversation, group_by, source, i) if group_by else None
        group = survey_groups.get(user_id) if is_missing(group) else group
        for row in _conversation_pairs(conversation, source, i, dropped, drop_ties):
            row["user_id"] = user_id
            if not is_missing(group):
                row["group"] = str(group)
            rows.append(row)
    if group_by and not any("group" in row for row in rows):
        looked = f"the conversations or {survey}" if survey is not None else "the conversations (no survey.jsonl found)"
        raise DataError(f"{source}: group_by {group_by!r}: no pair got a group: no such field in {looked}")
    if lower := sum(row.get("margin", 0) < 0 for row in rows):
        LOG.warning("%s: %d pair(s) whose chosen response the participant rated below the rejected one: their "
                    "margin is negative", source, lower)
    # the survey is read only for group_by's values: without group_by, no survey went into these rows
    return finish(rows, source, dropped, "prism", survey=str(survey) if survey and group_by else None,
                  group_by=group_by, chosen_rated_lower=lower)


def _conversation_pairs(conversation: dict, source: str, i: int, dropped: Counter, drop_ties: bool) -> list[dict]:
    history = field(conversation, HISTORY, source, i, list)
    if not history:
        dropped["empty_conversations"] += 1
    turns: dict[Any, list[tuple[int, dict]]] = defaultdict(list)
    for k, utterance in enumerate(history):
        if not isinstance(utterance, dict):
            raise fail(source, i, f"{HISTORY}[{k}]", "expected an utterance (mapping)")
        turns[field(utterance, "turn", source, i, int, f"{HISTORY}[{k}].turn")].append((k, utterance))

    rows: list[dict] = []
    messages: list[dict] = []  # the conversation as the participant saw it, for the next turn's prompt
    for turn in sorted(turns):
        users, models = _split_roles(turns[turn], source, i)
        messages.extend({"role": "user", "content": u["content"]} for _, u in users)
        chosen = [(k, m) for k, m in models if m.get("if_chosen") is True]
        if len(chosen) > 1:
            raise fail(source, i, f"{HISTORY}[{chosen[1][0]}].if_chosen", f"turn {turn} has several chosen responses")
        if not chosen:
            dropped["turns_without_choice"] += 1
            continue
        k_chosen, best = chosen[0]
        others = [(k, m) for k, m in models if k != k_chosen]
        if not others:
            dropped["turns_with_one_response"] += 1
        for k, other in others:
            row = _pair(messages, (k_chosen, best), (k, other), source, i, dropped, drop_ties)
            if row is not None:
                rows.append(row)
        messages.append({"role": "assistant", "content": best.get("content")})
    return rows


def _split_roles(utterances: list[tuple[int, dict]], source: str, i: int) -> tuple[list, list]:
    users, models = [], []
    for k, utterance in sorted(utterances, key=lambda item: item[1].get("within_turn_id") or 0):
        role = field(utterance, "role", source, i, str, f"{HISTORY}[{k}].role")
        if role not in ("user", "model"):
            raise fail(source, i, f"{HISTORY}[{k}].role", f"unknown role {role!r} (expected 'user' or 'model')")
        field(utterance, "content", source, i, str, f"{HISTORY}[{k}].content")
        (users if role == "user" else models).append((k, utterance))
    return users, models


def _pair(messages: list[dict], chosen: tuple[int, dict], other: tuple[int, dict], source: str, i: int,
          dropped: Counter, drop_ties: bool) -> dict | None:
    (k_chosen, best), (k, rejected) = chosen, other
    problem = pair_problem(best["content"], rejected["content"])
    if problem:
        dropped[problem] += 1
        return None
    row: dict[str, Any] = {"prompt": list(messages), "chosen": best["content"], "rejected": rejected["content"]}
    if not is_missing(best.get("score")) and not is_missing(rejected.get("score")):
        margin = (number(best["score"], source, i, f"{HISTORY}[{k_chosen}].score")
                  - number(rejected["score"], source, i, f"{HISTORY}[{k}].score"))
        if margin == 0 and drop_ties:
            dropped["ties"] += 1
            return None
        row["margin"] = margin
    return row


def _survey_groups(survey: Path, group_by: str) -> dict[str, Any]:
    """``user_id`` -> the survey's ``group_by`` value, for participants that have one."""
    if not survey.exists():
        raise DataError(f"{survey}: no such file (expected PRISM's survey.jsonl)")
    groups = {}
    for i, record in read_records(survey):
        value = _group(record, group_by, str(survey), i)
        if not is_missing(value):
            groups[str(field(record, "user_id", str(survey), i))] = value
    return groups


def _group(record: dict, group_by: str, source: str, i: Any) -> Any:
    """The record's ``group_by`` value; a mapping or list there is an error (it would be written as a group)."""
    value = _lookup(record, group_by)
    if isinstance(value, dict):
        example = f"{group_by}.{next(iter(value))}" if value else f"{group_by}.<field>"
        raise fail(source, i, group_by,
                   f"group_by names a mapping, not a value: name a field inside it, e.g. {example}")
    if isinstance(value, list):
        raise fail(source, i, group_by, "group_by names a list, not a value")
    return value


def _lookup(record: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(record, dict):
            return None
        record = record.get(key)
    return record
