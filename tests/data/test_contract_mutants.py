"""The data contract's finer rules, each pinned by hand: what test_contract.py and test_bad_files.py leave open."""

from __future__ import annotations

import logging

import pytest

from pluralign.data.contract import DataError, PreferenceSet, messages_to_text, validate_rows, warn_duplicates

TEXT = {"prompt": "p", "chosen": "a", "rejected": "b"}


def test_a_message_without_a_role_is_the_users() -> None:
    """Chat messages join as "role: content" lines; a message that names no role is the user's."""
    messages = [{"content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert messages_to_text(messages) == "user: hi\nassistant: hello"


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_oracle_p_may_be_zero_or_one(p: float) -> None:
    """[0, 1] is closed: a deterministic oracle (0 or 1) is a probability, only what lies outside is an error."""
    assert validate_rows([{**TEXT, "oracle_p": p}])[0]["oracle_p"] == p
    with pytest.raises(DataError, match=r"row 1, column 'oracle_p': a probability must lie in \[0, 1\], got -0.1"):
        validate_rows([{**TEXT, "oracle_p": -0.1}])


@pytest.mark.parametrize("flag, expected", [(True, True), (False, False), (1, True), (0, False), ("true", True),
                                            ("false", False), ("True", True), ("False", False)])
def test_controversial_spellings(flag, expected: bool) -> None:
    """Every spelling the contract accepts reads as the boolean it says (CSV cells arrive as 'True'/'False')."""
    assert validate_rows([{**TEXT, "controversial": flag}])[0]["controversial"] is expected
    with pytest.raises(DataError, match="column 'controversial': expected true or false, got 'yes'"):
        validate_rows([{**TEXT, "controversial": "yes"}])


def test_identical_embeddings_are_an_error() -> None:
    """A pair whose two responses are the same vector says nothing (as identical texts, which are refused)."""
    with pytest.raises(DataError, match=r"^e\.jsonl, row 1, column 'rejected_embedding': chosen and rejected "
                                        r"embeddings are identical$"):
        validate_rows([{"chosen_embedding": [1.0, 2.0], "rejected_embedding": [1.0, 2.0]}], "e.jsonl")


def test_chosen_and_rejected_embeddings_share_one_length() -> None:
    """Both responses of a row live in one space: a rejected vector of another length than the chosen one of the
    same row is an error; the prompt's vectors are a space of their own and may differ in length."""
    with pytest.raises(DataError, match=r"row 1, column 'rejected_embedding': embedding has length 3"):
        validate_rows([{"chosen_embedding": [1.0, 2.0], "rejected_embedding": [1.0, 2.0, 3.0]}], "e.jsonl")
    rows = validate_rows([{"prompt_embedding": [1.0, 0.0, 0.0], "chosen_embedding": [1.0, 2.0],
                           "rejected_embedding": [2.0, 1.0]}])
    assert len(rows[0]["prompt_embedding"]) == 3 and len(rows[0]["chosen_embedding"]) == 2


def test_embedding_rows_repeat_only_when_their_vectors_do() -> None:
    """Repeats are keyed by the vectors' values, not only their length: of three rows with vectors of one
    length, only the exact copy is a repeat."""
    a = {"chosen_embedding": [1.0, 2.0], "rejected_embedding": [2.0, 1.0], "user_id": "u"}
    b = {"chosen_embedding": [3.0, 4.0], "rejected_embedding": [4.0, 3.0], "user_id": "u"}
    assert warn_duplicates(validate_rows([a, b, dict(a)])) == 1
    assert warn_duplicates(validate_rows([a, b])) == 0


def test_repeats_warn_past_one_percent(caplog) -> None:
    """2 repeats in 101 rows (2.0%) are a warning; 1 in 101 (1.0%, not past 1%) only a debug line."""
    distinct = [{**TEXT, "prompt": f"p{i}"} for i in range(99)]
    with caplog.at_level(logging.DEBUG, logger="pluralign.data"):
        assert warn_duplicates(distinct + [distinct[0], distinct[1]], "two.jsonl") == 2
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="pluralign.data"):
        assert warn_duplicates(distinct + [{**TEXT, "prompt": "p99"}, distinct[0]], "one.jsonl") == 1
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]


def test_subset_keeps_rows_and_names_its_source() -> None:
    """A subset by index or by predicate holds those rows, its source the parent's with the suffix, a copy of the meta."""
    from pluralign.data.contract import PreferenceSet

    data = PreferenceSet.from_rows([{**TEXT, "user_id": u} for u in "xyx"], "d.jsonl")
    data.meta["k"] = 1
    part = data.subset([2, 0], ":held")
    assert part.source == "d.jsonl:held" and part.column("user_id") == ["x", "x"] and part.rows[0] is data.rows[2]
    part.meta["k"] = 2
    assert data.meta == {"k": 1}
    assert data.subset(lambda r: r["user_id"] == "y").source == "d.jsonl"


def test_rows_that_spell_the_user_column_otherwise_are_named(caplog) -> None:
    """Two files merged: rows 1–2 say user_id, rows 3–4 userid, row 5 annotator. The last three go without a user
    (the contract has no such columns): a warning names the count and the column, where one was given only when
    no row had user_id. A look-alike beside a user_id in the same row says nothing."""
    from pluralign.data.contract import PreferenceSet

    rows = [{**TEXT, "user_id": "a"}, {**TEXT, "user_id": "b"}, {**TEXT, "userid": "c"}, {**TEXT, "userid": "d"},
            {**TEXT, "annotator": "e"}, {**TEXT, "user_id": "f", "annotator": "f"}]
    with caplog.at_level(logging.WARNING, logger="pluralign.data"):
        data = PreferenceSet.from_rows(rows, "merged.jsonl")
    assert data.column("user_id") == ["a", "b", None, None, None, "f"]
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "merged.jsonl: 2 row(s) have 'userid' but no 'user_id'",
        "merged.jsonl: 1 row(s) have 'annotator' but no 'user_id'"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pluralign.data"):
        PreferenceSet.from_rows([{**TEXT, "annotator": "e"}], "one.jsonl")  # no row has user_id: the old warning
    assert caplog.messages == [
        "one.jsonl: column 'annotator' is not in the contract (did you mean 'user_id'?); ignored"]


def test_user_ids_that_spell_a_missing_value_are_named(caplog) -> None:
    """'nan' and 'NA' (pandas' astype(str), R's write.csv) would make one large user of every anonymous row: kept
    as ids (someone may be "NA"), but named with their counts."""
    from pluralign.data.contract import PreferenceSet

    rows = [{**TEXT, "user_id": u} for u in ("NA", "NA", "nan", "alice")]
    with caplog.at_level(logging.WARNING, logger="pluralign.data"):
        assert PreferenceSet.from_rows(rows, "na.csv").user_ids == ["NA", "nan", "alice"]
    assert caplog.messages == ["na.csv: 2 row(s) have user_id 'NA', 1 row(s) have user_id 'nan': a missing value "
                               "written as text (pandas' astype(str), R's write.csv)? They are read as user ids; leave "
                               "the cell empty or null for no user"]


def test_subset_reads_a_mask_and_refuses_what_is_no_row() -> None:
    """A list of bools is a mask (True, False, True: rows 0 and 2), not the indices 1, 0, 1; numpy masks and
    integers read the same. A mask of another length, a negative index (from the end elsewhere) and one past the
    last row are refused with the source named."""
    import numpy as np

    from pluralign.data.contract import PreferenceSet

    data = PreferenceSet.from_rows([{**TEXT, "user_id": u} for u in "xyz"], "d.jsonl")
    for mask in ([True, False, True], np.array([True, False, True])):
        assert data.subset(mask).column("user_id") == ["x", "z"]
    assert data.subset(np.array([2, 1])).column("user_id") == ["z", "y"]
    assert data.subset([np.int64(1)]).column("user_id") == ["y"]
    assert len(data.subset([])) == 0
    for keep, message in (([True, False], "a mask of 2 bools for 3 rows"), ([-1], "index -1 is not a row"),
                          ([3], "index 3 is not a row \\(0 to 2\\)"), ([0, True], "index True is not a row")):
        with pytest.raises(DataError, match=f"^d\\.jsonl: subset (got )?{message}"):
            data.subset(keep)


def test_a_boolean_user_id_is_refused() -> None:
    """``"user_id": true`` is a column mix-up, not user "True"; a boolean group (a minority flag) is a group."""
    with pytest.raises(DataError, match=r"^x\.jsonl, row 1, column 'user_id': expected a string id, got bool$"):
        PreferenceSet.from_rows([{"prompt": "p", "chosen": "a", "rejected": "b", "user_id": True}], "x.jsonl")
    data = PreferenceSet.from_rows([{"prompt": "p", "chosen": "a", "rejected": "b", "user_id": "u", "group": False}])
    assert data.column("group") == ["False"]
