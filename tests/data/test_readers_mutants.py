"""Readers' finer rules, each pinned by hand: what test_readers.py and test_bad_files.py leave open."""

from __future__ import annotations

import json

import pytest

from pluralign.data import DataError, read_preferences
from pluralign.data.readers import read_candidates
from pluralign.io import write_jsonl

ROWS = [{"prompt": "p1", "chosen": "a", "rejected": "b", "user_id": "u1"},
        {"prompt": "p2", "chosen": "c", "rejected": "d", "user_id": "u2"}]


def test_a_json_object_with_a_data_list_is_read_as_that_list(tmp_path) -> None:
    """``{"data": [...]}`` (how some exports wrap records) reads as the list; any other object is an error."""
    (tmp_path / "wrapped.json").write_text(json.dumps({"data": ROWS, "version": 1}))
    assert read_preferences(tmp_path / "wrapped.json").rows == ROWS
    (tmp_path / "object.json").write_text(json.dumps({"rows": ROWS}))
    with pytest.raises(DataError, match=r"object\.json: expected a JSON list of records$"):
        read_preferences(tmp_path / "object.json")


def test_a_csv_attributes_cell_that_is_not_json_names_its_line(tmp_path) -> None:
    """A structured cell (attributes, as embeddings) that starts like JSON but does not parse is named as such."""
    path = tmp_path / "attributes.csv"
    path.write_text('prompt,chosen,rejected,chosen_attributes\np,a,b,"{""x"": 1.0}"\np,c,d,"{""x"": 1"\n')
    with pytest.raises(DataError, match=r"attributes\.csv, line 3, column 'chosen_attributes': cell is not valid JSON$"):
        read_preferences(path)
    path.write_text('prompt,chosen,rejected,chosen_attributes\np,a,b,"{""x"": 1.0}"\n')
    assert read_preferences(path).rows[0]["chosen_attributes"] == {"x": 1.0}


def test_candidate_user_ids_read_as_training_rows_do(tmp_path) -> None:
    """An integer-valued float id (pandas' integers with nulls) is that integer, as validate_rows reads it; an empty
    or blank id is no user, so the record gets no user_id."""
    path = tmp_path / "c.jsonl"
    write_jsonl(path, [{"prompt": "p", "responses": ["a"], "user_id": 3.0},
                       {"prompt": "p", "responses": ["a"], "user_id": "  "},
                       {"prompt": "p", "responses": ["a"], "user_id": ""},
                       {"prompt": "p", "responses": ["a"], "user_id": "u7"}])
    assert read_candidates(path) == [{"prompt": "p", "responses": ["a"], "user_id": "3"},
                                     {"prompt": "p", "responses": ["a"]},
                                     {"prompt": "p", "responses": ["a"]},
                                     {"prompt": "p", "responses": ["a"], "user_id": "u7"}]


def test_not_utf8_column_counts_characters_not_bytes(tmp_path) -> None:
    """'ü' is two bytes but one character: the stray byte after "üü" is at column 3, as an editor shows it."""
    path = tmp_path / "umlaut.jsonl"
    path.write_bytes(json.dumps(ROWS[0]).encode() + b"\n" + "üü".encode() + b"\xff\n")
    with pytest.raises(DataError, match=r"umlaut\.jsonl, line 2: not UTF-8 text \(byte 0xff at column 3\)"):
        read_preferences(path)
    whole = tmp_path / "umlaut.json"  # read whole, the line and its column are found the same way
    whole.write_bytes(b"[\n" + "  üü".encode() + b"\xff\n]")
    with pytest.raises(DataError, match=r"umlaut\.json, line 2: not UTF-8 text \(byte 0xff at column 5\)"):
        read_preferences(whole)


def test_a_folder_prefers_jsonl_to_the_other_formats(tmp_path, caplog) -> None:
    """A folder holding train.jsonl and train.json (a stray export) is read from the JSONL file, what
    ``pluralign data build`` writes, and says so (the other was left without a word)."""
    write_jsonl(tmp_path / "train.jsonl", ROWS[:1])
    (tmp_path / "train.json").write_text(json.dumps(ROWS[1:]))
    with caplog.at_level("WARNING", logger="pluralign"):
        assert read_preferences(tmp_path).rows == ROWS[:1]
    assert caplog.messages == [f"{tmp_path}: train.jsonl and train.json each hold the train split; reading train.jsonl "
                               "(give the file itself to read another)"]


def test_a_folder_whose_split_is_a_broken_link_or_a_folder(tmp_path) -> None:
    """Named as what it is, not "directory holds no train.jsonl" (or that message about the wrong folder)."""
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "train.jsonl").symlink_to(tmp_path / "gone.jsonl")
    with pytest.raises(DataError, match=r"linked/train\.jsonl: a link to .*gone\.jsonl, which does not exist$"):
        read_preferences(tmp_path / "linked", split="train")
    (tmp_path / "nested" / "train.jsonl").mkdir(parents=True)
    with pytest.raises(DataError, match=r"nested/train\.jsonl: is a folder; expected the train split's file$"):
        read_preferences(tmp_path / "nested", split="train")


def test_in_memory_tables_and_what_is_not_one() -> None:
    """A DataFrame, a DatasetDict (its split), a Dataset and one record are rows; anything else is a TypeError
    listing what is, not an AttributeError from deep inside."""
    import datasets
    import pandas as pd

    assert read_preferences(pd.DataFrame(ROWS)).rows == ROWS
    both = datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS),
                                 "test": datasets.Dataset.from_list(ROWS[:1])})
    assert len(read_preferences(both)) == 2 and len(read_preferences(both, split="test")) == 1
    assert read_preferences(ROWS[0]).rows == ROWS[:1]
    for wrong in ((1, 2), None, 5):
        with pytest.raises(TypeError, match=r"^expected preference rows: a path, a list of dicts, .*; got "):
            read_preferences(wrong)


def test_embedding_rows_among_text_rows_are_named() -> None:
    rows = [{"prompt": "p", "chosen": "a", "rejected": "b"},
            {"chosen_embedding": [1.0, 0.0], "rejected_embedding": [0.0, 1.0]}]
    with pytest.raises(DataError, match=r"^<rows>, row 2, column 'chosen_embedding': embeddings, but the first row "
                                        r"has text; one kind of row per set$"):
        read_preferences(rows)
