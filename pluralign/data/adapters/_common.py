"""Helpers shared by the dataset adapters: reading records, checking fields, counting what is dropped."""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from pluralign.data.contract import DataError, LineNumber, PreferenceSet, fail, place, warn_duplicates
from pluralign.data.readers import read_jsonl, read_text
from pluralign.io import first_line, invalid_json

LOG = logging.getLogger("pluralign.data")

RECORD_SUFFIXES = (".jsonl", ".json", ".parquet")


def input_files(path: Path, suffixes: Iterable[str] = RECORD_SUFFIXES) -> list[Path]:
    """``path`` itself, or the files with one of ``suffixes`` directly inside the folder ``path`` (sorted); for a
    folder saved by ``datasets`` (``save_to_disk``), its Arrow files, every split's (its JSON files are metadata)."""
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_file():
        return [path]
    if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
        if not (arrows := sorted(path.rglob("*.arrow"))):
            raise DataError(f"{path}: a folder saved by datasets, but it holds no .arrow files")
        LOG.info("%s: reading the saved dataset's %s", path, ", ".join(str(a.relative_to(path)) for a in arrows))
        return arrows
    suffixes = tuple(suffixes)
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise DataError(f"{path}: folder holds no {'/'.join(suffixes)} files")
    return files


class SourcedRows(list):
    """An adapter's converted rows, each remembering the input record it came from (``origin``, set before that
    record's rows are added): the contract's checks after the conversion name that record, not a converted row's
    number, which is nowhere to look."""

    def __init__(self) -> None:
        super().__init__()
        self.origin, self.origins = "", []

    def append(self, row: dict) -> None:
        super().append(row)
        self.origins.append(self.origin)

    def extend(self, rows: Iterable[dict]) -> None:
        before = len(self)
        super().extend(rows)
        self.origins += [self.origin] * (len(self) - before)

    def at(self, source: str, row: int) -> None:
        """The rows added next come from record ``row`` of ``source`` (a :class:`LineNumber` for a text file)."""
        self.origin = place(source, row)


def read_records(path: Path) -> list[tuple[int, Any]]:
    """Records of a JSON list, a JSON-lines file (whatever its suffix: OpenAI's ``batch*.json`` are JSON lines), a
    Parquet file or an Arrow file of a saved ``datasets`` folder, text as UTF-8 (a byte-order mark dropped); each
    with its place for errors to name: a JSON-lines record's line (a :class:`LineNumber`: "line 3"), else its
    0-based row ("row 1" for the first)."""
    if path.suffix.lower() == ".arrow":  # a file of a folder saved by datasets
        import datasets

        try:
            return list(enumerate(datasets.Dataset.from_file(str(path)).to_list()))
        except Exception as err:  # pyarrow's and datasets' several types for a damaged file
            raise fail(str(path), None, None, f"cannot read Arrow ({first_line(err)})") from None
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        try:
            return list(enumerate(pq.read_table(path).to_pylist()))
        except Exception as err:  # pyarrow raises several types for a corrupt file
            raise fail(str(path), None, None, f"cannot read Parquet ({err})") from None
    text = read_text(path)
    if text.lstrip()[:1] == "[":
        try:
            return list(enumerate(json.loads(text)))
        except json.JSONDecodeError as err:
            raise fail(str(path), None, None, invalid_json(err)) from None
    records, lines = read_jsonl(path)
    return [(LineNumber(line), record) for line, record in zip(lines, records)]


def field(record: Any, key: str, source: str, row: int, kinds: type | tuple[type, ...] | None = None,
          column: str | None = None) -> Any:
    """``record[key]``, required and (when ``kinds`` is given) of that type; else a DataError naming it."""
    column = column or key
    if not isinstance(record, dict):
        raise fail(source, row, None, f"expected a record (mapping), got {type(record).__name__}")
    if key not in record or is_missing(record[key]):
        raise fail(source, row, column, "missing")
    value = record[key]
    if kinds is not None and (not isinstance(value, kinds) or isinstance(value, bool) and bool not in _tuple(kinds)):
        names = "/".join(k.__name__ for k in _tuple(kinds))
        raise fail(source, row, column, f"expected {names}, got {type(value).__name__} {_short(value)}")
    return value


def number(value: Any, source: str, row: int, column: str) -> float:
    """A finite float from a number or a numeric string (UltraFeedback stores ratings as ``"4"``)."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise fail(source, row, column, f"expected a number, got {_short(value)}") from None
    if isinstance(value, bool) or not math.isfinite(result):
        raise fail(source, row, column, f"expected a finite number, got {_short(value)}")
    return result


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def pair_problem(chosen: Any, rejected: Any) -> str | None:
    """Why a text pair cannot become a contract row (counted as a drop), or None when it can."""
    if not isinstance(chosen, str) or not isinstance(rejected, str) or not chosen.strip() or not rejected.strip():
        return "empty_response"
    if chosen == rejected:
        return "identical_responses"
    return None


def finish(rows: list[dict], path: str | Path, dropped: Counter, what: str, **meta: Any) -> PreferenceSet:
    """Validate the rows, log and record every drop (``meta["dropped"]``), attach adapter metadata."""
    source = str(path)
    drops = {reason: count for reason, count in sorted(dropped.items()) if count}
    if drops:
        LOG.warning("%s: dropped %s while reading %s", source, ", ".join(f"{n} {r}" for r, n in drops.items()), what)
    # no rows at all is an error, not "0 pairs"
    data = PreferenceSet.from_rows(rows, source=source, origins=getattr(rows, "origins", None))
    LOG.info("%s: %d preference pairs from %s", source, len(rows), what)
    warn_duplicates(data.rows, source, origins=getattr(rows, "origins", None))
    data.meta.update(meta, adapter=what, dropped=drops)
    return data


def _tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
