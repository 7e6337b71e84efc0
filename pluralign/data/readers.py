"""Readers for JSONL, JSON, CSV, Parquet and Hugging Face ``datasets`` into a validated PreferenceSet."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from pluralign.data.contract import DataError, PreferenceSet, fail, messages_to_text, validate_rows

# CSV cells that hold structured values (lists, dicts, chat messages) are JSON text.
_CSV_JSON_COLUMNS = (
    "prompt", "chosen", "rejected", "prompt_embedding", "chosen_embedding", "rejected_embedding",
    "chosen_attributes", "rejected_attributes",
)
_CSV_NUMBER_COLUMNS = ("margin", "oracle_p")


def _read_jsonl(path: Path) -> tuple[list[dict], list[int]]:
    """The records and the (1-based) line of each; blank lines are skipped."""
    rows, lines = [], []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise fail(str(path), None, None, f"invalid JSON ({err.msg} at char {err.pos})", line_number) from None
            lines.append(line_number)
    return rows, lines


def _read_json(path: Path) -> tuple[list[dict], None]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise fail(str(path), None, None, f"invalid JSON ({err.msg} at line {err.lineno})") from None
    if isinstance(data, dict) and "data" in data:
        data = data["data"]
    if not isinstance(data, list):
        raise fail(str(path), None, None, "expected a JSON list of records")
    return data, None


def _csv_cell(column: str, value: str, path: Path, line: int) -> Any:
    if value == "":
        return None
    if column in _CSV_NUMBER_COLUMNS:
        return value  # validate_rows parses and reports
    if column in _CSV_JSON_COLUMNS and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            if column.endswith(("embedding", "attributes")):
                raise fail(str(path), None, column, "cell is not valid JSON", line) from None
    return value


def _read_csv(path: Path) -> tuple[list[dict], list[int]]:
    """The records and the (1-based) file line of each, the header being line 1 (a record whose quoted
    cell spans lines is named by its last line)."""
    rows, lines = [], []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        for record in reader:
            if None in record:  # DictReader files surplus cells under None
                raise fail(str(path), None, None, f"{len(reader.fieldnames) + len(record[None])} cells, "
                           f"the header has {len(reader.fieldnames)}", reader.line_num)
            short = [k for k, v in record.items() if v is None]  # and fills missing ones with None
            if short:
                raise fail(str(path), None, short[0], f"row ends before column {short[0]!r} "
                           f"({len(reader.fieldnames) - len(short)} of {len(reader.fieldnames)} cells)", reader.line_num)
            rows.append({k: _csv_cell(k, v, path, reader.line_num) for k, v in record.items()})
            lines.append(reader.line_num)
    return rows, lines


def _read_parquet(path: Path) -> tuple[list[dict], None]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist(), None
    except Exception as err:  # pyarrow raises several types for a corrupt file
        raise fail(str(path), None, None, f"cannot read Parquet ({err})") from None


def _read_dataset(dataset: Any, split: str) -> list[dict]:
    if hasattr(dataset, "keys") and not hasattr(dataset, "column_names"):  # DatasetDict
        if split not in dataset:
            raise DataError(f"dataset has no split {split!r} (has {sorted(dataset.keys())})")
        dataset = dataset[split]
    return dataset.to_list()


def read_preferences(source: Any, split: str = "train") -> PreferenceSet:
    """Read preference rows from a file, a benchmark directory, a saved or in-memory ``datasets`` dataset.

    A directory holding ``train.jsonl``/``test.jsonl`` (what ``pluralign data build`` writes) yields the
    file named by ``split``; a directory written by ``Dataset.save_to_disk`` is loaded with ``datasets``.
    """
    if isinstance(source, PreferenceSet):
        return source
    if isinstance(source, list):
        return PreferenceSet.from_rows(source, "<rows>")
    if not isinstance(source, (str, os.PathLike)):
        return PreferenceSet.from_rows(_read_dataset(source, split), f"<dataset:{split}>")
    path = Path(source)
    if path.is_dir():
        for suffix in (".jsonl", ".parquet", ".csv", ".json"):
            candidate = path / f"{split}{suffix}"
            if candidate.exists():
                return read_preferences(candidate)
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            import datasets

            return PreferenceSet.from_rows(_read_dataset(datasets.load_from_disk(str(path)), split), str(path))
        raise DataError(f"{path}: directory holds no {split}.jsonl/.parquet/.csv/.json nor a saved dataset")
    rows, lines = _read_file(path)
    return PreferenceSet(validate_rows(rows, str(path), lines), str(path))


def _read_file(path: Path) -> tuple[list, list[int] | None]:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    readers = {".jsonl": _read_jsonl, ".json": _read_json, ".csv": _read_csv, ".parquet": _read_parquet}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unknown format {path.suffix!r} (expected .jsonl, .json, .csv or .parquet)")
    return reader(path)


def read_candidates(source: str | os.PathLike) -> list[dict]:
    """Prompts with candidate responses to rank (``pluralign rank``): one record per prompt with ``prompt``
    and ``responses`` (a non-empty list; text or chat messages, read as text) and optionally ``user_id``.
    The first bad record stops the reader with its file, line or row, and column."""
    path = Path(source)
    if path.suffix.lower() == ".csv":
        raise DataError(f"{path}: candidates are read from .jsonl, .json or .parquet (a list per record)")
    rows, lines = _read_file(path)
    records = []
    for i, row in enumerate(rows):
        line = lines[i] if lines else None

        def where(column: str | None, message: str) -> DataError:
            return fail(str(path), i, column, message, line)

        if not isinstance(row, dict):
            raise where(None, f"expected a record with 'prompt' and 'responses', got {type(row).__name__}")
        responses = row.get("responses")
        if not isinstance(responses, list) or not responses:
            raise where("responses", "expected a non-empty list of responses")
        record = {}
        cells = [("prompt", row.get("prompt")), *((f"responses[{j}]", r) for j, r in enumerate(responses))]
        for column, value in cells:
            if value is None:
                raise where(column, "missing")
            try:
                record[column] = messages_to_text(value)
            except TypeError as err:
                raise where(column, str(err)) from None
        user = row.get("user_id")
        if user is not None and not isinstance(user, (str, int)):
            raise where("user_id", f"expected a string, got {type(user).__name__}")
        records.append({"prompt": record.pop("prompt"), "responses": list(record.values()),
                        **({"user_id": str(user)} if user is not None else {})})
    if not records:
        raise DataError(f"{path}: no candidates")
    return records
