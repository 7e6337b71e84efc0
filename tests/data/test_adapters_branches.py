"""Dataset adapters' error, skip and tie branches that the other adapter tests leave unreached, each through the
adapter's public entry (or ``pluralign data convert``) on tiny inline files: the exact message or the exact rows."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pluralign.cli import main
from pluralign.data.adapters import from_personalllm, from_pickapic, from_prism, from_psoups, from_tldr
from pluralign.data.adapters import from_ultrafeedback
from pluralign.data.contract import DataError


def _jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _exactly(message: str) -> str:
    """A pattern matching ``message`` and nothing more (one line, start to end)."""
    return f"^{re.escape(message)}$"


def _comparison(texts: tuple[str, ...], choice: int = 0, **info: Any) -> dict:
    info = {"id": "x", "post": "My post.", "title": "Title", "subreddit": "sub", "site": None, "article": None, **info}
    return {"info": info, "summaries": [{"text": t} for t in texts], "choice": choice, "worker": "w1", "split": "train"}


def _user(turn: int, content: str) -> dict:
    return {"turn": turn, "role": "user", "content": content, "within_turn_id": None, "score": None, "if_chosen": None}


def _model(turn: int, content: str, score: Any, chosen: bool, within: int) -> dict:
    return {"turn": turn, "role": "model", "content": content, "within_turn_id": within, "score": score,
            "if_chosen": chosen}


def _conversation(user_id: str, history: list[Any]) -> dict:
    return {"conversation_id": f"c-{user_id}", "user_id": user_id, "conversation_history": history}


ONE_PAIR = [_user(0, "Q"), _model(0, "A", 60, True, 0), _model(0, "B", 50, False, 1)]


def _psoups(a: str, b: str, **extra: Any) -> dict:
    return {"user_input": "Q", "completion_a": a, "completion_b": b, **extra}


def _uf_completion(response: str, helpfulness: str) -> dict:
    return {"model": "m", "response": response, "annotations": {"helpfulness": {"Rating": helpfulness}}}


def _personalllm(prompt: str, responses: list[Any], scores: list[Any]) -> dict:
    """One prompt's record: ``response_{n}`` and reward model m's ``response_{n}_m``."""
    record: dict[str, Any] = {"prompt": prompt}
    for n, (text, score) in enumerate(zip(responses, scores), start=1):
        record[f"response_{n}"], record[f"response_{n}_m"] = text, score
    return record


# --- shared helpers (_common) ----------------------------------------------------------------------

def test_a_missing_input_path_is_named(tmp_path: Path) -> None:
    """A typo in the path (comparisons/ not there): the path and "no such file or directory", no traceback."""
    missing = tmp_path / "comparisons"
    with pytest.raises(DataError, match=_exactly(f"{missing}: no such file or directory")):
        from_tldr(missing)


def test_a_folder_without_record_files_says_which_suffixes(tmp_path: Path) -> None:
    """The Hugging Face TL;DR folder holds Parquet shards and a README, none of them .json/.jsonl for tldr."""
    (tmp_path / "README.md").write_text("# comparisons\n")
    (tmp_path / "train-00000-of-00001.parquet").write_bytes(b"PAR1")
    with pytest.raises(DataError, match=_exactly(f"{tmp_path}: folder holds no .json/.jsonl files")):
        from_tldr(tmp_path)


def test_a_parquet_file_that_is_not_parquet_is_one_line(tmp_path: Path) -> None:
    """A Git LFS pointer saved as train-00000-of-00001.parquet: "cannot read Parquet (pyarrow's reason)", one line."""
    path = tmp_path / "train-00000-of-00001.parquet"
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 42\n")
    with pytest.raises(DataError, match=f"^{re.escape(f'{path}: cannot read Parquet (')}[^\\n]+\\)$"):
        from_personalllm(path)


def test_a_json_list_with_a_trailing_comma_names_its_line(tmp_path: Path) -> None:
    """A hand-edited P1A.json list with a trailing comma after the last record: "invalid JSON (... at line 3, ...)"."""
    path = tmp_path / "P1A.json"
    path.write_text('[\n{"user_input": "Q", "completion_a": "A", "completion_b": "B"},\n]\n')
    with pytest.raises(DataError, match=_exactly(f"{path}: invalid JSON (Expecting value at line 3, column 1)")):
        from_psoups(path)


def test_a_record_that_is_not_a_mapping_names_its_row(tmp_path: Path) -> None:
    """A TL;DR batch whose 2nd line is a bare string (a stray line): "line 2: expected a record (mapping), got str"."""
    path = _jsonl(tmp_path / "batch1.json", [_comparison(("A", "B")), "oops"])
    with pytest.raises(DataError, match=_exactly(f"{path}, line 2: expected a record (mapping), got str")):
        from_tldr(path)


# --- PersonalLLM -----------------------------------------------------------------------------------

def test_personalllm_an_empty_file_has_no_rows(tmp_path: Path) -> None:
    """An interrupted download left train.jsonl empty: "no rows", not an IndexError on the first record."""
    path = tmp_path / "train.jsonl"
    path.write_text("")
    with pytest.raises(DataError, match=_exactly(f"{path}: no rows")):
        from_personalllm(path)


def test_personalllm_a_first_record_that_is_not_a_mapping(tmp_path: Path) -> None:
    """A JSON list of lists (rows exported without column names): row 1 is named before score columns are sought."""
    path = tmp_path / "train.json"
    path.write_text(json.dumps([["P", "A", "B"]]))
    with pytest.raises(DataError, match=_exactly(f"{path}, row 1: expected a record (mapping), got list")):
        from_personalllm(path)


def test_personalllm_no_numeric_score_columns(tmp_path: Path) -> None:
    """Only ``response_{n}_model`` columns, holding the generating model's name (text): no reward model found."""
    record = {"prompt": "P", "response_1": "A", "response_2": "B", "response_1_model": "gpt", "response_2_model": "x"}
    path = _jsonl(tmp_path / "train.jsonl", [record])
    with pytest.raises(DataError, match=_exactly(f"{path}, line 1, column 'response_1_<model>': no reward-model score "
                                                 "columns found")):
        from_personalllm(path)


def test_personalllm_a_prompt_with_one_response_names_its_row(tmp_path: Path) -> None:
    """Row 2 has response_2 null (Parquet's absent response) and so one response: no pair can be made."""
    path = _jsonl(tmp_path / "train.jsonl", [_personalllm("P", ["A", "B"], [1.0, 2.0]),
                                              _personalllm("Q", ["C", None], [1.0, None])])
    with pytest.raises(DataError, match=_exactly(f"{path}, line 2, column 'response_2': missing: need at least two "
                                                 "responses")):
        from_personalllm(path, users={"u": [1.0]})


def test_personalllm_sampled_users_need_a_positive_count_and_alpha(tmp_path: Path) -> None:
    """n_users=0 or alpha=0 (no Dirichlet can be drawn): one line naming both values, before any row is read."""
    path = _jsonl(tmp_path / "train.jsonl", [_personalllm("P", ["A", "B"], [1.0, 2.0])])
    with pytest.raises(DataError, match=_exactly(f"{path}: need n_users >= 1 and a finite alpha > 0, got n_users=0, "
                                                 "alpha=1.0")):
        from_personalllm(path, n_users=0)
    with pytest.raises(DataError, match=_exactly(f"{path}: need n_users >= 1 and a finite alpha > 0, got n_users=10, "
                                                 "alpha=0")):
        from_personalllm(path, alpha=0)


def test_personalllm_a_weight_list_of_the_wrong_length(tmp_path: Path) -> None:
    """User u gives two weights (a list, by position) for the one reward model m found: refused, not truncated."""
    path = _jsonl(tmp_path / "train.jsonl", [_personalllm("P", ["A", "B"], [1.0, 2.0])])
    with pytest.raises(DataError, match=_exactly(f"{path}: user 'u' has 2 weights for 1 reward models")):
        from_personalllm(path, users={"u": [1.0, 2.0]})


def test_personalllm_identical_and_empty_responses_are_dropped(tmp_path: Path) -> None:
    """Prompt P: "A" twice (scored 1 and 2: identical, dropped), "B" scored 2 (beats the first A by 1, ties the
    second); prompt Q: "" vs "C" (empty, dropped). One row is left."""
    path = _jsonl(tmp_path / "train.jsonl", [_personalllm("P", ["A", "A", "B"], [1.0, 2.0, 2.0]),
                                              _personalllm("Q", ["", "C"], [1.0, 2.0])])
    data = from_personalllm(path, users={"u": [1.0]})
    assert data.rows == [{"prompt": "P", "chosen": "B", "rejected": "A", "margin": 1.0, "chosen_attributes": {"m": 2.0},
                          "rejected_attributes": {"m": 1.0}, "user_id": "u"}]
    assert data.meta["dropped"] == {"empty_response": 1, "identical_responses": 1, "ties": 1}


# --- Pick-a-Pic ------------------------------------------------------------------------------------

def _pal_arrays(**changes: Any) -> dict[str, Any]:
    """Two samples: u0 prefers the left image (y -1), u1 the right (y +1)."""
    arrays = {"uid": np.array(["u0", "u1"]), "p": np.eye(2), "x_left": np.array([[1.0, 0.0], [0.0, 1.0]]),
              "x_right": np.array([[0.0, 1.0], [1.0, 0.0]]), "y": np.array([-1, 1])}
    return {name: value for name, value in {**arrays, **changes}.items() if value is not None}


def test_pickapic_a_missing_path_is_named(tmp_path: Path) -> None:
    """embeds.npz not there (not yet converted): the path and "no such file or directory"."""
    with pytest.raises(DataError, match=_exactly(f"{tmp_path / 'embeds.npz'}: no such file or directory")):
        from_pickapic(tmp_path / "embeds.npz")


def test_pickapic_one_npy_file_is_not_a_container(tmp_path: Path) -> None:
    """x_left.npy alone (one array of the folder, not the folder): unknown format '.npy', with what is read."""
    np.save(tmp_path / "x_left.npy", np.eye(2))
    with pytest.raises(DataError, match=_exactly(f"{tmp_path / 'x_left.npy'}: unknown format '.npy' (expected .npz, "
                                                 ".safetensors, .pt or a folder of .npy)")):
        from_pickapic(tmp_path / "x_left.npy")


def test_pickapic_an_object_npy_in_a_folder_is_not_unpickled(tmp_path: Path) -> None:
    """A folder whose uid.npy holds Python objects (saved with allow_pickle): refused, naming uid.npy and column uid."""
    for name, value in _pal_arrays().items():
        np.save(tmp_path / f"{name}.npy", value)
    np.save(tmp_path / "uid.npy", np.array([{"id": 0}, {"id": 1}], dtype=object), allow_pickle=True)
    uid = tmp_path / "uid.npy"
    with pytest.raises(DataError, match=_exactly(f"{uid}, column 'uid': cannot read without unpickling (Object arrays "
                                                 "cannot be loaded when allow_pickle=False)")):
        from_pickapic(tmp_path)


def test_pickapic_safetensors_uid_metadata_must_be_json(tmp_path: Path) -> None:
    """Header metadata uid "u0,u1" (comma-separated, not the JSON list the docstring asks for): column uid named."""
    from safetensors.numpy import save_file

    path = tmp_path / "embeds.safetensors"
    save_file(_pal_arrays(uid=None), str(path), metadata={"uid": "u0,u1"})
    with pytest.raises(DataError, match=_exactly(f"{path}, column 'uid': metadata 'uid' is not a JSON list")):
        from_pickapic(path)


class _PalSample:
    """Stands in for the Python objects of a pickled PAL sample (what weights_only refuses)."""


def test_pickapic_a_pt_pickle_of_objects_is_refused_with_the_hint(tmp_path: Path) -> None:
    """A .pt holding a Python object (PAL's pickles renamed): weights_only refuses it; the message says to convert."""
    import torch

    torch.save({"y": _PalSample()}, tmp_path / "embeds.pt")
    with pytest.raises(DataError, match=_exactly(
            f"{tmp_path / 'embeds.pt'}: not a plain dict of tensors (UnpicklingError); PAL's .joblib samples are "
            "pickles and are not loaded here; convert them in a trusted environment to .npz/.safetensors arrays "
            "named uid, p, x_left, x_right, y")):
        from_pickapic(tmp_path / "embeds.pt")


def test_pickapic_a_pt_that_is_not_a_dict(tmp_path: Path) -> None:
    """A .pt holding a list of tensors (arrays saved without their names): "expected a dict of arrays ..., got list"."""
    import torch

    torch.save([torch.zeros(2, 2), torch.ones(2)], tmp_path / "embeds.pt")
    with pytest.raises(DataError, match=_exactly(f"{tmp_path / 'embeds.pt'}: expected a dict of arrays ('uid', 'p', "
                                                 "'x_left', 'x_right', 'y'), got list")):
        from_pickapic(tmp_path / "embeds.pt")


def test_pickapic_a_missing_array_lists_what_is_there(tmp_path: Path) -> None:
    """An .npz saved without uid: column uid is missing, and the arrays found are listed."""
    np.savez(tmp_path / "embeds.npz", **_pal_arrays(uid=None))
    with pytest.raises(DataError, match=_exactly(f"{tmp_path / 'embeds.npz'}, column 'uid': missing array (found "
                                                 "['p', 'x_left', 'x_right', 'y'])")):
        from_pickapic(tmp_path / "embeds.npz")


def test_pickapic_without_prompt_embeddings(tmp_path: Path) -> None:
    """An .npz without p (prompt embeddings are optional): the rows hold the two images and the user, nothing else."""
    np.savez(tmp_path / "embeds.npz", **_pal_arrays(p=None))
    assert from_pickapic(tmp_path / "embeds.npz").rows == [
        {"chosen_embedding": [1.0, 0.0], "rejected_embedding": [0.0, 1.0], "user_id": "u0"},
        {"chosen_embedding": [1.0, 0.0], "rejected_embedding": [0.0, 1.0], "user_id": "u1"},
    ]


# --- PRISM -----------------------------------------------------------------------------------------

def test_prism_a_folder_without_conversations(tmp_path: Path) -> None:
    """The dataset folder holds survey.jsonl but not conversations.jsonl: the expected file is named."""
    _jsonl(tmp_path / "survey.jsonl", [{"user_id": "u"}])
    with pytest.raises(DataError, match=_exactly(f"{tmp_path / 'conversations.jsonl'}: no such file (expected PRISM's "
                                                 "conversations.jsonl)")):
        from_prism(tmp_path)


def test_prism_an_utterance_that_is_not_a_mapping(tmp_path: Path) -> None:
    """Conversation 2's history holds a bare string at index 1: line 2, column conversation_history[1]."""
    path = _jsonl(tmp_path / "conversations.jsonl", [_conversation("u", ONE_PAIR),
                                                      _conversation("v", [_user(0, "Q"), "A"])])
    with pytest.raises(DataError, match=_exactly(f"{path}, line 2, column 'conversation_history[1]': expected an "
                                                 "utterance (mapping)")):
        from_prism(path)


def test_prism_a_turn_with_one_response_is_counted(tmp_path: Path) -> None:
    """Turn 0 has a single (chosen) response: no pair, counted; turn 1's prompt still continues from it."""
    history = [_user(0, "Q"), _model(0, "A", 50, True, 0), _user(1, "Q2"), _model(1, "B", 70, True, 0),
               _model(1, "C", 20, False, 1)]
    data = from_prism(_jsonl(tmp_path / "conversations.jsonl", [_conversation("u", history)]))
    assert data.rows == [{"prompt": "user: Q\nassistant: A\nuser: Q2", "chosen": "B", "rejected": "C", "user_id": "u",
                          "margin": 50.0}]
    assert data.meta["dropped"] == {"turns_with_one_response": 1}


def test_prism_an_unknown_role_names_the_utterance(tmp_path: Path) -> None:
    """Conversation 2 spells the model's role "assistant" (OpenAI's word, not PRISM's "model"): line 2, index 1."""
    path = _jsonl(tmp_path / "conversations.jsonl", [
        _conversation("u", ONE_PAIR), _conversation("v", [_user(0, "Q"), {**_model(0, "A", 60, True, 0),
                                                                          "role": "assistant"}])])
    with pytest.raises(DataError, match=_exactly(f"{path}, line 2, column 'conversation_history[1].role': unknown role "
                                                 "'assistant' (expected 'user' or 'model')")):
        from_prism(path)


def test_prism_identical_and_blank_responses_are_dropped(tmp_path: Path) -> None:
    """Chosen "A" against a second "A" (identical) and " " (blank): both dropped and counted; against "B" a row."""
    history = [_user(0, "Q"), _model(0, "A", 60, True, 0), _model(0, "A", 50, False, 1), _model(0, " ", 40, False, 2),
               _model(0, "B", 10, False, 3)]
    data = from_prism(_jsonl(tmp_path / "conversations.jsonl", [_conversation("u", history)]))
    assert data.rows == [{"prompt": "Q", "chosen": "A", "rejected": "B", "user_id": "u", "margin": 50.0}]
    assert data.meta["dropped"] == {"empty_response": 1, "identical_responses": 1}


def test_prism_a_missing_survey_is_named(tmp_path: Path) -> None:
    """survey= a path that is not there, with group_by: the survey file is named, not silently left out."""
    path = _jsonl(tmp_path / "conversations.jsonl", [_conversation("u", ONE_PAIR)])
    survey = tmp_path / "survey.jsonl"
    with pytest.raises(DataError, match=_exactly(f"{survey}: no such file (expected PRISM's survey.jsonl)")):
        from_prism(path, survey=survey, group_by="region")


def test_prism_finds_the_survey_beside_a_conversations_file(tmp_path: Path) -> None:
    """The file, not its folder, given: survey.jsonl beside it still supplies group_by's values."""
    path = _jsonl(tmp_path / "conversations.jsonl", [_conversation("u", ONE_PAIR)])
    _jsonl(tmp_path / "survey.jsonl", [{"user_id": "u", "location": {"reside_region": "Asia"}}])
    assert from_prism(path, group_by="location.reside_region").column("group") == ["Asia"]


def test_prism_group_by_that_matches_nothing_is_an_error(tmp_path: Path) -> None:
    """A misspelt group_by gave every pair no group, silently; now the field and where it was looked for are named."""
    path = _jsonl(tmp_path / "conversations.jsonl", [_conversation("u", ONE_PAIR)])
    with pytest.raises(DataError, match=_exactly(f"{path}: group_by 'regoin': no pair got a group: no such field in "
                                                 "the conversations (no survey.jsonl found)")):
        from_prism(path, group_by="regoin")


def test_prism_group_by_naming_a_mapping_is_an_error(tmp_path: Path) -> None:
    """group_by=location names the survey's whole location record: refused, with a field inside it as example."""
    path = _jsonl(tmp_path / "conversations.jsonl", [_conversation("u", ONE_PAIR)])
    _jsonl(tmp_path / "survey.jsonl", [{"user_id": "u", "location": {"reside_region": "Asia"}}])
    with pytest.raises(DataError, match=_exactly(f"{tmp_path / 'survey.jsonl'}, line 1, column 'location': group_by "
                                                 "names a mapping, not a value: name a field inside it, e.g. "
                                                 "location.reside_region")):
        from_prism(path, group_by="location")


# --- P-SOUPS ---------------------------------------------------------------------------------------

def test_psoups_identical_and_empty_completions_are_dropped(tmp_path: Path) -> None:
    """P1A.json: record 1 has completion_a == completion_b, record 2 an empty completion_a; record 3 is the row."""
    path = _jsonl(tmp_path / "P1A.json", [_psoups("A", "A"), _psoups("", "B"), _psoups("C", "D")])
    data = from_psoups(path)
    assert data.rows == [{"prompt": "Q", "chosen": "C", "rejected": "D", "user_id": "P1A", "group": "P1"}]
    assert data.meta["dropped"] == {"empty_response": 1, "identical_responses": 1}


def test_adapter_repeats_are_named_by_their_input_lines(tmp_path: Path, caplog) -> None:
    """A repeated pair in an adapter's input: the warning names the input lines (3 repeats 1; line 2 is dropped as
    a tie), not the converted rows' numbers (row 2 repeats row 1), which are nowhere to look."""
    path = _jsonl(tmp_path / "P1A.json", [_psoups("A", "B"), _psoups("C", "C"), _psoups("A", "B")])
    with caplog.at_level(logging.WARNING):
        from_psoups(path)
    assert f"the first is {path}, line 3, a repeat of {path}, line 1" in caplog.text


def test_psoups_a_record_of_another_format_names_the_expected_fields(tmp_path: Path) -> None:
    """Row 2 is in the prompt/chosen/rejected format (not RLPHF's or AlpacaFarm's): the fields expected are named."""
    path = _jsonl(tmp_path / "P1B.json", [_psoups("C", "D"), {"prompt": "Q", "chosen": "A", "rejected": "B"}])
    with pytest.raises(DataError, match=_exactly(f"{path}, line 2, column 'user_input': missing (expected "
                                                 "user_input/completion_a/completion_b)")):
        from_psoups(path)


def test_psoups_a_preference_that_is_not_a_number(tmp_path: Path) -> None:
    """preference "1" (a string, as a CSV export writes it) and true: refused, not read as 1 or as a tie."""
    path = _jsonl(tmp_path / "P1C.json", [_psoups("C", "D"), _psoups("A", "B", preference="1")])
    with pytest.raises(DataError, match=_exactly(f"{path}, line 2, column 'preference': expected 1 or 2, got '1'")):
        from_psoups(path)
    _jsonl(path, [_psoups("A", "B", preference=True)])
    with pytest.raises(DataError, match=_exactly(f"{path}, line 1, column 'preference': expected 1 or 2, got True")):
        from_psoups(path)


# --- TL;DR -----------------------------------------------------------------------------------------

def test_tldr_a_comparison_of_three_summaries(tmp_path: Path) -> None:
    """Row 2 lists three summaries (a comparison is of two): refused, naming the count."""
    path = _jsonl(tmp_path / "batch1.json", [_comparison(("A", "B")), _comparison(("A", "B", "C"))])
    with pytest.raises(DataError, match=_exactly(f"{path}, line 2, column 'summaries': expected 2 summaries, got 3")):
        from_tldr(path)


def test_tldr_no_post_and_no_article(tmp_path: Path) -> None:
    """Row 2's info has post "" and article null: no default query can be built; info.post named."""
    path = _jsonl(tmp_path / "batch1.json", [_comparison(("A", "B")), _comparison(("A", "B"), post="")])
    with pytest.raises(DataError, match=_exactly(f"{path}, line 2, column 'info.post': missing (and no info.article "
                                                 "either)")):
        from_tldr(path)


# --- UltraFeedback ---------------------------------------------------------------------------------

def test_ultrafeedback_unknown_or_no_attributes(tmp_path: Path) -> None:
    """attributes=("kindness",) (not an UltraFeedback aspect) and attributes=(): refused, the four aspects listed."""
    path = tmp_path / "uf.jsonl"
    known = "('helpfulness', 'honesty', 'instruction_following', 'truthfulness')"
    with pytest.raises(DataError, match=_exactly(f"{path}: attributes must be a non-empty subset of {known}, "
                                                 "got ['kindness']")):
        from_ultrafeedback(path, attributes=("kindness",))
    with pytest.raises(DataError, match=_exactly(f"{path}: attributes must be a non-empty subset of {known}, got []")):
        from_ultrafeedback(path, attributes=())


def test_ultrafeedback_a_prompt_with_one_completion_is_counted(tmp_path: Path) -> None:
    """Prompt Q has a single completion: no pair, counted as prompts_with_one_completion (R, with none, as
    prompts_without_completions); prompt P gives its row."""
    path = _jsonl(tmp_path / "uf.jsonl", [
        {"instruction": "P", "completions": [_uf_completion("A", "4"), _uf_completion("B", "2")]},
        {"instruction": "Q", "completions": [_uf_completion("X", "5")]},
        {"instruction": "R", "completions": []},  # none at all: counted apart
    ])
    data = from_ultrafeedback(path, attributes=("helpfulness",))
    assert data.rows == [{"prompt": "P", "chosen": "A", "rejected": "B", "user_id": "helpfulness", "margin": 2.0,
                          "chosen_attributes": {"helpfulness": 4.0}, "rejected_attributes": {"helpfulness": 2.0},
                          "controversial": False}]
    assert data.meta["dropped"] == {"prompts_with_one_completion": 1, "prompts_without_completions": 1}


def test_ultrafeedback_binarized_identical_and_empty_pairs_are_dropped(tmp_path: Path) -> None:
    """Binarized records: "Same." vs "Same." (identical) and "" vs "Hm." (empty) dropped; "Yes." vs "No." kept."""
    path = _jsonl(tmp_path / "train_prefs.jsonl", [
        {"prompt": "Hi", "chosen": "Same.", "rejected": "Same.", "score_chosen": 8.0, "score_rejected": 3.0},
        {"prompt": "Yo", "chosen": "", "rejected": "Hm.", "score_chosen": 8.0, "score_rejected": 3.0},
        {"prompt": "Ok", "chosen": "Yes.", "rejected": "No."},
    ])
    data = from_ultrafeedback(path)
    assert data.rows == [{"prompt": "Ok", "chosen": "Yes.", "rejected": "No."}]
    assert data.meta["dropped"] == {"empty_response": 1, "identical_responses": 1}


def test_ultrafeedback_binarized_response_that_is_no_text(tmp_path: Path) -> None:
    """Row 2's chosen is an empty message list (a truncated export): neither text nor messages with a reply."""
    path = _jsonl(tmp_path / "train_prefs.jsonl", [{"prompt": "Ok", "chosen": "Yes.", "rejected": "No."},
                                                    {"prompt": "Hi", "chosen": [], "rejected": "Go."}])
    with pytest.raises(DataError, match=_exactly(f"{path}, line 2, column 'chosen': expected a string or chat messages "
                                                 "ending with the response")):
        from_ultrafeedback(path)


# --- pluralign data convert ------------------------------------------------------------------------

def test_data_convert_writes_the_rows_and_says_how_many(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``pluralign data convert psoups P1A.json --out out/rows.jsonl``: exit 0, both rows written, "(2 rows)", and
    beside them what the adapter recorded."""
    source = _jsonl(tmp_path / "P1A.json", [_psoups("A", "B"), _psoups("C", "D", preference=2)])
    out = tmp_path / "out" / "rows.jsonl"
    assert main(["data", "convert", "psoups", str(source), "--out", str(out)]) == 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == [
        {"prompt": "Q", "chosen": "A", "rejected": "B", "user_id": "P1A", "group": "P1"},
        {"prompt": "Q", "chosen": "D", "rejected": "C", "user_id": "P1A", "group": "P1"},
    ]
    meta = out.with_name("rows.meta.json")
    assert capsys.readouterr().out == f"wrote {out} (2 rows) and {meta}\n"
    assert json.loads(meta.read_text()) == {"source": str(source), "options": {}, "n_rows": 2, "n_users": 1,
                                            "adapter": "psoups", "dropped": {}}


def test_data_convert_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A P-SOUPS file whose line 2 has a string preference: exit 2, the adapter's one-line error, no --out file."""
    source = _jsonl(tmp_path / "P1A.json", [_psoups("A", "B"), _psoups("C", "D", preference="2")])
    out = tmp_path / "rows.jsonl"
    assert main(["data", "convert", "psoups", str(source), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"pluralign: error: {source}, line 2, column 'preference': expected 1 or 2, "
                                       "got '2'\n")
    assert not out.exists()


def test_data_convert_refuses_to_overwrite_its_source(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``--out`` naming the input file itself (converting in place): exit 2 before reading; the source is unchanged."""
    source = _jsonl(tmp_path / "P1A.json", [_psoups("A", "B")])
    before = source.read_text()
    assert main(["data", "convert", "psoups", str(source), "--out", str(source)]) == 2
    assert capsys.readouterr().err == (f"pluralign: error: --out {source}: would overwrite SOURCE {source}; choose "
                                       "another file\n")
    assert source.read_text() == before


def test_data_convert_refuses_an_output_inside_a_source_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A folder source is read whole: `--out rm/P1A.json` replaced a raw file, and any new file there would be read
    as raw data by the next convert."""
    (tmp_path / "rm").mkdir()
    source = _jsonl(tmp_path / "rm" / "P1A.json", [_psoups("A", "B")])
    before = source.read_text()
    for out in (source, tmp_path / "rm" / "rows.jsonl"):
        assert main(["data", "convert", "psoups", str(source.parent), "--out", str(out)]) == 2
        assert capsys.readouterr().err == (f"pluralign: error: --out {out}: inside SOURCE {source.parent}, which the "
                                           "adapter reads whole; choose a file outside it\n")
    assert source.read_text() == before and [p.name for p in source.parent.iterdir()] == ["P1A.json"]


def test_data_convert_passes_the_adapters_options_and_checks_them(tmp_path: Path, capsys) -> None:
    """`--set` reaches the adapter (PRISM's group_by and survey, which per-group eval and --stratify need); an option
    the adapter lacks, or a value of the wrong type, is one line before any reading."""
    prism = Path(__file__).resolve().parents[1] / "assets" / "adapters" / "prism"
    out = tmp_path / "prism.jsonl"
    assert main(["data", "convert", "prism", str(prism / "conversations.jsonl"), "--out", str(out),
                 "--set", f"survey={prism / 'survey.jsonl'}", "--set", "group_by=location.reside_region"]) == 0
    assert all(json.loads(line).get("group") for line in out.read_text().splitlines())
    capsys.readouterr()
    assert main(["data", "convert", "prism", str(prism / "conversations.jsonl"), "--out", str(out),
                 "--set", "groupby=location"]) == 2
    assert capsys.readouterr().err == ("pluralign: error: --set groupby: adapter prism has no option 'groupby' (its "
                                       "options: survey, group_by, drop_ties)\n")
    assert json.loads(out.with_name("prism.meta.json").read_text())["group_by"] == "location.reside_region"
    assert main(["data", "convert", "personalllm", str(prism), "--out", str(out), "--set", "n_users=ten"]) == 2
    assert capsys.readouterr().err == "pluralign: error: --set n_users='ten': adapter personalllm's n_users is int\n"
    # a list is no mapping of users, though a user's weights may be a list (a '|' inside the brackets): it reached
    # the adapter and failed there with "'list' object has no attribute 'items'"
    assert main(["data", "convert", "personalllm", str(prism), "--out", str(out), "--set", "users=[1, 2]"]) == 2
    assert capsys.readouterr().err.startswith("pluralign: error: --set users=[1, 2]: adapter personalllm's users is "
                                              "Mapping[")
    # braces are a YAML mapping: the error says to quote the text
    assert main(["data", "convert", "tldr", str(prism), "--out", str(out), "--set", "prompt_template={post}"]) == 2
    assert capsys.readouterr().err.endswith("(YAML read a mapping or list: quote a text value, --set "
                                            "'prompt_template=\"...\"')\n")


# ---- defects the audit found, fixed: each was a traceback, a misleading message or a silently wrong row ----------
def test_ultrafeedback_binarized_chat_without_the_assistants_reply_is_refused(tmp_path: Path) -> None:
    """A chat that ends with the user's turn has no response: its last message (the prompt) was stored as the
    chosen response."""
    path = _jsonl(tmp_path / "train_prefs.jsonl", [
        {"prompt": "Hi", "chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}],
         "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away."}]},
        {"prompt": "Hi", "chosen": [{"role": "user", "content": "Hi"}],
         "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away."}]},
    ])
    with pytest.raises(DataError, match=_exactly(f"{path}, line 2, column 'chosen': the chat ends with a 'user' "
                                                 "message, not the assistant's response")):
        from_ultrafeedback(path)
    assert from_ultrafeedback(_jsonl(tmp_path / "one.jsonl", [json.loads(path.read_text().splitlines()[0])])).rows == [
        {"prompt": "Hi", "chosen": "Hello.", "rejected": "Go away."}]


@pytest.mark.parametrize("changes, name, shape", [
    (dict(y=np.array(1)), "y", "()"),  # was: TypeError "len() of unsized object"
    (dict(uid=np.array([["u0"], ["u1"]])), "uid", "(2, 1)"),  # was: user ids "['u0']" and "['u1']"
    (dict(x_left=np.ones(2)), "x_left", "(2,)"),
])
def test_pickapic_arrays_of_the_wrong_rank_are_named(tmp_path: Path, changes: dict, name: str, shape: str) -> None:
    """uid and y hold one value per sample, the embeddings one row: any other shape names the array."""
    path = tmp_path / "embeds.npz"
    np.savez(path, **_pal_arrays(**changes))
    what = "2-D (samples x dims)" if name == "x_left" else "1-D (one per sample)"
    with pytest.raises(DataError, match=_exactly(f"{path}, column '{name}': expected a {what} array, got shape "
                                                 f"{shape}")):
        from_pickapic(path)


def test_pickapic_uid_metadata_that_is_json_but_no_list(tmp_path: Path) -> None:
    """metadata uid "5" is JSON, not a list: it reached len() and failed without naming the file."""
    from safetensors.numpy import save_file

    path = tmp_path / "embeds.safetensors"
    save_file(_pal_arrays(uid=None), str(path), metadata={"uid": "5"})
    with pytest.raises(DataError, match=_exactly(f"{path}, column 'uid': metadata 'uid' is not a JSON list")):
        from_pickapic(path)


def test_pickapic_a_damaged_archive_is_not_called_a_pickle(tmp_path: Path) -> None:
    """Bytes that are no archive (a partial download): numpy's words were "contains pickled (object) data. If you
    trust the file you can load it unsafely", advice that does not fit."""
    archive, folder = tmp_path / "embeds.npz", tmp_path / "arrays"
    archive.write_bytes(b"truncated download")
    with pytest.raises(DataError, match=_exactly(f"{archive}: not an .npz archive (a damaged or partial download?)")):
        from_pickapic(archive)
    folder.mkdir()
    for name, value in _pal_arrays().items():
        np.save(folder / f"{name}.npy", value)
    (folder / "y.npy").write_bytes(b"garbage")
    with pytest.raises(DataError, match=_exactly(f"{folder / 'y.npy'}, column 'y': not a .npy array file (a damaged "
                                                 "or partial download?)")):
        from_pickapic(folder)


def test_pickapic_a_nan_uid_is_no_user(tmp_path: Path) -> None:
    """A float uid array with a gap: the NaN row has no user (it was one user "nan"), the others their ids."""
    archive = tmp_path / "embeds.npz"
    np.savez(archive, **_pal_arrays(uid=np.array([1.0, np.nan])))
    assert from_pickapic(archive).column("user_id") == ["1", None]


def test_pickapic_a_damaged_member_or_safetensors_file_is_one_line(tmp_path: Path) -> None:
    """An .npz whose member's checksum is wrong and a .safetensors cut short were tracebacks (BadZipFile,
    SafetensorError)."""
    from safetensors.numpy import save_file

    archive = tmp_path / "embeds.npz"
    np.savez(archive, **_pal_arrays())
    data = bytearray(archive.read_bytes())
    start = data.index(b"\x93NUMPY", data.index(b"y.npy")) + 80  # inside y.npy's bytes: its CRC no longer matches
    data[start] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"^{re.escape(str(archive))}: cannot read \(.*\); a damaged or partial "
                                        r"download\?$"):
        from_pickapic(archive)
    tensors = tmp_path / "embeds.safetensors"
    save_file({k: np.asarray(v) for k, v in _pal_arrays().items() if k != "uid"}, str(tensors))
    tensors.write_bytes(tensors.read_bytes()[:40])
    with pytest.raises(DataError, match=rf"^{re.escape(str(tensors))}: cannot read \(.*\); a damaged or partial "
                                        r"download\?$"):
        from_pickapic(tensors)


def test_personalllm_users_given_as_nothing_or_with_a_nan_weight(tmp_path: Path) -> None:
    """users={} was reported as "no rows" (the file has rows); a NaN weight as column 'margin' of row 1."""
    path = _jsonl(tmp_path / "train.jsonl", [_personalllm("P", ["A", "B"], [1.0, 2.0])])
    with pytest.raises(DataError, match=_exactly(f"{path}: users is empty; give at least one user's weights, or None "
                                                 "to sample n_users")):
        from_personalllm(path, users={})
    with pytest.raises(DataError, match=_exactly(f"{path}: user 'u' has a weight that is not a finite number "
                                                 "([nan])")):
        from_personalllm(path, users={"u": {"m": float("nan")}})


def test_prism_a_survey_without_group_by_is_refused(tmp_path: Path) -> None:
    """The survey is read for group_by's values only: without group_by, meta said a survey went in when none did,
    then it was ignored in silence; now it is one line saying what survey= needs. Found beside the conversations
    (not given), it is not recorded as used."""
    path = _jsonl(tmp_path / "conversations.jsonl", [_conversation("u1", ONE_PAIR)])
    survey = tmp_path / "no_such_survey.jsonl"
    with pytest.raises(DataError, match=_exactly(f"survey={survey}: the survey is read only for group_by's values; "
                                                 "give group_by too (e.g. group_by=location.reside_region), or leave "
                                                 "out survey")):
        from_prism(path, survey=survey)
    _jsonl(tmp_path / "survey.jsonl", [{"user_id": "u1", "location": {"reside_region": "Asia"}}])
    data = from_prism(path)
    assert data.meta["survey"] is None and [r["user_id"] for r in data.rows] == ["u1"]


def test_prism_a_choice_rated_below_the_other_response_is_warned(tmp_path: Path, caplog) -> None:
    """The participant chose A but rated it 30 against B's 70: margin -40, kept, counted and warned (TRL's margin loss
    would read it as nearly a tie)."""
    history = [_user(0, "Q"), _model(0, "A", 30, True, 0), _model(0, "B", 70, False, 1), _model(0, "C", 10, False, 2)]
    path = _jsonl(tmp_path / "conversations.jsonl", [_conversation("u", history)])
    with caplog.at_level(logging.WARNING, logger="pluralign.data"):
        data = from_prism(path)
    assert data.column("margin") == [-40.0, 20.0] and data.meta["chosen_rated_lower"] == 1
    assert f"{path}: 1 pair(s) whose chosen response the participant rated below the rejected one" in caplog.text


def test_an_adapters_errors_name_the_input_line_and_record(tmp_path: Path) -> None:
    """A blank line before conversation 2: its error names line 3 (record 2 was called "row 2"). A lone surrogate in
    a response passes the adapter and fails the contract's check after the conversion: that names the input record,
    not the converted pair's number (which is nowhere to look)."""
    path = tmp_path / "conversations.jsonl"
    path.write_text(json.dumps(_conversation("u", ONE_PAIR)) + "\n\n"
                    + json.dumps(_conversation("v", [_user(0, "Q"), {**_model(0, "A", 60, True, 0), "role": "bot"}]))
                    + "\n")
    with pytest.raises(DataError, match=_exactly(f"{path}, line 3, column 'conversation_history[1].role': unknown "
                                                 "role 'bot' (expected 'user' or 'model')")):
        from_prism(path)
    surrogate = [_user(0, "Q"), _model(0, "A\ud800", 60, True, 0), _model(0, "B", 40, False, 1)]
    path.write_text(json.dumps(_conversation("u", ONE_PAIR)) + "\n\n" + json.dumps(_conversation("v", surrogate)) + "\n")
    with pytest.raises(DataError, match=_exactly(f"{path}, line 3, converted pair's column 'chosen': not valid Unicode "
                                                 "(a lone surrogate \\ud800 at character 2)")):
        from_prism(path)


@pytest.mark.parametrize("options, message", [
    ({"pairs_per_prompt": -1}, "--set pairs_per_prompt=-1: must be at least 1 (or null: every pair)"),
    ({"seed": -1}, "--set seed=-1: must be a non-negative integer"),
    ({"reward_models": []}, "--set reward_models=[]: name at least one score column (or null: every one found)"),
    ({"alpha": float("nan")}, "need n_users >= 1 and a finite alpha > 0, got n_users=10, alpha=nan"),
    ({"users": {"a": 3}}, "user 'a': expected a list of"),
    ({"users": {"a": ["x", "y", "z"]}}, "user 'a': weight 'x' is not a number"),
])
def test_personalllm_options_are_named(options: dict, message: str) -> None:
    """Each was numpy's or Python's words ("negative dimensions are not allowed", "object of type 'int' has no
    len()"), or blamed the data (a NaN alpha: "line 1, converted pair's column 'margin'")."""
    path = Path(__file__).resolve().parents[1] / "assets" / "adapters" / "personalllm" / "train.jsonl"
    with pytest.raises(ValueError, match=re.escape(message)):
        from_personalllm(path, **options)


@pytest.mark.parametrize("template", ["{0}", "{post.x}", "{"])
def test_a_tldr_template_that_cannot_format_is_named(template: str) -> None:
    path = Path(__file__).resolve().parents[1] / "assets" / "adapters" / "tldr" / "batch3.json"
    with pytest.raises(ValueError, match=re.escape(f"--set prompt_template={template!r}: not a template of the "
                                                   "record's info fields (")):
        from_tldr(path, prompt_template=template)
