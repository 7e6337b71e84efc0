"""The preference data contract (TRL's ``prompt``/``chosen``/``rejected`` columns plus user metadata).

One record per row. Every reader and adapter ends in :func:`validate_rows`, which normalizes chat
messages to text and raises :class:`DataError` naming the file, the line or row and the column of the first
problem, so bad input never travels further than the reader.
"""

from __future__ import annotations

import difflib
import functools
import logging
import math
import numbers
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

TEXT_COLUMNS = ("prompt", "chosen", "rejected")
EMBEDDING_COLUMNS = ("prompt_embedding", "chosen_embedding", "rejected_embedding")
ROLES = ("context", "query")
KNOWN_COLUMNS = (
    *TEXT_COLUMNS,
    *EMBEDDING_COLUMNS,
    "user_id",
    "group",
    "role",
    "margin",
    "chosen_attributes",
    "rejected_attributes",
    "oracle_p",
    "controversial",
)

LOG = logging.getLogger("pluralign.data")
_INTEGER_VALUED = re.compile(r"-?\d+\.0+")  # "3.0": how pandas writes an integer id column with nulls to CSV


class DataError(ValueError):
    """Bad preference input; the message says what is wrong and where (file, line or row, column)."""


class LineNumber(int):
    """A record's place given as its 1-based line in a JSON-lines file: where errors say "line N", not "row N"
    (the two differ after a blank line). The adapters pass it where they pass a record's 0-based row."""


def place(source: str, row: int) -> str:
    """Where a record is, as errors name it: "FILE, row 3" (0-based ``row`` 2), or "FILE, line 3" (a LineNumber)."""
    return _where(source, row, None)


def _where(source: str, row: int | None, column: str | None, line: int | None = None) -> str:
    parts = [source]
    if line is None and isinstance(row, LineNumber):
        line = int(row)
    if line is not None:
        parts.append(f"line {line}")
    elif row is not None:
        parts.append(f"row {row + 1}")
    if column is not None:
        parts.append(f"column '{column}'")
    return ", ".join(parts)


def fail(source: str, row: int | None, column: str | None, message: str, line: int | None = None) -> DataError:
    """An error naming where: ``line`` (1-based, as an editor counts) for a text file, else ``row``, given as
    the 0-based position in the records and shown 1-based (the first record is "row 1"), as line numbers are."""
    return DataError(f"{_where(source, row, column, line)}: {message}")


def check_unicode(text: str) -> str:
    """``text``, or a ValueError where it holds a lone surrogate (JSON's "\\ud800" escape): no file can hold it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"not valid Unicode (a lone surrogate \\u{ord(text[err.start]):04x} at character "
                         f"{err.start + 1})") from None
    return text


def _content_text(message: dict, number: int) -> str:
    """A chat message's content: a string, or a list of parts of which the text parts are kept (OpenAI's form)."""
    content = message.get("content")
    if isinstance(content, list) and all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in content):
        return "".join(part["text"] for part in content)  # [{"type": "text", "text": "..."}, ...]
    if not isinstance(content, str):
        got = "no content" if content is None else f"content of type {type(content).__name__}"
        raise TypeError(f"message {number} has {got}; expected text (or a list of text parts)")
    return content


def _is_conversation(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(isinstance(m, dict) for m in value)


def _shared_turns_as_prompt(raw: dict, where: Callable[[str], DataError]) -> dict:
    """A record whose chosen and rejected are whole conversations that open with the same turns (TRL's implicit
    prompt, as in ``ultrafeedback_binarized``): those turns are the prompt, and each response what follows them, as
    TRL's ``maybe_extract_prompt`` reads it; kept, they would open both responses. A prompt given as text must be
    in those turns (``ultrafeedback_binarized`` repeats it there); a prompt given as messages is taken to be
    extracted already, as TRL does."""
    chosen, rejected, prompt = raw.get("chosen"), raw.get("rejected"), raw.get("prompt")
    if not (_is_conversation(chosen) and _is_conversation(rejected)) or _is_conversation(prompt):
        return raw
    shared = 0
    while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
        shared += 1
    if not shared:
        return raw
    try:
        opening = messages_to_text(list(chosen[:shared]))
    except (TypeError, ValueError):
        return raw  # the text columns' own check names the bad message
    if isinstance(prompt, str) and prompt.strip() and prompt.strip() not in opening:
        raise where(f"chosen and rejected open with the same {shared} message(s), which do not hold the prompt: "
                    "give them as responses only, or the prompt they answer")
    return {**raw, "prompt": list(chosen[:shared]), "chosen": list(chosen[shared:]),
            "rejected": list(rejected[shared:])}


def messages_to_text(value: Any) -> str:
    """Chat messages (a list of ``{"role", "content"}``) to one string; a single message is its content. Messages
    whose contents are all blank are the empty text, for the reader's empty-text check to refuse. In a
    conversation each role must be a non-blank name; a missing one (or pyarrow's None) is the user's."""
    if isinstance(value, str):
        return check_unicode(value)
    if isinstance(value, dict):
        value = [value]
    if not (isinstance(value, (list, tuple)) and value and all(isinstance(m, dict) for m in value)):
        raise TypeError("expected a string or a list of chat messages with 'role' and 'content'")
    contents = [check_unicode(_content_text(m, number)) for number, m in enumerate(value, start=1)]
    if len(value) == 1 or not any(c.strip() for c in contents):
        return contents[0] if len(value) == 1 else ""
    roles = ["user" if m.get("role") is None else m["role"] for m in value]  # naming none (pyarrow: None): user
    for number, role in enumerate(roles, start=1):  # a conversation's text names each turn's speaker: not "5: "
        if not (isinstance(role, str) and role.strip()):
            raise TypeError(f"message {number} has role {role!r}; expected its speaker's name ('user', 'assistant', "
                            "...)")
    return "\n".join(f"{role}: {c}" for role, c in zip(roles, contents))


def read_id(value: Any, column: str, where: Callable[[str], DataError]) -> str | None:
    """A user or group id as text, the same from every format: none for a null, NaN or blank cell; an
    integer-valued number (pandas stores an integer column with nulls as floats, CSV as "3.0") as the integer.
    "76561198000000001.0" keeps its digits (as a float it was 76561198000000000, one id for two users); a float
    of 2**53 or more, whose digits may be lost already, is refused."""
    if isinstance(value, str) and _INTEGER_VALUED.fullmatch(value.strip()):
        return str(int(value.strip().split(".")[0]))
    if isinstance(value, float) and (math.isnan(value) or value.is_integer()):
        if abs(value) >= 2**53:  # 2**53 + 1 reads as 2**53
            raise where(f"id {value!r} is a float of 2**53 or more, which cannot hold every integer (two ids may have "
                        "become one); store the column as text or integers")
        value = None if math.isnan(value) else int(value)
    if _is_missing(value) or isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, (dict, list)) or column == "user_id" and isinstance(value, bool):  # not user "True"
        raise where(f"expected a string id, got {type(value).__name__}")
    try:
        return check_unicode(str(value))
    except ValueError as err:
        raise where(str(err)) from None


def _is_missing(value: Any) -> bool:
    # NaN is not "missing": it is bad input, reported by the column's own check
    return value is None


def _as_float(value: Any, where: Callable[[str], DataError]) -> float:
    if isinstance(value, bool):  # float(True) is 1.0: a yes/no in a number's place is a slip, not a number
        raise where(f"expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise where(f"expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise where(f"expected a finite number, got {value!r}")
    return number


def _as_vector(value: Any, where: Callable[[str], DataError]) -> list[float]:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise where("expected a non-empty list of numbers")
    vector = [_as_float(v, where) for v in value]
    return vector


def validate_rows(rows: Iterable[dict], source: str = "<data>", lines: Sequence[int] | None = None,
                  origins: Sequence[str] | None = None, ignored: list | None = None) -> list[dict]:
    """Check and normalize rows against the contract; return new dicts holding only contract columns.

    Errors name the file line of each row where ``lines`` gives them (JSONL, CSV), else its row: the first
    record is row 1 (Parquet, a JSON list, a dataset). Rows an adapter converted name the input record they came
    from instead (``origins``: "conversations.jsonl, line 3"), as a converted row's number is nowhere to look.
    An empty or blank ``user_id``/``group`` is read as none, as a null is (and as an empty CSV cell must be); an
    integer-valued id (3.0, "3.0") is read as the integer.
    """
    out: list[dict] = []
    columns: dict[str, None] = {}  # every record's keys, in order of appearance: the unknown ones are named below
    stand_ins: Counter = Counter()  # (column, the contract column it looks like): rows where it stands in for it
    embedding_dims: dict[str, int] = {}
    for i, raw in enumerate(rows):
        if not isinstance(raw, dict):
            raise fail(source, i, None, f"expected a record (mapping), got {type(raw).__name__}",
                       lines[i] if lines else None)  # adapters' rows are their own dicts: no origin needed

        def where(column: str, _i: int = i) -> Callable[[str], DataError]:
            if origins:
                return lambda message: DataError(f"{origins[_i]}, converted pair's column '{column}': {message}")
            return lambda message: fail(source, _i, column, message, lines[_i] if lines else None)

        row: dict[str, Any] = {}
        has_embeddings = not _is_missing(raw.get("chosen_embedding")) or not _is_missing(raw.get("rejected_embedding"))
        has_prompt_embedding = not _is_missing(raw.get("prompt_embedding"))
        if i == 0:
            embedding_rows, prompt_embeddings = has_embeddings, has_prompt_embedding
        elif has_embeddings != embedding_rows:
            kind, first = ("embeddings", "text") if has_embeddings else ("no embeddings", "embeddings")
            raise where("chosen_embedding")(f"{kind}, but the first row has {first}; one kind of row per set")
        elif has_embeddings and has_prompt_embedding != prompt_embeddings:
            kind = "present" if has_prompt_embedding else "missing"
            raise where("prompt_embedding")(f"{kind} here, not in the first row; all rows or none")
        for column in EMBEDDING_COLUMNS:
            if _is_missing(raw.get(column)):
                continue
            vector = _as_vector(raw[column], where(column))
            key = "prompt" if column == "prompt_embedding" else "response"
            expected = embedding_dims.setdefault(key, len(vector))
            if len(vector) != expected:
                raise where(column)(f"embedding has length {len(vector)}, earlier rows have {expected}")
            row[column] = vector
        if has_embeddings and not ("chosen_embedding" in row and "rejected_embedding" in row):
            missing = "rejected_embedding" if "chosen_embedding" in row else "chosen_embedding"
            raise where(missing)("missing: embeddings need both chosen_embedding and rejected_embedding")

        if not has_embeddings:
            raw = _shared_turns_as_prompt(raw, where("prompt"))
        for column in TEXT_COLUMNS:
            value = raw.get(column)
            if _is_missing(value):
                if has_embeddings:
                    continue
                if column in raw:  # the column is there, this row's cell is empty or null
                    hint = " (use an empty string for no prompt)" if column == "prompt" else ""
                    raise where(column)(f"missing value{hint}")
                # a header cell ' prompt' or a misspelling 'promt': named, as it is the likely cause
                like = next((repr(c) for c in raw if _contract_column_like(c) == column), None)
                hint = f"; the row has {like}, not {column!r}" if like else ""
                raise where(column)(f"missing column{hint} (need prompt/chosen/rejected text, or chosen/rejected "
                                    "embeddings)")
            if isinstance(value, float) and math.isnan(value):
                raise where(column)("NaN where text is expected")
            try:
                text = messages_to_text(value)
            except (TypeError, ValueError) as err:
                raise where(column)(str(err)) from None
            if column != "prompt" and not text.strip():
                raise where(column)("empty text")
            row[column] = text
        if "chosen" in row and "rejected" in row and row["chosen"] == row["rejected"] and not has_embeddings:
            raise where("rejected")("chosen and rejected are identical")
        if has_embeddings and row["chosen_embedding"] == row["rejected_embedding"]:
            raise where("rejected_embedding")("chosen and rejected embeddings are identical")

        for column in ("user_id", "group"):
            if (value := read_id(raw.get(column), column, where(column))) is not None:
                row[column] = value
        role = raw.get("role")
        if not _is_missing(role) and role != "":
            if role not in ROLES:
                raise where("role")(f"unknown role {role!r} (expected 'context' or 'query')")
            if "user_id" not in row:
                raise where("user_id")(f"missing: a row with role {role!r} needs a user_id")
            row["role"] = role
        if not _is_missing(raw.get("margin")):
            row["margin"] = _as_float(raw["margin"], where("margin"))
        if not _is_missing(raw.get("oracle_p")):
            p = _as_float(raw["oracle_p"], where("oracle_p"))
            if not 0.0 <= p <= 1.0:
                raise where("oracle_p")(f"a probability must lie in [0, 1], got {p}")
            row["oracle_p"] = p
        controversial = raw.get("controversial")
        if not _is_missing(controversial):
            if controversial in (True, False, 0, 1, "true", "false", "True", "False"):
                row["controversial"] = controversial in (True, 1, "true", "True")
            else:
                raise where("controversial")(f"expected true or false, got {controversial!r}")
        for column in ("chosen_attributes", "rejected_attributes"):
            value = raw.get(column)
            if _is_missing(value):
                continue
            if not isinstance(value, dict):
                raise where(column)("expected a mapping from attribute name to number")
            row[column] = {str(k): _as_float(v, where(column)) for k, v in value.items()}
        columns.update(dict.fromkeys(raw))
        for column in raw:
            meant = _contract_column_like(column)
            if meant and _is_missing(raw.get(meant)) and not _is_missing(raw[column]):
                stand_ins[column, meant] += 1
        out.append(row)
    unknown = _note_unknown_columns(list(columns), source, stand_ins)
    if written := Counter(r["user_id"] for r in out if r.get("user_id") in _MISSING_AS_TEXT):
        LOG.warning("%s: %s: a missing value written as text (pandas' astype(str), R's write.csv)? They are read "
                    "as user ids; leave the cell empty or null for no user", source,
                    ", ".join(f"{n} row(s) have user_id {u!r}" for u, n in written.items()))
    if ignored is not None:  # the caller's record of the dropped columns (PreferenceSet.meta["ignored_columns"])
        ignored.extend(unknown)
    if not out:
        raise fail(source, None, None, "no rows")
    return out


def ignored_columns_note(data: "PreferenceSet") -> str:
    """' (columns ignored, not in the contract: user, worker_id; ...)' for an error about a missing column, or ''."""
    ignored = [str(c) for c in data.meta.get("ignored_columns") or []]
    shown = ", ".join(ignored[:6]) + (" ..." if len(ignored) > 6 else "")
    return f" (columns ignored, not in the contract: {shown}; the user's column is named user_id)" if ignored else ""


_MISSING_AS_TEXT = {"nan", "NaN", "NA", "N/A", "n/a", "null", "NULL", "None", "<NA>"}  # pandas' and R's
_USER_COLUMN_NAMES = ("user", "users", "uid", "username", "user_name", "annotator", "annotator_id", "worker_id",
                      "rater", "rater_id", "participant_id")


@functools.lru_cache(maxsize=256)
def _contract_column_like(column: Any) -> str | None:
    """The contract column a column outside it looks like: a misspelling (``userid``) or another dataset's name for
    the user (``annotator``, ``worker_id``); None for a contract column or one like none."""
    if column in KNOWN_COLUMNS:
        return None
    name = str(column).lower()
    if name in _USER_COLUMN_NAMES:
        return "user_id"
    close = difflib.get_close_matches(name, KNOWN_COLUMNS, n=1, cutoff=0.8)
    return close[0] if close else None


def _note_unknown_columns(columns: list, source: str, stand_ins: Counter | None = None) -> list:
    """Columns outside the contract are dropped (real data carries ids, scores, sources); one that looks like a
    contract column (``userid``, ``annotator``) is a warning, since the method then runs without what it names:
    where no row has that contract column, or where some rows give it and others only the look-alike (two files
    merged), whose rows then go without it (``stand_ins``: those rows' count by pair of columns)."""
    unknown = [c for c in columns if c not in KNOWN_COLUMNS]
    for column in unknown:
        if (meant := _contract_column_like(column)) and meant not in columns:
            LOG.warning("%s: column %r is not in the contract (did you mean %r?); ignored", source, column, meant)
    for (column, meant), n in (stand_ins or {}).items():
        if meant in columns:
            LOG.warning("%s: %d row(s) have %r but no %r (other rows have %r): %r is not in the contract, so those "
                        "rows go without a %s", source, n, column, meant, meant, column, meant)
    if unknown:
        LOG.debug("%s: columns not in the contract, ignored: %s", source, ", ".join(map(str, unknown)))
    return unknown


def warn_duplicates(rows: Sequence[dict], source: str = "<data>", lines: Sequence[int] | None = None,
                    origins: Sequence[str] | None = None) -> int:
    """Log one warning for rows that repeat an earlier one (same user_id, prompt, chosen and rejected) and
    return their number. Not an error: real data has repeats (an annotator shown a pair twice), and so do the
    synthetic benchmarks, which draw pairs at random; so a warning only past 1% of the rows, else a debug line.
    ``lines``: each row's line in ``source``; ``origins``: each row's input record ("FILE, line N"), for rows an
    adapter converted (a row's own number is nowhere to look)."""
    first: dict[tuple, int] = {}
    repeats, example = 0, (0, 0)  # the first repeat and the earlier row it repeats
    for i, row in enumerate(rows):
        key = (row.get("user_id"), *(_hashable(row.get(c)) for c in (*TEXT_COLUMNS, *EMBEDDING_COLUMNS)))
        earlier = first.setdefault(key, i)
        if earlier != i:
            repeats += 1
            example = example if repeats > 1 else (i, earlier)
    if repeats:
        at = ((lambda j: origins[j]) if origins else (lambda j: f"line {lines[j]}") if lines
              else (lambda j: f"row {j + 1}"))
        said = (source, repeats, len(rows), example)  # a bench reads a folder several times: say it once
        same = "same user_id, prompt" if any(row.get("user_id") is not None for row in rows) else "same prompt"
        LOG.log(logging.WARNING if repeats > 0.01 * len(rows) and said not in _WARNED_REPEATS else logging.DEBUG,
                "%s: %d repeated row(s) (%.1f%%; %s, chosen and rejected), kept as repeated judgements; the first "
                "is %s, a repeat of %s (drop them if they are copies)", source, repeats, 100 * repeats / len(rows),
                same, at(example[0]), at(example[1]))
        _WARNED_REPEATS.add(said)
    return repeats


_WARNED_REPEATS: set[tuple] = set()  # the repeats already warned of in this process


def _hashable(value: Any) -> Any:
    # an embedding by its hash, not a copy: a million rows of 1024 floats would not fit twice in memory
    return hash(tuple(value)) if isinstance(value, list) else value


@dataclass
class PreferenceSet:
    """Validated preference rows and where they came from. Rows given directly are validated here;
    ``checked=True`` says they already were (the readers' and the splits' own rows)."""

    rows: list[dict]
    source: str = "<data>"
    meta: dict = field(default_factory=dict)
    checked: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.checked:
            ignored: list = []
            self.rows, self.checked = validate_rows(self.rows, self.source, ignored=ignored), True
            if ignored:
                self.meta.setdefault("ignored_columns", ignored)

    @classmethod
    def from_rows(cls, rows: Iterable[dict], source: str = "<data>",
                  origins: Sequence[str] | None = None) -> "PreferenceSet":
        ignored: list = []
        rows = validate_rows(rows, source, origins=origins, ignored=ignored)
        return cls(rows, source, {"ignored_columns": ignored} if ignored else {}, checked=True)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def column(self, name: str, default: Any = None) -> list:
        return [row.get(name, default) for row in self.rows]

    @property
    def has_embeddings(self) -> bool:
        return "chosen_embedding" in self.rows[0]

    @property
    def user_ids(self) -> list[str]:
        """Distinct user ids in order of first appearance."""
        return list(dict.fromkeys(u for u in self.column("user_id") if u is not None))

    def subset(self, keep: Sequence[int] | Sequence[bool] | Callable[[dict], bool],
               suffix: str = "") -> "PreferenceSet":
        """The rows ``keep`` names: row indices (0-based, in the order given), a mask of one bool per row, or a
        test of each row. An index out of range, a negative one (counted from the end elsewhere, a slip here) or
        a mask of another length is refused, not wrapped or cut."""
        if callable(keep):
            rows = [row for row in self.rows if keep(row)]
        else:
            keep = keep.tolist() if hasattr(keep, "tolist") else list(keep)  # numpy / torch masks and indices too
            if keep and all(isinstance(k, bool) for k in keep):
                if len(keep) != len(self.rows):
                    raise DataError(f"{self.source}: subset got a mask of {len(keep)} bools for {len(self.rows)} rows")
                keep = [i for i, k in enumerate(keep) if k]
            for k in keep:
                if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 <= k < len(self.rows):
                    raise DataError(f"{self.source}: subset index {k!r} is not a row (0 to {len(self.rows) - 1})")
            rows = [self.rows[i] for i in keep]
        return PreferenceSet(rows, self.source + suffix, dict(self.meta), checked=True)
