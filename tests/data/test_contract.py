import math

import pytest

from pluralign.data.contract import DataError, PreferenceSet, messages_to_text, validate_rows


def test_chat_messages_become_text():
    rows = validate_rows([{
        "prompt": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        "chosen": [{"role": "assistant", "content": "good"}],
        "rejected": "bad",
    }])
    assert rows[0]["prompt"] == "user: hi\nassistant: hello"
    assert rows[0]["chosen"] == "good"
    assert messages_to_text("plain") == "plain"


@pytest.mark.parametrize("row, column, message", [
    ({"chosen": "a", "rejected": "b"}, "prompt", "missing column"),
    ({"prompt": "p", "chosen": "  ", "rejected": "b"}, "chosen", "empty text"),
    ({"prompt": "p", "chosen": "same", "rejected": "same"}, "rejected", "identical"),
    ({"prompt": "p", "chosen": "a", "rejected": "b", "margin": math.nan}, "margin", None),
    ({"prompt": "p", "chosen": "a", "rejected": "b", "oracle_p": 1.5}, "oracle_p", "[0, 1]"),
    ({"prompt": "p", "chosen": "a", "rejected": "b", "user_id": "u", "role": "train"}, "role", "unknown role"),
    ({"prompt": "p", "chosen": "a", "rejected": "b", "role": "query"}, "user_id", "needs a user_id"),
    ({"chosen_embedding": [1.0, math.nan], "rejected_embedding": [0.0, 1.0]}, "chosen_embedding", "finite"),
    ({"chosen_embedding": [1.0, 2.0]}, "rejected_embedding", "both"),
])
def test_errors_name_file_row_and_column(row, column, message):
    good = {"prompt": "p", "chosen": "x", "rejected": "y"} if "chosen" in row else {
        "chosen_embedding": [1.0, 2.0], "rejected_embedding": [2.0, 1.0]}
    with pytest.raises(DataError) as err:
        validate_rows([good, row], "prefs.jsonl")
    text = str(err.value)
    assert text.startswith(f"prefs.jsonl, row 2, column '{column}'")
    if message:
        assert message in text
    assert "\n" not in text


def test_embedding_length_mismatch():
    rows = [{"chosen_embedding": [1.0, 2.0], "rejected_embedding": [0.0, 1.0]},
            {"chosen_embedding": [1.0, 2.0, 3.0], "rejected_embedding": [0.0, 1.0, 2.0]}]
    with pytest.raises(DataError, match=r"row 2, column 'chosen_embedding': embedding has length 3, earlier rows have 2"):
        validate_rows(rows, "f.jsonl")


def test_normalizes_ids_and_flags():
    rows = validate_rows([{"prompt": "", "chosen": "a", "rejected": "b", "user_id": 7, "controversial": "true",
                           "chosen_attributes": {"len": 3}}])
    assert rows[0]["user_id"] == "7" and rows[0]["controversial"] is True
    assert rows[0]["chosen_attributes"] == {"len": 3.0}


def test_empty_input_is_an_error():
    with pytest.raises(DataError, match="no rows"):
        validate_rows([], "empty.jsonl")


def test_preference_set_users_and_subset():
    data = PreferenceSet.from_rows([{"prompt": "", "chosen": "a", "rejected": "b", "user_id": u} for u in "xyx"])
    assert data.user_ids == ["x", "y"]
    assert len(data.subset(lambda r: r["user_id"] == "x")) == 2
