import json
import re

import numpy as np
import pytest

from pluralign.data import DataError, read_preferences
from pluralign.data.readers import read_candidates
from pluralign.io import write_jsonl

ROWS = [
    {"prompt": "p1", "chosen": "a", "rejected": "b", "user_id": "u1", "margin": 1.0, "chosen_attributes": None},
    {"prompt": "p2", "chosen": "c", "rejected": "d", "user_id": "u2", "margin": None, "chosen_attributes": {"x": 1.0}},
]


def test_jsonl_csv_parquet_and_datasets_agree(tmp_path):
    import datasets
    import pandas as pd

    write_jsonl(tmp_path / "d.jsonl", ROWS)
    frame = pd.DataFrame(ROWS)
    frame["chosen_attributes"] = [None, json.dumps({"x": 1.0})]
    frame.to_csv(tmp_path / "d.csv", index=False)
    pd.DataFrame(ROWS).to_parquet(tmp_path / "d.parquet")
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "saved"))
    expected = read_preferences(tmp_path / "d.jsonl").rows
    assert expected[1]["chosen_attributes"] == {"x": 1.0}
    for source in ("d.csv", "d.parquet", "saved"):
        got = read_preferences(tmp_path / source).rows
        assert [{k: v for k, v in r.items()} for r in got] == expected, source
    assert read_preferences(datasets.Dataset.from_list(ROWS)).rows == expected


def test_a_damaged_saved_dataset_is_one_line_naming_the_folder(tmp_path):
    """state.json overwritten: json's bare "Expecting property name ..." named no file."""
    import datasets

    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "saved"))
    (tmp_path / "saved" / "state.json").write_text("{broken")
    with pytest.raises(DataError, match=rf"^{tmp_path / 'saved'}: cannot read the saved dataset \(Expecting "
                                        r"property name .*\); a damaged or partial copy\?$"):
        read_preferences(tmp_path / "saved")


def test_directory_split(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", ROWS[:1])
    write_jsonl(tmp_path / "test.jsonl", ROWS[1:])
    assert read_preferences(tmp_path, "test").rows[0]["prompt"] == "p2"


def test_bad_json_line_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n{not json}\n")
    with pytest.raises(DataError, match=r"bad.jsonl, line 2: invalid JSON"):
        read_preferences(path)
    # a record cut short at the end of its line: the column past its last character (it said "column 1")
    path.write_text('{"prompt": "x", "chosen": "a"\r\n')
    with pytest.raises(DataError, match=r"bad.jsonl, line 1: invalid JSON \(Expecting ',' delimiter at column 30\)$"):
        read_preferences(path)


def test_file_errors_name_the_line_an_editor_shows(tmp_path):
    jsonl = tmp_path / "blank.jsonl"
    jsonl.write_text(json.dumps(ROWS[0]) + "\n\n" + json.dumps({"prompt": "p", "chosen": "a"}) + "\n")
    with pytest.raises(DataError, match=r"^.*blank\.jsonl, line 3, column 'rejected': missing column"):
        read_preferences(jsonl)
    csv_file = tmp_path / "cells.csv"  # header, a good row, a quoted cell over two lines, then an empty cell
    csv_file.write_text('prompt,chosen,rejected\np,a,b\np,"two\nlines",b\np,,b\n')
    with pytest.raises(DataError, match=r"cells\.csv, line 5, column 'chosen': missing value$"):
        read_preferences(csv_file)


def test_csv_row_with_too_few_or_too_many_cells(tmp_path):
    short = tmp_path / "short.csv"
    short.write_text("prompt,chosen,rejected,user_id\np,a,b,u1\np,a\n")
    with pytest.raises(DataError, match=r"short\.csv, line 3, column 'rejected': row ends before column 'rejected' \(2 of 4"):
        read_preferences(short)
    long = tmp_path / "long.csv"
    long.write_text("prompt,chosen,rejected\np,a,b\np,a,b,x,y\n")
    with pytest.raises(DataError, match=r"long\.csv, line 3: 5 cells, the header has 3$"):
        read_preferences(long)


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_preferences(tmp_path / "nope.jsonl")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataError, match="unknown format"):
        read_preferences(tmp_path / "x.txt")


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    def rows():
        yield ROWS[0]
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_jsonl(tmp_path / "out.jsonl", rows())
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        write_jsonl(tmp_path / "new.jsonl", ROWS)  # not mkstemp's owner-only 0600
        assert stat.S_IMODE((tmp_path / "new.jsonl").stat().st_mode) == 0o644
        os.chmod(tmp_path / "new.jsonl", 0o640)
        write_jsonl(tmp_path / "new.jsonl", ROWS)  # a replaced file keeps its mode
        assert stat.S_IMODE((tmp_path / "new.jsonl").stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_check_output_stops_before_work(tmp_path, monkeypatch):
    from pluralign.io import check_output

    blocker = tmp_path / "file"
    blocker.write_text("x")
    check_output(tmp_path / "new" / "deeper" / "out.json")  # missing folders are made later: fine
    check_output(tmp_path / "run", folder=True)
    with pytest.raises(ValueError, match=r"^--out .*file: is a file; expected a folder$"):
        check_output(blocker, folder=True)
    with pytest.raises(ValueError, match=r"is a folder; expected a file$"):
        check_output(tmp_path)
    with pytest.raises(ValueError, match=r"file is a file, not a folder$"):
        check_output(blocker / "a" / "out.json")
    monkeypatch.setattr("os.access", lambda path, mode: False)  # as a non-root user sees a read-only folder
    with pytest.raises(ValueError, match=rf"^--run {tmp_path / 'run'}: {tmp_path} is not writable$"):
        check_output(tmp_path / "run", folder=True, flag="--run")


def test_read_candidates_and_where_they_go_wrong(tmp_path):
    good = tmp_path / "c.jsonl"
    chat = {"prompt": [{"role": "user", "content": "hi"}], "responses": ["a", {"role": "assistant", "content": "b"}]}
    write_jsonl(good, [{**chat, "user_id": 7}, {"prompt": "p", "responses": ["c"]}])
    assert read_candidates(good) == [{"prompt": "hi", "responses": ["a", "b"], "user_id": "7"},
                                     {"prompt": "p", "responses": ["c"]}]
    cases = [({"prompt": "p", "responses": []}, "line 2, column 'responses': expected a non-empty list"),
             ({"prompt": "p", "responses": "a"}, "line 2, column 'responses': expected a non-empty list"),
             ({"responses": ["a"]}, "line 2, column 'prompt': missing"),
             ({"prompt": "p", "responses": ["a", None]}, "line 2, column 'responses[1]': missing"),
             ({"prompt": "p", "responses": [{"role": "user"}]}, "column 'responses[0]': message 1 has no content"),
             ({"prompt": "p", "responses": [3]}, "column 'responses[0]': expected a string or"),
             ({"prompt": "p", "responses": ["a"], "user_id": [1]}, "column 'user_id': expected a string id"),
             ({"prompt": "p", "responses": ["a"], "user_id": True}, "column 'user_id': expected a string id, got bool"),
             ({"prompt": "p", "responses": ["a", " "]}, "line 2, column 'responses[1]': empty text")]
    for record, message in cases:
        bad = tmp_path / "bad.jsonl"
        write_jsonl(bad, [{"prompt": "ok", "responses": ["ok"]}, record])
        with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
            read_candidates(bad)
    (tmp_path / "c.csv").write_text("prompt,responses\np,a\n")
    with pytest.raises(DataError, match="read from .jsonl, .json or .parquet"):
        read_candidates(tmp_path / "c.csv")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no candidates"):
        read_candidates(tmp_path / "empty.jsonl")



# ------------------------------------------------------------------ one-line errors for broken files and tables
def test_invalid_json_file_names_the_file_and_line(tmp_path) -> None:
    """A .json file cut off while it was edited: its file and line, not json's traceback."""
    path = tmp_path / "prefs.json"
    path.write_text('[{"prompt": "p",\n  "chosen": }]\n')
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: invalid JSON \(Expecting value at line 2, column 13\)$"):
        read_preferences(path)


def test_a_corrupt_parquet_file_is_one_line(tmp_path) -> None:
    """Bytes that are not Parquet under a .parquet name (a failed download): one line naming the file."""
    path = tmp_path / "data.parquet"
    path.write_bytes(b"not a parquet file at all")
    with pytest.raises(DataError) as err:
        read_preferences(path)
    assert re.fullmatch(rf"{re.escape(str(path))}: cannot read Parquet \(.+\)", str(err.value))  # . is not \n


def test_a_dataset_dict_without_the_split_lists_its_splits() -> None:
    """read_preferences(dataset_dict, split="validation") on a DatasetDict holding train and test."""
    import datasets

    both = datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS), "test": datasets.Dataset.from_list(ROWS)})
    with pytest.raises(DataError, match=r"^dataset has no split 'validation' \(has \['test', 'train'\]\)$"):
        read_preferences(both, split="validation")


def test_a_saved_dataset_folder_without_the_split_is_named(tmp_path) -> None:
    """A DatasetDict saved with save_to_disk and read for a split it does not hold: the folder is named."""
    import datasets

    folder = tmp_path / "saved"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS)}).save_to_disk(str(folder))
    with pytest.raises(DataError, match=rf"^{re.escape(str(folder))}: dataset has no split 'test' "
                                        r"\(has \['train'\]\)$"):
        read_preferences(folder, split="test")


def test_a_parquet_error_of_several_lines_is_kept_to_its_first(tmp_path) -> None:
    """pyarrow's message for a file with Parquet's magic bytes around garbage ends in a newline and more."""
    import struct

    path = tmp_path / "z.parquet"
    path.write_bytes(b"PAR1" + b"\0" * 64 + struct.pack("<I", 64) + b"PAR1")
    with pytest.raises(DataError) as err:
        read_preferences(path)
    assert "\n" not in str(err.value) and str(err.value).startswith(f"{path}: cannot read Parquet (")


def test_a_candidate_that_is_not_a_record_names_its_row_or_line(tmp_path) -> None:
    """pluralign rank's candidates holding a bare string or list among the records."""
    as_json = tmp_path / "c.json"
    as_json.write_text(json.dumps([{"prompt": "p", "responses": ["a"]}, "a response"]))
    with pytest.raises(DataError, match=rf"^{re.escape(str(as_json))}, row 2: expected a record with 'prompt' and "
                                        r"'responses', got str$"):
        read_candidates(as_json)
    as_jsonl = tmp_path / "c.jsonl"
    as_jsonl.write_text('{"prompt": "p", "responses": ["a"]}\n\n["p", "a", "b"]\n')
    with pytest.raises(DataError, match=rf"^{re.escape(str(as_jsonl))}, line 3: expected a record with 'prompt' "
                                        r"and 'responses', got list$"):
        read_candidates(as_jsonl)


def test_a_csv_text_that_starts_like_json_stays_text(tmp_path) -> None:
    """A prompt or response cell such as "[draft] ..." or "{name} ..." is tried as JSON (chat messages are JSON in
    CSV) and, not being JSON, read as the text it is; an embedding cell that is not JSON is an error."""
    path = tmp_path / "texts.csv"
    path.write_text('prompt,chosen,rejected\n[draft] a poem,{name} thanks you,"[1, 2"\n')
    row = read_preferences(path).rows[0]
    assert (row["prompt"], row["chosen"], row["rejected"]) == ("[draft] a poem", "{name} thanks you", "[1, 2")
    bad = tmp_path / "vectors.csv"
    bad.write_text('chosen_embedding,rejected_embedding\n"[1, 2","[3, 4]"\n')
    with pytest.raises(DataError, match=rf"^{re.escape(str(bad))}, line 2, column 'chosen_embedding': cell is not "
                                        r"valid JSON$"):
        read_preferences(bad)


def test_a_csv_text_that_is_json_but_not_chat_messages_stays_text(tmp_path) -> None:
    """"[1, 2, 3]", '{"a": 1}' or "[]" in a text cell: a code or JSON answer, kept as written (once refused as
    not chat messages, and "[]" read as the empty prompt); a cell of messages is still read as messages."""
    path = tmp_path / "json.csv"
    path.write_text('prompt,chosen,rejected\n[],"[1, 2, 3]","{""a"": 1}"\n'
                    'q,"[{""role"": ""assistant"", ""content"": ""hi""}]",no\n'
                    'r,"{""content"": ""Hello"", ""lang"": ""en""}","[{""role"": ""admin"", ""name"": ""bob""}]"\n')
    rows = read_preferences(path).rows
    assert (rows[0]["prompt"], rows[0]["chosen"], rows[0]["rejected"]) == ("[]", "[1, 2, 3]", '{"a": 1}')
    assert rows[1]["chosen"] == "hi"
    # JSON with a content or a role but not a message's shape: an answer written as JSON (was "Hello", and refused)
    assert (rows[2]["chosen"], rows[2]["rejected"]) == ('{"content": "Hello", "lang": "en"}',
                                                       '[{"role": "admin", "name": "bob"}]')


def test_a_lone_cr_in_a_jsonl_line_is_whitespace(tmp_path) -> None:
    """JSON allows a CR between tokens; only CSV reads a lone CR as a line end (Excel's "CSV (Macintosh)")."""
    path = tmp_path / "cr.jsonl"
    path.write_bytes(b'{"prompt": "p",\r"chosen": "a", "rejected": "b"}\n'
                     b'{"prompt": "q", "chosen": "c", "rejected": "d"}\n')
    assert [r["chosen"] for r in read_preferences(path).rows] == ["a", "c"]


def test_a_control_character_in_a_jsonl_string_reads_once(tmp_path) -> None:
    """json's own message ends in "at": it read "Invalid control character at at char 15". The column counts from 1,
    as an editor does (json's char offset counts from 0)."""
    path = tmp_path / "tab.jsonl"
    path.write_text('{"prompt": "a\tb", "chosen": "a", "rejected": "b"}\n')
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}, line 1: invalid JSON \(Invalid control "
                                        r"character at column 14\)$"):
        read_preferences(path)


def test_a_repeated_csv_header_is_named(tmp_path) -> None:
    """Exports joined with their headers: the second header line is refused, not read as the pair of user
    "user_id" whose prompt is "prompt"."""
    path = tmp_path / "joined.csv"
    path.write_text("prompt,chosen,rejected,user_id\np,a,b,1\nprompt,chosen,rejected,user_id\np,c,b,2\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}, line 3: the header again \(files joined with "
                                        r"their headers\?\); remove this line$"):
        read_preferences(path)


def test_a_saved_dataset_without_splits_is_its_train_split_alone(tmp_path) -> None:
    """A Dataset (not a DatasetDict) saved to a folder: read as train, refused as test (eval once scored the
    training rows), as a folder holding train.jsonl alone is."""
    import datasets

    folder = tmp_path / "saved"
    datasets.Dataset.from_list(ROWS).save_to_disk(str(folder))
    assert len(read_preferences(folder)) == len(ROWS)
    with pytest.raises(DataError, match=rf"^{re.escape(str(folder))}: a saved Dataset with no splits, read as the "
                                        r"train split; it has no test split \(save a DatasetDict\)$"):
        read_preferences(folder, split="test")



def test_a_dict_of_columns_is_read_as_its_rows() -> None:
    """``fit({"prompt": [...], "chosen": [...], ...})`` (Dataset.from_dict's input) was read as one row whose prompt
    is a list; one record, chat messages or an embedding included, stays one row."""
    columns = {"prompt": ["p", "q"], "chosen": ["a", "b"], "rejected": ["c", "d"], "user_id": [1, 2]}
    data = read_preferences(columns)
    assert data.column("chosen") == ["a", "b"] and data.user_ids == ["1", "2"]
    message = {"prompt": "p", "chosen": [{"role": "assistant", "content": "a"}], "rejected": "c"}
    assert len(read_preferences(message)) == 1
    assert len(read_preferences({"chosen_embedding": [0.0, 1.0], "rejected_embedding": [1.0, 0.0]})) == 1
    assert len(read_preferences({"chosen_embedding": [[0.0, 1.0]] * 3, "rejected_embedding": [[1.0, 0.0]] * 3})) == 3
    with pytest.raises(DataError, match=r"^a dict of columns needs one list per column, all as long "
                                        r"\(prompt has 1, chosen has 2, rejected has 2\)$"):
        read_preferences({"prompt": ["p"], "chosen": ["a", "b"], "rejected": ["c", "d"]})
    # numpy columns (an [N, D] embedding array, df[col].values) are the lists they hold: they were one record
    arrays = {"chosen_embedding": np.eye(3), "rejected_embedding": np.ones((3, 3)), "user_id": np.array([1, 2, 1])}
    data = read_preferences(arrays)
    assert len(data) == 3 and data.rows[1]["chosen_embedding"] == [0.0, 1.0, 0.0] and data.user_ids == ["1", "2"]
    assert len(read_preferences({"chosen_embedding": np.eye(3)[0], "rejected_embedding": np.ones(3)})) == 1
    # records as a tuple or a generator are the list they hold ("expected preference rows ... got tuple")
    records = [{"prompt": "p", "chosen": "a", "rejected": "b"}] * 2
    as_list = read_preferences(records).rows
    assert len(as_list) == 2 and read_preferences(tuple(records)).rows == as_list
    assert read_preferences(r for r in records).rows == as_list
