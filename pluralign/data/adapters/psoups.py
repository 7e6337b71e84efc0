"""P-SOUPS, the Personalized Soups data (Jang et al. 2023; github.com/joeljang/RLPHF, ``data.zip``).

Format read: the per-preference files (``data/rm_training/P1A.json`` ... ``P3D.json``, one preference
profile per file, JSON list or JSON lines) whose records hold ``user_input`` (the instruction),
``completion_a`` and ``completion_b``. RLPHF's ``training_reward_model.py`` trains with
``completion_a`` as the preferred answer, so that is the default. Where a record carries the GPT-4
annotator's ``preference`` (AlpacaFarm convention: 1 = first output, 2 = second, anything else = no
preference, dropped as a tie), that label decides instead. AlpacaFarm's own field names
(``instruction`` + ``input``, ``output_1``, ``output_2``) are read as well.

user_id: the record's ``user_id`` when present (as in the merged ``allcombo_8_cleaned.json`` of
Personalized-RLHF), else the file's stem, e.g. ``P1A`` (in a folder saved by ``datasets``, the split's name).
group: the preference dimension (``P1`` expertise, ``P2`` informativeness, ``P3`` style), taken from that id.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from pluralign.data.adapters._common import (
    SourcedRows, field, finish, input_files, is_missing, pair_problem, read_records,
)
from pluralign.data.contract import PreferenceSet, fail

PROFILE = re.compile(r"^(P\d)[A-Z]$", re.IGNORECASE)
# (prompt, first response, second response) field names: RLPHF's, then AlpacaFarm's annotation output.
FIELD_SETS = (("user_input", "completion_a", "completion_b"), ("instruction", "output_1", "output_2"))


def from_psoups(path: str | Path) -> PreferenceSet:
    """Read P-SOUPS preference files: one ``P*.json`` file or the folder holding them."""
    rows = SourcedRows()
    dropped: Counter = Counter()
    for file in input_files(Path(path), (".json", ".jsonl")):
        source = str(file)
        for i, record in read_records(file):
            rows.at(source, i)
            row = _record(record, _profile_name(file, Path(path)), source, i, dropped)
            if row is not None:
                rows.append(row)
    return finish(rows, path, dropped, "psoups")


def _profile_name(file: Path, root: Path) -> str | None:
    """The name a file gives its records' user: its stem (``P1A.json``), or, for an Arrow file of a folder saved by
    ``datasets``, its split's folder (``P1A/data-00000-of-00001.arrow``); None for a saved Dataset's own Arrow
    files, whose names (``data-00000-of-00001``) are no profile."""
    if file.suffix.lower() != ".arrow":
        return file.stem
    return file.parent.name if file.parent.resolve() != root.resolve() else None


def _record(record: Any, stem: str | None, source: str, i: int, dropped: Counter) -> dict | None:
    names = _field_names(record, source, i)
    prompt = field(record, names[0], source, i, str)
    if names[0] == "instruction" and record.get("input"):
        prompt = f"{prompt}\n\n{record['input']}"
    first, second = (field(record, name, source, i, str) for name in names[1:])
    winner = _winner(record, source, i)
    if winner is None:
        dropped["ties"] += 1
        return None
    chosen, rejected = (first, second) if winner == 1 else (second, first)
    problem = pair_problem(chosen, rejected)
    if problem:
        dropped[problem] += 1
        return None
    user = record.get("user_id")
    if is_missing(user) and stem is None:
        raise fail(source, i, "user_id", "missing; a saved Dataset's file name names no profile: save the profiles "
                   "as a DatasetDict (one split each, P1A ...), or give each record its user_id")
    user_id = stem if is_missing(user) else str(user)
    row = {"prompt": prompt, "chosen": chosen, "rejected": rejected, "user_id": user_id}
    match = PROFILE.match(user_id)
    if match:
        row["group"] = match.group(1).upper()
    return row


def _field_names(record: Any, source: str, i: int) -> tuple[str, str, str]:
    if isinstance(record, dict):
        for names in FIELD_SETS:
            if names[0] in record:
                return names
    raise fail(source, i, "user_input", "missing (expected user_input/completion_a/completion_b)")


def _winner(record: dict, source: str, i: int) -> int | None:
    """1 or 2 for the preferred response; None for a tie or no preference."""
    label = record.get("preference")
    if is_missing(label):
        return 1  # RLPHF's reward-model files list the preferred completion first
    if isinstance(label, bool) or not isinstance(label, (int, float)):
        raise fail(source, i, "preference", f"expected 1 or 2, got {label!r}")
    return int(label) if label in (1, 2) else None
