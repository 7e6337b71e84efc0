"""Readers for JSONL, JSON, CSV, Parquet and Hugging Face ``datasets`` into a validated PreferenceSet."""

from __future__ import annotations

import codecs
import csv
import json
import logging
import math
import os
import re
import types
from pathlib import Path
from typing import Any, Callable, Collection, Iterator

from pluralign.data.contract import (
    EMBEDDING_COLUMNS, TEXT_COLUMNS, DataError, PreferenceSet, fail, messages_to_text, read_id, validate_rows,
    warn_duplicates,
)
from pluralign.io import SPLIT_SUFFIXES, first_line, invalid_json

# CSV cells that hold structured values (lists, dicts, chat messages) are JSON text.
_CSV_JSON_COLUMNS = (
    "prompt", "chosen", "rejected", "prompt_embedding", "chosen_embedding", "rejected_embedding",
    "chosen_attributes", "rejected_attributes",
)
_CSV_NUMBER_COLUMNS = ("margin", "oracle_p")
_LONE_CR = re.compile(r"(?<=\r)(?!\n)")  # a line end too, as in universal newlines (Excel's "CSV (Macintosh)")


def _not_utf8(path: Path, data: bytes, err: UnicodeDecodeError, line: int, start: int = 0) -> DataError:
    """The error for bytes ``data`` whose ``err`` is on file line ``line``, that line starting at ``start``
    in ``data``; the column counts characters, as an editor does."""
    column = len(data[start:err.start].decode("utf-8", errors="replace")) + 1
    return fail(str(path), None, None, f"not UTF-8 text (byte 0x{data[err.start]:02x} at column {column}); "
                "save the file as UTF-8", line)


def text_lines(path: Path, lone_cr_ends_lines: bool = True) -> Iterator[str]:
    """The file's lines, endings kept (as ``open(newline="")`` gives them), decoded line by line so that bytes
    that are not UTF-8 are named by line and column; a leading byte-order mark (Excel writes one) is dropped.
    ``lone_cr_ends_lines``: a CR not followed by LF ends a line too (CSV); in JSONL it is whitespace inside one."""
    with open(path, "rb") as f:
        for line_number, raw in enumerate(f, start=1):
            start = len(codecs.BOM_UTF8) if line_number == 1 and raw.startswith(codecs.BOM_UTF8) else 0
            try:
                text = raw[start:].decode("utf-8")
            except UnicodeDecodeError as err:
                raise _not_utf8(path, raw[start:], err, line_number) from None
            if lone_cr_ends_lines and "\r" in text.rstrip("\r\n"):
                yield from (piece for piece in _LONE_CR.split(text) if piece)
            else:
                yield text


def read_text(path: Path) -> str:
    """The whole file as text, a leading byte-order mark dropped; bytes that are not UTF-8 named by line and column."""
    data = path.read_bytes()
    data = data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line_start = data.rfind(b"\n", 0, err.start) + 1
        raise _not_utf8(path, data, err, data.count(b"\n", 0, err.start) + 1, line_start) from None


def read_jsonl(path: Path) -> tuple[list[dict], list[int]]:
    """The records and the (1-based) line of each; blank lines are skipped."""
    rows, lines = [], []
    for line_number, line in enumerate(text_lines(path, lone_cr_ends_lines=False), start=1):
        if not line.strip():
            continue
        try:  # without its line end: an error at the end of the line is in its last column, not "column 1"
            rows.append(json.loads(line.rstrip("\r\n")))
        except json.JSONDecodeError as err:
            raise fail(str(path), None, None, invalid_json(err, line=False), line_number) from None
        lines.append(line_number)
    return rows, lines


def _read_json(path: Path) -> tuple[list[dict], None]:
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise fail(str(path), None, None, invalid_json(err)) from None
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
            parsed = json.loads(value)
        except json.JSONDecodeError:
            if column.endswith(("embedding", "attributes")):
                raise fail(str(path), None, column, "cell is not valid JSON", line) from None
            return value
        if column in TEXT_COLUMNS and not _chat_messages(parsed):
            return value  # text that happens to be JSON (a code answer, "[1, 2, 3]") stays text
        return parsed
    return value


_MESSAGE_KEYS = {"role", "content", "name", "tool_calls", "tool_call_id"}  # what a chat message may hold
CSV_CELL_LIMIT = 2**31 - 1  # characters in a CSV cell: the largest a C long holds everywhere (the csv default: 131,072)


def _chat_messages(value: Any) -> bool:
    """Whether a CSV cell's JSON is chat messages (a message, or a list of them) rather than text in JSON's form:
    each a mapping with a string role and a content, and no key a message has not ({"content": ..., "lang": ...}
    is an answer written as JSON, kept as its text)."""
    messages = [value] if isinstance(value, dict) else value
    return (isinstance(messages, list) and bool(messages)
            and all(isinstance(m, dict) and isinstance(m.get("role"), str) and "content" in m
                    and set(m) <= _MESSAGE_KEYS for m in messages))


def _csv_checked(step: Callable[[], Any], reader: csv.DictReader, path: Path) -> Any:
    """``step()``, with a csv.Error (a cell over the csv module's size limit) as one line naming the line."""
    try:
        return step()
    except csv.Error as err:  # the DictReader's own line_num is not updated yet: its reader's is
        raise fail(str(path), None, None, f"not valid CSV ({err})", reader.reader.line_num) from None


def _read_csv(path: Path) -> tuple[list[dict], list[int]]:
    """The records and the (1-based) file line of each, the header being line 1 (a record whose quoted
    cell spans lines is named by its last line). A cell may be as long as a JSONL one: the csv module's
    131,072-character limit is lifted while the file is read."""
    limit = csv.field_size_limit()
    csv.field_size_limit(CSV_CELL_LIMIT)
    try:
        return _read_csv_records(path)
    finally:
        csv.field_size_limit(limit)


def _read_csv_records(path: Path) -> tuple[list[dict], list[int]]:
    rows, lines = [], []
    reader = csv.DictReader(text_lines(path))
    header = _csv_checked(lambda: reader.fieldnames, reader, path) or []
    twice = next((name for i, name in enumerate(header) if name in header[:i]), None)
    if twice is not None:
        raise DataError(f"{path}: column {twice!r} appears twice in the header")
    if len(header) == 1 and (sep := next((c for c in ";\t|" if c in header[0]), None)):
        raise DataError(f"{path}: the header is one column, {header[0][:60]!r}: its columns look separated by "
                        f"{sep!r}; pluralign reads comma-separated CSV (write it with commas, or as JSONL)")
    while (record := _csv_checked(lambda: next(reader, None), reader, path)) is not None:
        if list(record.values()) == reader.fieldnames:  # files joined with their headers: not a pair "prompt"
            raise fail(str(path), None, None, "the header again (files joined with their headers?); remove this line",
                       reader.line_num)
        if None in record:  # DictReader files surplus cells under None
            raise fail(str(path), None, None, f"{len(reader.fieldnames) + len(record[None])} cells, "
                       f"the header has {len(reader.fieldnames)}", reader.line_num)
        short = [k for k, v in record.items() if v is None]  # and fills missing ones with None
        if short:
            raise fail(str(path), None, short[0], f"row ends before column {short[0]!r} "
                       f"({len(reader.fieldnames) - len(short)} of {len(reader.fieldnames)} cells)", reader.line_num)
        row = {k: _csv_cell(k, v, path, reader.line_num) for k, v in record.items()}
        if row.get("prompt", "") is None and not any(row.get(c) for c in EMBEDDING_COLUMNS):
            row["prompt"] = ""  # CSV has no null, and an empty prompt is the contract's own "no prompt"
        rows.append(row)
        lines.append(reader.line_num)
    return rows, lines


def _read_parquet(path: Path) -> tuple[list[dict], None]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist(), None
    except Exception as err:  # pyarrow raises several types for a corrupt file
        raise fail(str(path), None, None, f"cannot read Parquet ({first_line(err)})") from None


def _is_columns(table: dict) -> bool:
    """Whether a dict is columns (``Dataset.from_dict``'s input: ``{"chosen": [text, ...], ...}``) rather than one
    record, whose ``chosen`` is a text or a list of chat messages and whose ``chosen_embedding`` is numbers."""
    if "chosen" in table:
        column = table["chosen"]
        return isinstance(column, (list, tuple)) and all(isinstance(c, (str, list, tuple)) for c in column)
    column = table["chosen_embedding"]
    return isinstance(column, (list, tuple)) and all(hasattr(c, "__len__") for c in column)


def _as_list(column: Any) -> Any:
    """A numpy array or pandas Series as the list of its rows (an [N, D] embedding array: N lists of D numbers),
    so a dict of them reads as the dict of lists it stands for; anything else as it is."""
    if hasattr(column, "tolist") and getattr(column, "shape", ()):  # not a 0-d array: a number is no column
        return column.tolist()
    return column


def _columns_to_records(table: dict) -> list[dict]:
    lengths = {name: len(column) if isinstance(column, (list, tuple)) else None for name, column in table.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{n} {'is not a list' if k is None else f'has {k}'}" for n, k in lengths.items())
        raise DataError(f"a dict of columns needs one list per column, all as long ({shown})")
    return [dict(zip(table, values)) for values in zip(*table.values())]


def _is_na_cell(value: Any) -> bool:
    """pandas' marks of an empty cell (NaN, None, pd.NA, NaT); a list or array (an embedding) is a value."""
    if isinstance(value, float):
        return math.isnan(value)
    return value is None or type(value).__name__ in ("NAType", "NaTType")


def _read_dataset(dataset: Any, split: str) -> list[dict]:
    """The records of an in-memory table: a ``datasets`` Dataset, a DatasetDict's ``split``, a pandas DataFrame,
    a dict of columns, or one record (a dict with the pair's columns)."""
    if isinstance(dataset, dict) and any(c in dataset for c in ("chosen", "chosen_embedding")):
        dataset = {name: _as_list(column) for name, column in dataset.items()}
        return _columns_to_records(dataset) if _is_columns(dataset) else [dataset]
    if hasattr(dataset, "to_dict") and hasattr(dataset, "columns"):  # a pandas DataFrame
        # a frame has no "absent" cell: a column some rows lack (role, margin, oracle_p) holds NaN there, which
        # reads as missing, as the absent key of a JSONL row does (a text cell then says "missing value")
        return [{k: None if _is_na_cell(v) else v for k, v in record.items()}
                for record in dataset.to_dict("records")]
    if hasattr(dataset, "keys") and isinstance(getattr(dataset, "column_names", {}), dict):  # a DatasetDict
        if split not in dataset:
            raise DataError(f"dataset has no split {split!r} (has {sorted(dataset.keys())})")
        dataset = dataset[split]
    if not hasattr(dataset, "to_list"):
        raise TypeError(f"expected preference rows: a path, a list of dicts, a PreferenceSet, a pandas DataFrame or "
                        f"a datasets Dataset/DatasetDict; got {type(dataset).__name__}")
    return dataset.to_list()


def read_preferences(source: Any, split: str = "train") -> PreferenceSet:
    """Read preference rows from a file, a benchmark directory, a saved or in-memory ``datasets`` dataset.

    Text files are UTF-8 (a leading byte-order mark is dropped); errors name the file's line for JSONL and
    CSV, the row (the first record is row 1) for Parquet, a JSON list and a dataset.

    A directory holding ``train.jsonl``/``test.jsonl`` (what ``pluralign data build`` writes) yields the
    file named by ``split``; a directory written by ``Dataset.save_to_disk`` is loaded with ``datasets``.
    """
    if isinstance(source, PreferenceSet):
        return source
    if isinstance(source, types.GeneratorType):
        source = tuple(source)
    if isinstance(source, tuple) and all(isinstance(r, dict) for r in source):  # records as a tuple, or generated
        source = list(source)
    if isinstance(source, list):
        return PreferenceSet.from_rows(source, "<rows>")
    if not isinstance(source, (str, os.PathLike)):
        return PreferenceSet.from_rows(_read_dataset(source, split), f"<dataset:{split}>")
    path = Path(source)
    if path.is_dir():
        found = [c for c in (path / f"{split}{suffix}" for suffix in SPLIT_SUFFIXES) if c.exists() or c.is_symlink()]
        if len(found) > 1:  # the first in SPLIT_SUFFIXES' order is read (what `data build` writes): said
            logging.getLogger("pluralign").warning(
                "%s: %s each hold the %s split; reading %s (give the file itself to read another)", path,
                " and ".join(p.name for p in found), split, found[0].name)
        for candidate in found:
            if candidate.is_symlink() and not candidate.exists():
                raise DataError(f"{candidate}: a link to {os.readlink(candidate)}, which does not exist")
            if candidate.is_dir():
                raise DataError(f"{candidate}: is a folder; expected the {split} split's file")
            return read_preferences(candidate)
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            import datasets

            try:
                saved = datasets.load_from_disk(str(path))
            except Exception as err:  # json's, pyarrow's and datasets' several types for a damaged folder
                raise DataError(f"{path}: cannot read the saved dataset ({first_line(err)}); a damaged or partial "
                                "copy?") from None
            if isinstance(saved, datasets.Dataset) and split != "train":  # as a folder holding train.jsonl alone
                raise DataError(f"{path}: a saved Dataset with no splits, read as the train split; it has no "
                                f"{split} split (save a DatasetDict)")
            try:
                records = _read_dataset(saved, split)
            except DataError as err:  # a saved DatasetDict without the split: name the folder
                raise DataError(f"{path}: {err}") from None
            data = PreferenceSet.from_rows(records, str(path))
            warn_duplicates(data.rows, data.source)
            return data
        raise DataError(f"{path}: directory holds no {split}.jsonl/.parquet/.csv/.json nor a saved dataset")
    rows, lines = _read_file(path)
    ignored: list = []
    rows = validate_rows(rows, str(path), lines, ignored=ignored)
    warn_duplicates(rows, str(path), lines)  # files only: rows in memory were checked when they were read
    return PreferenceSet(rows, str(path), {"ignored_columns": ignored} if ignored else {}, checked=True)


def _read_file(path: Path) -> tuple[list, list[int] | None]:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    readers = {".jsonl": read_jsonl, ".json": _read_json, ".csv": _read_csv, ".parquet": _read_parquet}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unknown format {path.suffix!r} (expected .jsonl, .json, .csv or .parquet)")
    return reader(path)


def read_candidates(source: str | os.PathLike, known_users: Collection[str] | None = None) -> list[dict]:
    """Prompts with candidate responses to rank (``pluralign rank``): one record per prompt with ``prompt``
    and ``responses`` (a non-empty list; text or chat messages, read as text) and optionally ``user_id``, one of
    ``known_users`` where given (a run's users). The first bad record stops the reader with its file, line or
    row, and column."""
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
            except (TypeError, ValueError) as err:
                raise where(column, str(err)) from None
            if column != "prompt" and not record[column].strip():  # nothing to rank, as a training row refuses
                raise where(column, "empty text")
        user = read_id(row.get("user_id"), "user_id", lambda message: where("user_id", message))  # as rows read it
        if known_users is not None and user is not None and user not in known_users:
            raise where("user_id", f"{user!r} is not a user of the run; rank a new user's records with --pairs "
                                   "FILE of their labelled pairs")
        records.append({"prompt": record.pop("prompt"), "responses": list(record.values()),
                        **({"user_id": user} if user is not None else {})})
    if not records:
        raise DataError(f"{path}: no candidates")
    return records
