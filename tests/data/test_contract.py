import json
import math
import re

import pytest

from pluralign.data.contract import DataError, PreferenceSet, messages_to_text, validate_rows
from pluralign.data.readers import read_preferences


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
    ({" prompt": "p", "chosen": "a", "rejected": "b"}, "prompt", "missing column; the row has ' prompt', not 'prompt'"),
    ({"prompt": "p", "chosen": "a", "rejectd": "b"}, "rejected", "the row has 'rejectd', not 'rejected'"),
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


# ------------------------------------------------------------------ one-line errors for each kind of bad cell
PAIR = {"prompt": "p", "chosen": "a", "rejected": "b"}


def test_a_number_column_that_is_not_a_number_names_the_csv_line(tmp_path) -> None:
    """A margin typed as a word in a spreadsheet: the CSV line and the column, not float()'s ValueError."""
    path = tmp_path / "prefs.csv"
    path.write_text("prompt,chosen,rejected,margin\np,a,b,1.5\np,c,d,big\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}, line 3, column 'margin': expected a number, "
                                        r"got 'big'$"):
        read_preferences(path)
    with pytest.raises(DataError, match=r"^<data>, row 1, column 'oracle_p': expected a number, got \[0\.5\]$"):
        PreferenceSet.from_rows([{**PAIR, "oracle_p": [0.5]}])


@pytest.mark.parametrize("column, value", [("margin", True), ("oracle_p", False)])
def test_a_yes_or_no_is_not_a_number(column: str, value: bool) -> None:
    """float(True) is 1.0: a boolean where a margin or a probability belongs was read as the number 1 or 0."""
    with pytest.raises(DataError, match=rf"^<data>, row 1, column '{column}': expected a number, got {value}$"):
        PreferenceSet.from_rows([{**PAIR, column: value}])
    with pytest.raises(DataError, match=r"^<data>, row 1, column 'chosen_embedding': expected a number, got True$"):
        PreferenceSet.from_rows([{"chosen_embedding": [1.0, True], "rejected_embedding": [0.0, 1.0]}])


def test_an_embedding_given_as_a_numpy_array_is_read_as_a_list() -> None:
    """numpy arrays (what a DataFrame of embeddings holds) are embeddings, read back as lists of Python floats."""
    import numpy as np

    rows = PreferenceSet.from_rows([{"chosen_embedding": np.array([1.0, 0.5]),
                                     "rejected_embedding": np.array([0.0, 1.0], dtype=np.float32)}]).rows
    assert rows == [{"chosen_embedding": [1.0, 0.5], "rejected_embedding": [0.0, 1.0]}]
    assert all(type(v) is list and all(type(x) is float for x in v) for v in rows[0].values())


@pytest.mark.parametrize("value", [[], "1.0, 2.0", 3.0, {"x": 1.0}], ids=["empty", "string", "number", "mapping"])
def test_an_embedding_that_is_not_a_non_empty_list_is_named(value: object) -> None:
    """An empty list, a string of numbers, one number or a mapping where a vector of numbers is expected."""
    rows = [{"chosen_embedding": [1.0, 0.0], "rejected_embedding": [0.0, 1.0]},
            {"chosen_embedding": value, "rejected_embedding": [0.0, 1.0]}]
    with pytest.raises(DataError, match=r"^<data>, row 2, column 'chosen_embedding': expected a non-empty list of "
                                        r"numbers$"):
        PreferenceSet.from_rows(rows)


def test_a_row_that_is_not_a_mapping_names_its_row_or_line() -> None:
    """A list or a string among the records (a JSON file of arrays): the row, or the file line where given."""
    with pytest.raises(DataError, match=r"^<data>, row 2: expected a record \(mapping\), got list$"):
        PreferenceSet.from_rows([PAIR, ["p", "a", "b"]])
    with pytest.raises(DataError, match=r"^prefs\.jsonl, line 4: expected a record \(mapping\), got str$"):
        validate_rows([PAIR, "p,a,b"], "prefs.jsonl", lines=[1, 4])


def test_conversations_that_open_alike_give_their_opening_as_the_prompt() -> None:
    """ultrafeedback_binarized's shape: a text prompt, and chosen and rejected as whole conversations that repeat
    it. The shared opening is the prompt and the rest each response, as TRL reads them (both responses began
    "user: How do I boil an egg?\nassistant: ..."). Without a prompt, the opening (several turns) is the prompt;
    a text prompt the opening does not hold is refused; a prompt given as messages is taken as extracted (TRL)."""
    def user(text: str) -> dict:
        return {"role": "user", "content": text}

    def assistant(text: str) -> dict:
        return {"role": "assistant", "content": text}

    egg = "How do I boil an egg?"
    rows = read_preferences([{"prompt": egg, "chosen": [user(egg), assistant("Boil it 8 min.")],
                              "rejected": [user(egg), assistant("Fry it.")]},
                             {"chosen": [user("Hi"), assistant("Hello"), user("Egg?"), assistant("Boil")],
                              "rejected": [user("Hi"), assistant("Hello"), user("Egg?"), assistant("Fry")]}]).rows
    assert rows[0] == {"prompt": egg, "chosen": "Boil it 8 min.", "rejected": "Fry it."}
    assert rows[1] == {"prompt": "user: Hi\nassistant: Hello\nuser: Egg?", "chosen": "Boil", "rejected": "Fry"}
    with pytest.raises(DataError, match=r"^<rows>, row 1, column 'prompt': chosen and rejected open with the same 1 "
                                        r"message\(s\), which do not hold the prompt"):
        read_preferences([{"prompt": "Other", "chosen": [user("Q"), assistant("x")],
                           "rejected": [user("Q"), assistant("y")]}])
    extracted = read_preferences([{"prompt": [user("Q")], "chosen": [user("Q"), assistant("x")],
                                   "rejected": [user("Q"), assistant("y")]}]).rows[0]
    assert extracted["chosen"] == "user: Q\nassistant: x"
    apart = read_preferences([{"prompt": "p", "chosen": [user("A"), assistant("x")],  # nothing shared: as given
                               "rejected": [user("B"), assistant("y")]}]).rows[0]
    assert apart["chosen"] == "user: A\nassistant: x"
    with pytest.raises(DataError, match=r"^<rows>, row 1, column 'chosen': message 1 has no content"):
        read_preferences([{"prompt": "p", "chosen": [{"role": "user"}, assistant("x")],
                           "rejected": [{"role": "user"}, assistant("y")]}])


def test_nan_where_text_is_expected_from_pandas() -> None:
    """pandas fills a cell no record gave with NaN: a missing value in that column, as an absent key is, not
    "float has no strip". A NaN in a list of records (no frame) is named as NaN."""
    import pandas as pd

    frame = pd.DataFrame([PAIR, {"prompt": "q", "rejected": "d"}])  # the second record has no chosen
    with pytest.raises(DataError, match=r"^<dataset:train>, row 2, column 'chosen': missing value$"):
        read_preferences(frame)
    with pytest.raises(DataError, match=r"^<rows>, row 1, column 'chosen': NaN where text is expected$"):
        read_preferences([{**PAIR, "chosen": float("nan")}])


def test_a_frame_whose_optional_columns_some_rows_lack() -> None:
    """A frame of seen rows and unseen users' rows (the shipped test.jsonl's shape): role, oracle_p and margin are
    NaN (pd.NA in a nullable column) where a record has none, read as absent, not as "unknown role nan"."""
    import pandas as pd

    frame = pd.DataFrame([{**PAIR, "user_id": "a", "oracle_p": 0.7},
                          {**PAIR, "user_id": "b", "role": "context", "margin": 1.5},
                          {**PAIR, "user_id": "b", "role": "query"}])
    frame["margin"] = frame["margin"].astype("Float64")  # a nullable column: pd.NA, not NaN
    rows = read_preferences(frame, split="test").rows
    assert [r.get("role") for r in rows] == [None, "context", "query"]
    assert [r.get("oracle_p") for r in rows] == [0.7, None, None]
    assert [r.get("margin") for r in rows] == [None, 1.5, None]


@pytest.mark.parametrize("value", [5, [{"role": "user", "content": "hi"}, "bye"], []],
                         ids=["number", "message-then-string", "no-messages"])
def test_a_chat_message_of_the_wrong_shape_is_named(value: object) -> None:
    """A number, a list mixing messages and strings, or an empty list in a text column."""
    with pytest.raises(DataError, match=r"^<data>, row 1, column 'chosen': expected a string or a list of chat "
                                        r"messages with 'role' and 'content'$"):
        PreferenceSet.from_rows([{**PAIR, "chosen": value}])


@pytest.mark.parametrize(("content", "got"), [(None, "no content"), (3, "content of type int"),
                                              ([{"type": "image_url"}], "content of type list")])
def test_a_chat_message_without_text_content_is_named_not_read_as_its_repr(content: object, got: str) -> None:
    """A null content (what pyarrow gives a message that had none), a number, a list of parts without text:
    once these became the text "None" or "[{'type': ...}]", which a model would learn and rank."""
    message = {"role": "assistant", **({} if content is None else {"content": content})}
    value = [{"role": "user", "content": "q"}, message]
    with pytest.raises(DataError, match=rf"^<data>, row 1, column 'chosen': message 2 has {got}; expected text "
                                        r"\(or a list of text parts\)$"):
        PreferenceSet.from_rows([{**PAIR, "chosen": value}])


@pytest.mark.parametrize(("message", "got"), [({"role": 5, "content": "a"}, "role 5"),
                                              ({"role": " ", "content": "a"}, "role ' '")])
def test_a_turn_of_a_conversation_without_a_speaker_is_named(message: dict, got: str) -> None:
    """A conversation's text names each turn's speaker: a number was read as "5: ", a blank role as " : ". (A
    message that names no role is the user's.)"""
    with pytest.raises(DataError, match=rf"^<data>, row 1, column 'chosen': message 2 has {got}; expected its "
                                        r"speaker's name \('user', 'assistant', \.\.\.\)$"):
        PreferenceSet.from_rows([{**PAIR, "chosen": [{"role": "user", "content": "q"}, message]}])
    assert PreferenceSet.from_rows([{**PAIR, "chosen": [message]}]).column("chosen") == ["a"]  # one message: its text
    unnamed = [{"role": None, "content": "q"}, {"role": "assistant", "content": "a"}]  # pyarrow's missing role
    assert PreferenceSet.from_rows([{**PAIR, "chosen": unnamed}]).column("chosen") == ["user: q\nassistant: a"]


def test_text_parts_are_read_and_blank_messages_are_empty_text() -> None:
    """OpenAI's list of text parts is its text; messages whose contents are all blank are the empty text, which a
    response may not be (it was "user: \\nassistant: ", a text only of roles)."""
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "one "}, {"type": "text", "text": "two"}]}]
    assert PreferenceSet.from_rows([{**PAIR, "chosen": parts}]).rows[0]["chosen"] == "one two"
    blank = [{"role": "user", "content": ""}, {"role": "assistant", "content": " "}]
    with pytest.raises(DataError, match=r"^<data>, row 1, column 'rejected': empty text$"):
        PreferenceSet.from_rows([{**PAIR, "rejected": blank}])


@pytest.mark.parametrize("column", ["prompt", "chosen", "user_id"])
def test_a_lone_surrogate_is_refused_where_it_is_read(tmp_path, column: str) -> None:
    """JSON may escape half of a surrogate pair ("\\ud800"), which no UTF-8 file can hold: refused by the reader
    with its line and column, not later by the embedding cache or a half-written split."""
    path = tmp_path / "prefs.jsonl"
    path.write_text(json.dumps(PAIR) + "\n" + json.dumps({**PAIR, column: "x\ud800y"}) + "\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}, line 2, column '{column}': not valid Unicode "
                                        r"\(a lone surrogate \\ud800 at character 2\)$"):
        read_preferences(path)


def test_a_numeric_id_is_the_same_user_whatever_the_format(tmp_path) -> None:
    """pandas writes an integer id column with nulls as 3.0 to Parquet and as "3.0" to CSV: both are user "3",
    as the integer 3 and the string "3" are; "3.5" stays itself."""
    import pandas as pd

    frame = pd.DataFrame([{**PAIR, "user_id": 3.0}, {**PAIR, "chosen": "c", "user_id": None},
                          {**PAIR, "chosen": "d", "user_id": 3.5}])
    frame.to_parquet(tmp_path / "a.parquet")
    frame.to_csv(tmp_path / "a.csv", index=False)
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({**PAIR, "chosen": c, "user_id": u}) + "\n"
                                              for c, u in [("a", 3), ("c", "3.0"), ("d", "3.5")]))
    users = {suffix: read_preferences(tmp_path / f"a{suffix}").column("user_id") for suffix in (".parquet", ".csv")}
    assert users == {".parquet": ["3", None, "3.5"], ".csv": ["3", None, "3.5"]}
    assert read_preferences(tmp_path / "a.jsonl").column("user_id") == ["3", "3", "3.5"]


def test_long_numeric_ids_keep_their_digits(tmp_path) -> None:
    """Steam-like ids past 2**53 written "76561198000000001.0" were read through a float: two users became one,
    76561198000000000, an id of neither. A float past 2**53 has lost its digits already: refused, named."""
    rows = [{**PAIR, "chosen": c, "user_id": u} for c, u in [("a", "76561198000000001.0"), ("c", "76561198000000002.0"),
                                                            ("d", "-0.0"), ("e", 76561198000000003)]]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_preferences(tmp_path / "a.jsonl").column("user_id") == [
        "76561198000000001", "76561198000000002", "0", "76561198000000003"]
    (tmp_path / "c.jsonl").write_text(json.dumps({**PAIR, "user_id": 9007199254740993.0}) + "\n")  # 2**53 + 1
    with pytest.raises(DataError, match=r"id 9007199254740992\.0 is a float of 2\*\*53 or more"):
        read_preferences(tmp_path / "c.jsonl")
    (tmp_path / "b.jsonl").write_text(json.dumps({**PAIR, "user_id": 7.6561198000000001e16}) + "\n")
    with pytest.raises(DataError, match=r"^.*b\.jsonl, line 1, column 'user_id': id 7\.6561198e\+16 is a float of "
                                        r"2\*\*53 or more, which cannot hold every integer \(two ids may have "
                                        r"become one\)"):
        read_preferences(tmp_path / "b.jsonl")


def test_rows_of_the_other_kind_are_named_whichever_comes_first() -> None:
    """A text row after embedding rows, or prompt vectors on some embedding rows only: the reader names the row
    (once only text-then-embeddings was caught, and the rest failed at the fit naming a record, not a line)."""
    vectors = {"chosen_embedding": [1.0, 0.0], "rejected_embedding": [0.0, 1.0]}
    with pytest.raises(DataError, match=r"^x\.jsonl, line 3, column 'chosen_embedding': no embeddings, but the first "
                                        r"row has embeddings; one kind of row per set$"):
        validate_rows([vectors, PAIR], "x.jsonl", lines=[1, 3])
    with pytest.raises(DataError, match=r"^<data>, row 2, column 'prompt_embedding': present here, not in the first "
                                        r"row; all rows or none$"):
        validate_rows([vectors, {**vectors, "prompt_embedding": [1.0]}])


def test_an_attributes_column_that_is_not_a_mapping_is_named(tmp_path) -> None:
    """A list, or a CSV cell holding one number, where a mapping from attribute name to number is expected."""
    with pytest.raises(DataError, match=r"^<data>, row 1, column 'rejected_attributes': expected a mapping from "
                                        r"attribute name to number$"):
        PreferenceSet.from_rows([{**PAIR, "rejected_attributes": [1.0, 2.0]}])
    path = tmp_path / "prefs.csv"
    path.write_text('prompt,chosen,rejected,chosen_attributes\np,a,b,"{""len"": 1}"\np,c,d,3\n')
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}, line 3, column 'chosen_attributes': expected a "
                                        r"mapping from attribute name to number$"):
        read_preferences(path)


def test_a_misspelled_column_is_named_and_other_extra_columns_are_not(caplog) -> None:
    """`userid` was dropped without a word and pal-a fitted 0 users; an `id` or a `score` beside the contract's
    columns is ordinary (debug only), as is a near-name when the real column is there too."""
    rows = [{**PAIR, "userid": "u", "Group": "g", "score": 3, "id": 1}, {**PAIR, "chosen": "c", "margins": 1}]
    with caplog.at_level("DEBUG", logger="pluralign.data"):
        PreferenceSet.from_rows(rows, "x.jsonl")
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"x.jsonl: column {c!r} is not in the contract (did you mean {k!r}?); ignored"
        for c, k in [("userid", "user_id"), ("Group", "group"), ("margins", "margin")]]
    assert "x.jsonl: columns not in the contract, ignored: userid, Group, score, id, margins" in caplog.messages
    caplog.clear()
    PreferenceSet.from_rows([{**PAIR, "user_id": "u", "userid": "u"}], "y.jsonl")
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
