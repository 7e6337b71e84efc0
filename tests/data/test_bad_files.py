"""Bad input files: one line naming the file, the line or row and the column; nothing half read (tiny files)."""

from __future__ import annotations

import codecs
import json
import logging
import math
import re

import pytest
import torch

from conftest import StandInEncoder
from pluralign.cli import main
from pluralign.data import DataError, PreferenceSet, read_preferences
from pluralign.data.adapters._common import read_records
from pluralign.data.cache import EmbeddingCache
from pluralign.data.readers import read_candidates
from pluralign.data.split import split_by_user
from pluralign.data.synthetic import BENCHMARKS, build_benchmark
from pluralign.io import write_jsonl

ROWS = [{"prompt": f"p{i}", "chosen": f"good {i}", "rejected": f"bad {i}", "user_id": f"u{i % 2}"} for i in range(4)]
HEADER = "prompt,chosen,rejected,user_id\n"
CSV_BODY = "".join(f"{r['prompt']},{r['chosen']},{r['rejected']},{r['user_id']}\n" for r in ROWS)


def jsonl_bytes(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


# ------------------------------------------------------------------------------------------ 1: not UTF-8
@pytest.mark.parametrize("name, data, where", [
    # line 3 is 'p1,caf\xe9...': the Latin-1 é is the 7th character of that line
    ("latin1.csv", (HEADER + "p0,a,b,u0\np1,café,b,u0\n").encode("latin-1"),
     "line 3: not UTF-8 text (byte 0xe9 at column 7)"),
    ("latin1.jsonl", jsonl_bytes(ROWS[:1]) + '{"prompt": "café"}\n'.encode("latin-1"),
     "line 2: not UTF-8 text (byte 0xe9 at column 16)"),
    ("latin1.json", '[\n {"prompt": "é"}\n]'.encode("latin-1"), "line 2: not UTF-8 text (byte 0xe9 at column 14)"),
    ("random.jsonl", bytes([0x76, 0x93, 0x2e, 0xeb, 0x0a]), "line 1: not UTF-8 text (byte 0x93 at column 2)"),
])
def test_not_utf8_names_file_line_and_column(tmp_path, name, data, where):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DataError) as err:
        read_preferences(path)
    assert str(err.value).startswith(f"{path}, {where}") and "\n" not in str(err.value)


def test_not_utf8_through_adapters_and_candidates(tmp_path):
    path = tmp_path / "batch.jsonl"
    path.write_bytes(jsonl_bytes(ROWS) + b'{"a": "\xff"}\n')
    with pytest.raises(DataError, match=r"batch\.jsonl, line 5: not UTF-8 text \(byte 0xff at column 8\)"):
        read_records(path)
    with pytest.raises(DataError, match=r"batch\.jsonl, line 5: not UTF-8 text"):
        read_candidates(path)
    as_list = tmp_path / "list.json"
    as_list.write_bytes(b'[{"a": 1},\n {"b": "\xe9"}]')
    with pytest.raises(DataError, match=r"list\.json, line 2: not UTF-8 text \(byte 0xe9 at column 9\)"):
        read_records(as_list)


def test_cli_says_one_line_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"prompt": "caf\xe9"}\n'.encode("latin-1"))
    out = tmp_path / "split"
    assert main(["data", "split", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"pluralign: error: {path}, line 1: not UTF-8 text (byte 0xe9 at column 16); save the file as UTF-8\n"
    assert not out.exists()


# --------------------------------------------------------------------------------------------- 2: BOM
def test_byte_order_mark_is_dropped(tmp_path):
    """Excel saves CSV with a UTF-8 byte-order mark: the header's first name is still 'prompt'."""
    plain, bom = tmp_path / "plain.csv", tmp_path / "bom.csv"
    plain.write_text(HEADER + CSV_BODY, encoding="utf-8")
    bom.write_bytes(codecs.BOM_UTF8 + (HEADER + CSV_BODY).replace("\n", "\r\n").encode("utf-8"))
    expected = read_preferences(plain).rows
    assert expected[0]["prompt"] == "p0" and len(expected) == 4
    assert read_preferences(bom).rows == expected
    for name, text in (("plain.jsonl", jsonl_bytes(ROWS)), ("plain.json", json.dumps(ROWS).encode())):
        (tmp_path / name).write_bytes(text)
        (tmp_path / f"bom{name[5:]}").write_bytes(codecs.BOM_UTF8 + text)
        assert read_preferences(tmp_path / f"bom{name[5:]}").rows == read_preferences(tmp_path / name).rows == expected
    assert read_records(tmp_path / "bom.jsonl") == list(zip(range(1, 5), ROWS))  # each with its line


# ------------------------------------------------------------------------------- 3, 4: CSV header and cells
def test_csv_column_named_twice(tmp_path):
    path = tmp_path / "twice.csv"
    path.write_text("prompt,chosen,rejected,user_id,chosen\np,a,b,u,c\n")
    with pytest.raises(DataError, match=r"twice\.csv: column 'chosen' appears twice in the header$"):
        read_preferences(path)


@pytest.mark.parametrize("sep", [";", "\t"])
def test_csv_of_another_separator_says_so(tmp_path, sep):
    """A ';'-separated file read as one column: "line 2, column 'prompt': missing column", of a header that starts
    with 'prompt'."""
    path = tmp_path / "semicolon.csv"
    path.write_text(sep.join(["prompt", "chosen", "rejected"]) + "\n" + sep.join("pab") + "\n")
    with pytest.raises(DataError, match=rf"semicolon\.csv: the header is one column, .*: its columns look separated "
                                        rf"by {re.escape(repr(sep))}; pluralign reads comma-separated CSV"):
        read_preferences(path)


def test_csv_empty_prompt_is_the_empty_prompt(tmp_path):
    path = tmp_path / "noprompt.csv"
    path.write_text('prompt,chosen,rejected\n"",a,b\n,c,d\n')
    assert [r["prompt"] for r in read_preferences(path).rows] == ["", ""]
    path.write_text('prompt,chosen,rejected\n,a,b\n,,d\n')  # an empty response is still missing
    with pytest.raises(DataError, match=r"noprompt\.csv, line 3, column 'chosen': missing value$"):
        read_preferences(path)
    embeddings = tmp_path / "emb.csv"  # an embedding row gets no text prompt from an empty cell
    embeddings.write_text('prompt,chosen_embedding,rejected_embedding\n,"[1, 2]","[2, 1]"\n')
    assert "prompt" not in read_preferences(embeddings).rows[0]


# -------------------------------------------------------------------------------------- 5, 6: user ids
def test_empty_user_id_is_no_user_id(tmp_path):
    rows = [{**ROWS[0], "user_id": ""}, {**ROWS[1], "user_id": "  "}, {**ROWS[2], "user_id": None}, ROWS[3]]
    write_jsonl(tmp_path / "d.jsonl", rows)
    data = read_preferences(tmp_path / "d.jsonl")
    assert data.column("user_id") == [None, None, None, "u1"] and data.user_ids == ["u1"]
    write_jsonl(tmp_path / "q.jsonl", [ROWS[0], {**ROWS[1], "user_id": "", "role": "query"}])
    with pytest.raises(DataError, match=r"q\.jsonl, line 2, column 'user_id': missing: a row with role 'query'"):
        read_preferences(tmp_path / "q.jsonl")


def test_float_user_ids_from_pandas_are_integers(tmp_path):
    import pandas as pd

    frame = pd.DataFrame(ROWS)
    frame["user_id"] = [0, 1, None, 12]  # pandas makes this a float column: 0.0, 1.0, NaN, 12.0
    frame["group"] = [1.5, 2.0, None, None]
    frame.to_parquet(tmp_path / "f.parquet")
    data = read_preferences(tmp_path / "f.parquet")
    assert data.column("user_id") == ["0", "1", None, "12"]
    assert data.column("group") == ["1.5", "2", None, None]


# ---------------------------------------------------------------------------------------- 7: the cache


@pytest.mark.parametrize("damage", ["shard", "index", "index_length"])
def test_damaged_cache_shard_is_dropped_and_embedded_again(tmp_path, caplog, damage):
    texts = ["alpha", "beta"]
    expected = EmbeddingCache(tmp_path).embed(texts, StandInEncoder())
    (shard,) = tmp_path.rglob("shard-*.safetensors")
    if damage == "shard":
        shard.write_bytes(b"\x00garbage, not safetensors")
    elif damage == "index":
        shard.with_suffix(".json").write_text('["abc", ')
    else:
        shard.with_suffix(".json").write_text('["only one hash"]')
    encoder = StandInEncoder()
    with caplog.at_level(logging.WARNING, logger="pluralign.data"):
        again = EmbeddingCache(tmp_path).embed(texts, encoder)
    assert torch.equal(again, expected) and encoder.encoded == texts
    (record,) = caplog.records
    assert f"{shard}: damaged embedding cache shard" in record.getMessage() and "\n" not in record.getMessage()
    assert not shard.exists()  # dropped; the texts are in a fresh shard, so a third run embeds nothing
    third = StandInEncoder()
    assert torch.equal(EmbeddingCache(tmp_path).embed(texts, third), expected) and third.encoded == []


# ------------------------------------------------------------------------------- 8: builder options
@pytest.mark.parametrize("name", sorted(BENCHMARKS))
@pytest.mark.parametrize("value", [0, -1.0, "abc", "inf", math.inf, math.nan, True])
def test_temperature_must_be_a_positive_finite_number(name, value):
    with pytest.raises(DataError, match=r"^'temperature' must be a positive finite number, got "):
        build_benchmark(name, temperature=value)


def test_dirichlet_alpha_and_numeric_strings():
    with pytest.raises(DataError, match=r"^'dirichlet_alpha' must be a positive finite number, got 0"):
        build_benchmark("dirichlet-mixture", dirichlet_alpha=0)
    sizes = dict(n_users=2, n_unseen_users=1, pairs_per_user=2, test_pairs_per_user=1)
    # --set reads values as YAML, which leaves 1e-3 a string
    as_text = build_benchmark("pets", temperature="1e-1", **sizes)
    assert as_text.train == build_benchmark("pets", temperature=0.1, **sizes).train
    # and so are fractions (they were refused: "must be a number in [0, 1], got '1e-1'")
    as_text = build_benchmark("pets", controversial_fraction="1e-1", **sizes)
    assert as_text.train == build_benchmark("pets", controversial_fraction=0.1, **sizes).train
    with pytest.raises(DataError, match=r"^'prompt_hints' must be a number in \[0, 1\], got '2e0'$"):
        build_benchmark("attributes", prompt_hints="2e0", **sizes)


def test_an_option_the_other_options_leave_unused_is_refused():
    """attributes' dirichlet_alpha with one attribute a user built the same data as without it, silently."""
    with pytest.raises(DataError, match=r"^dirichlet_alpha=3.0 applies only with user_mix='dirichlet' "):
        build_benchmark("attributes", dirichlet_alpha=3.0)


def test_a_draw_that_cannot_fill_the_rows_names_what_was_missing(monkeypatch):
    """The rows of the last draw allowed were never counted, and any shortfall was blamed on survey contexts."""
    from pluralign.data.synthetic import _common

    monkeypatch.setattr(_common, "MAX_SURVEY_DRAWS", 1)
    user = _common.User("x", "g", None)
    one = [_common.Candidate({"text": "a"}, {"text": "b"}, 0.7, False)]
    rng = _common.np.random.default_rng(0)
    assert len(_common._rows(rng, lambda *a: one, user, "train", 3, None)) == 3  # the third draw's row counts
    draws = iter([one, [], []])
    with pytest.raises(DataError, match=r"^1 of 3 pairs for user x after 3 draws: "):
        _common._rows(rng, lambda *a: next(draws), user, "train", 3, None)


def test_cli_temperature_zero_is_one_line(tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["data", "build", "pets", "--out", str(out), "--set", "temperature=0"]) == 2
    assert capsys.readouterr().err == "pluralign: error: 'temperature' must be a positive finite number, got 0\n"
    assert not out.exists()


# --------------------------------------------------------------------------------------- 9, 10: split
@pytest.fixture
def users() -> PreferenceSet:
    rows = [{"prompt": "p", "chosen": f"a{u}{i}", "rejected": f"b{u}{i}", "user_id": f"u{u}"}
            for u in range(4) for i in range(20)]
    return PreferenceSet.from_rows(rows, "users.jsonl")


@pytest.mark.parametrize("kwargs, message", [
    (dict(unseen_users=-1), r"^--unseen-users -1: must be 0 or more"),
    (dict(seed=-1), r"^--seed -1: must be a non-negative integer$"),
    (dict(stratify=True), r"^users\.jsonl: --stratify draws the unseen users group by group, but no row has a 'group'"),
])
def test_split_names_the_option(users, kwargs, message):
    with pytest.raises(DataError, match=message):
        split_by_user(users, n_context=8, **kwargs)


# --------------------------------------------------------------------------------------- 11: row numbers
def test_parquet_and_json_rows_count_from_one(tmp_path):
    import pandas as pd

    bad = [{**ROWS[0], "rejected": None}, *ROWS[1:]]
    pd.DataFrame(bad).to_parquet(tmp_path / "bad.parquet")
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    for name in ("bad.parquet", "bad.json"):  # the first data row is row 1, as the first JSONL line is line 1
        with pytest.raises(DataError, match=rf"{name}, row 1, column 'rejected': missing value"):
            read_preferences(tmp_path / name)


# --------------------------------------------------------------------------------------- 12: duplicates
def test_duplicated_rows_are_counted_in_one_warning(tmp_path, caplog):
    rows = [ROWS[0], ROWS[1], ROWS[0], {**ROWS[0], "user_id": "other"}, ROWS[1], ROWS[0]]
    write_jsonl(tmp_path / "d.jsonl", rows)
    with caplog.at_level(logging.WARNING, logger="pluralign.data"):
        data = read_preferences(tmp_path / "d.jsonl")
    assert len(data) == 6  # kept: real data has repeats
    (record,) = caplog.records
    assert record.getMessage() == (f"{tmp_path / 'd.jsonl'}: 3 repeated row(s) (50.0%; same user_id, prompt, chosen "
                                   "and rejected), kept as repeated judgements; the first is line 3, a repeat of line "
                                   "1 (drop them if they are copies)")
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="pluralign.data"):  # read again (a bench does): said once
        read_preferences(tmp_path / "d.jsonl")
    assert [r.levelno for r in caplog.records] == [logging.DEBUG] and "3 repeated row(s)" in caplog.text
    caplog.clear()
    write_jsonl(tmp_path / "once.jsonl", ROWS)
    with caplog.at_level(logging.WARNING, logger="pluralign.data"):
        read_preferences(tmp_path / "once.jsonl")
    assert not caplog.records
    # a repeat or two among many rows (the synthetic benchmarks draw pairs at random) is no warning
    many = [{**ROWS[0], "prompt": f"p{i}"} for i in range(150)] + [{**ROWS[0], "prompt": "p0"}]
    write_jsonl(tmp_path / "many.jsonl", many)
    with caplog.at_level(logging.DEBUG, logger="pluralign.data"):
        read_preferences(tmp_path / "many.jsonl")
    assert [r.levelno for r in caplog.records] == [logging.DEBUG] and "1 repeated row(s)" in caplog.text
    caplog.clear()  # a file without users: the repeat is of prompt, chosen and rejected, no user_id to name
    write_jsonl(tmp_path / "no_users.jsonl", [{k: v for k, v in ROWS[1].items() if k != "user_id"}] * 2)
    with caplog.at_level(logging.WARNING, logger="pluralign.data"):
        read_preferences(tmp_path / "no_users.jsonl")
    assert "(50.0%; same prompt, chosen and rejected)" in caplog.text


# ------------------------------------------------------------------------------------------ CSV, more
def test_csv_line_ends_of_every_kind_and_csv_errors(tmp_path, monkeypatch):
    """Classic Mac line ends (Excel's "CSV (Macintosh)") still read; a 200,000-character cell reads, as in JSONL
    (the csv module's 131,072 limit is lifted while reading, then restored); the csv module's own errors are one
    line (a cell over the lifted limit, made small here)."""
    import csv

    from pluralign.data import readers

    mac = tmp_path / "mac.csv"
    mac.write_bytes((HEADER + CSV_BODY).replace("\n", "\r").encode())
    (tmp_path / "unix.csv").write_text(HEADER + CSV_BODY)
    assert read_preferences(mac).rows == read_preferences(tmp_path / "unix.csv").rows
    huge = tmp_path / "huge.csv"
    huge.write_text(HEADER + CSV_BODY + f'p,"{"x" * 200_000}",b,u0\n')
    before = csv.field_size_limit()
    assert read_preferences(huge).rows[-1]["chosen"] == "x" * 200_000 and csv.field_size_limit() == before
    monkeypatch.setattr(readers, "CSV_CELL_LIMIT", 100_000)
    with pytest.raises(DataError, match=r"huge\.csv, line 6: not valid CSV \(field larger than field limit"):
        read_preferences(huge)
    assert csv.field_size_limit() == before
