"""Dataset adapters' finer rules, each pinned by hand on tiny inline files: what test_adapters.py leaves open."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pluralign.data.adapters import from_personalllm, from_pickapic, from_prism, from_psoups, from_tldr
from pluralign.data.adapters import from_ultrafeedback
from pluralign.data.contract import DataError

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "adapters"
PERSONALLLM = ASSETS / "personalllm" / "train.jsonl"


def _jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _comparison(texts: tuple[str, str], choice: Any = 0, worker: str = "w1") -> dict:
    info = {"id": "x", "post": "My post.", "title": "Title", "subreddit": "sub", "site": None, "article": None}
    return {"info": info, "summaries": [{"text": t} for t in texts], "choice": choice, "worker": worker,
            "split": "train"}


def _user(turn: int, content: str) -> dict:
    return {"turn": turn, "role": "user", "content": content, "within_turn_id": None, "score": None, "if_chosen": None}


def _model(turn: int, content: str, score: Any, chosen: bool, within: int) -> dict:
    return {"turn": turn, "role": "model", "content": content, "within_turn_id": within, "score": score,
            "if_chosen": chosen}


def _conversation(user_id: str, history: list[dict], **extra: Any) -> dict:
    return {"conversation_id": f"c-{user_id}", "user_id": user_id, "conversation_history": history, **extra}


def _uf_completion(response: str, ratings: dict[str, Any]) -> dict:
    return {"model": "m", "response": response, "annotations": ratings}


# --- shared helpers (_common) ----------------------------------------------------------------------

def test_a_folder_reads_upper_case_suffixes(tmp_path: Path) -> None:
    """``BATCH1.JSON`` in a folder is a ``.json`` file (suffixes compare case-insensitively): one comparison, one row
    whose chosen is summaries[0] = "Good."."""
    _jsonl(tmp_path / "BATCH1.JSON", [_comparison(("Good.", "Bad."))])
    assert from_tldr(tmp_path).column("chosen") == ["Good."]


def test_a_json_list_after_leading_whitespace_is_a_list(tmp_path: Path) -> None:
    """A pretty-printed JSON list preceded by a blank line is still a JSON list (not JSON lines, whose first line
    ``[`` would not parse): one P-SOUPS record, completion_a preferred, user = stem P1A, group P1."""
    record = {"user_input": "Q", "completion_a": "A", "completion_b": "B"}
    (tmp_path / "P1A.json").write_text("\n  " + json.dumps([record], indent=1))
    assert from_psoups(tmp_path / "P1A.json").rows == [
        {"prompt": "Q", "chosen": "A", "rejected": "B", "user_id": "P1A", "group": "P1"}]


def test_a_boolean_choice_is_not_an_int(tmp_path: Path) -> None:
    """``choice: true`` is a bool, not the index 1 (bool is an int subclass in Python, so it must be refused)."""
    bad = _jsonl(tmp_path / "batch1.json", [_comparison(("A", "B"), choice=True)])
    with pytest.raises(DataError, match=r"batch1\.json, line 1, column 'choice': expected int, got bool True"):
        from_tldr(bad)


def test_a_boolean_score_is_not_a_number(tmp_path: Path) -> None:
    """``score_chosen: true`` is refused rather than read as 1.0 (which would give margin 1.0 - 0.0)."""
    bad = _jsonl(tmp_path / "prefs.jsonl", [
        {"prompt": "Hi", "chosen": "Hello!", "rejected": "Go.", "score_chosen": True, "score_rejected": 0.0}])
    with pytest.raises(DataError, match=r"prefs\.jsonl, line 1, column 'score_chosen': expected a finite number, "
                                        r"got True"):
        from_ultrafeedback(bad)


def test_a_nan_score_is_missing_so_the_pair_has_no_margin(tmp_path: Path) -> None:
    """PRISM score NaN (JSON ``NaN``, Parquet's null float) is missing: the pair is kept, without a margin, instead
    of failing as "expected a finite number"."""
    history = [_user(0, "Q?"), _model(0, "A", float("nan"), True, 0), _model(0, "B", 10, False, 1)]
    path = _jsonl(tmp_path / "conversations.jsonl", [_conversation("u", history)])
    assert from_prism(path).rows == [{"prompt": "Q?", "chosen": "A", "rejected": "B", "user_id": "u"}]


def test_a_whitespace_only_response_is_dropped_as_empty(tmp_path: Path) -> None:
    """Comparison 1 rejects "   " (blank once stripped): dropped as empty_response; comparison 2 is kept."""
    path = _jsonl(tmp_path / "batch1.json", [_comparison(("   ", "Fine."), choice=1), _comparison(("Ok.", "No."))])
    data = from_tldr(path)
    assert data.column("chosen") == ["Ok."]
    assert data.meta["dropped"] == {"empty_response": 1}


# --- PRISM -----------------------------------------------------------------------------------------

def test_prism_drop_ties_keeps_negative_margins(tmp_path: Path) -> None:
    """Chosen "A" scored 30; "B" 70 gives margin 30 - 70 = -40 (kept: not a tie), "C" 30 gives 0 (a tie, dropped)."""
    history = [_user(0, "Q"), _model(0, "A", 30, True, 0), _model(0, "B", 70, False, 1), _model(0, "C", 30, False, 2)]
    path = _jsonl(tmp_path / "conversations.jsonl", [_conversation("u", history)])
    data = from_prism(path, drop_ties=True)
    assert data.rows == [{"prompt": "Q", "chosen": "A", "rejected": "B", "user_id": "u", "margin": -40.0}]
    assert data.meta["dropped"] == {"ties": 1}


def test_prism_group_from_the_conversation_before_the_survey(tmp_path: Path) -> None:
    """group_by="region": u1's conversation has region "conv" (used); u2's has none, so the survey's "Asia"."""
    conversations = [
        _conversation("u1", [_user(0, "Q"), _model(0, "A", 60, True, 0), _model(0, "B", 50, False, 1)], region="conv"),
        _conversation("u2", [_user(0, "Q"), _model(0, "C", 60, True, 0), _model(0, "D", 50, False, 1)]),
    ]
    path = _jsonl(tmp_path / "conversations.jsonl", conversations)
    survey = _jsonl(tmp_path / "survey.jsonl", [{"user_id": "u1", "region": "Europe"},
                                                {"user_id": "u2", "region": "Asia"}])
    assert from_prism(path, survey=survey, group_by="region").column("group") == ["conv", "Asia"]


def test_prism_next_turn_continues_from_the_chosen_response(tmp_path: Path) -> None:
    """Turn 0 lists "A" (within_turn_id 0, not chosen) before "B" (chosen): turn 1's prompt holds B, not A."""
    history = [_user(0, "Q1"), _model(0, "A", 10, False, 0), _model(0, "B", 90, True, 1),
               _user(1, "Q2"), _model(1, "C", 60, True, 0), _model(1, "D", 50, False, 1)]
    data = from_prism(_jsonl(tmp_path / "conversations.jsonl", [_conversation("u", history)]))
    assert [(r["chosen"], r["rejected"], r["margin"]) for r in data.rows] == [("B", "A", 80.0), ("C", "D", 10.0)]
    assert data.rows[1]["prompt"] == "user: Q1\nassistant: B\nuser: Q2"


def test_prism_survey_error_names_its_row(tmp_path: Path) -> None:
    """The survey's 2nd record has a region but no user_id: "survey.jsonl, line 2" (lines count from 1)."""
    history = [_user(0, "Q"), _model(0, "A", 60, True, 0), _model(0, "B", 50, False, 1)]
    path = _jsonl(tmp_path / "conversations.jsonl", [_conversation("u", history)])
    survey = _jsonl(tmp_path / "survey.jsonl", [{"user_id": "u", "region": "Europe"}, {"region": "Asia"}])
    with pytest.raises(DataError, match=r"survey\.jsonl, line 2, column 'user_id': missing"):
        from_prism(path, survey=survey, group_by="region")


def test_prism_counts_empty_conversations(tmp_path: Path) -> None:
    """Conversation 1 has an empty history (counted as empty_conversations); conversation 2 gives one pair."""
    history = [_user(0, "Q"), _model(0, "A", 60, True, 0), _model(0, "B", 50, False, 1)]
    path = _jsonl(tmp_path / "conversations.jsonl", [_conversation("u0", []), _conversation("u1", history)])
    data = from_prism(path)
    assert len(data) == 1 and data.meta["dropped"] == {"empty_conversations": 1}


def test_prism_pairs_follow_within_turn_id(tmp_path: Path) -> None:
    """Listed C (id 2), A (id 0, chosen), B (id 1): ordered by within_turn_id the rejected are B then C."""
    history = [_user(0, "Q"), _model(0, "C", 10, False, 2), _model(0, "A", 50, True, 0), _model(0, "B", 20, False, 1)]
    data = from_prism(_jsonl(tmp_path / "conversations.jsonl", [_conversation("u", history)]))
    assert data.column("rejected") == ["B", "C"] and data.column("margin") == [30.0, 40.0]


# --- TL;DR -----------------------------------------------------------------------------------------

def test_tldr_prompt_template_is_used(tmp_path: Path) -> None:
    """prompt_template "Q: {title} / {subreddit}" over info gives "Q: Title / sub", not the Reddit query."""
    path = _jsonl(tmp_path / "batch1.json", [_comparison(("A", "B"))])
    assert from_tldr(path, prompt_template="Q: {title} / {subreddit}").column("prompt") == ["Q: Title / sub"]


def test_tldr_template_with_an_absent_field_names_row_1(tmp_path: Path) -> None:
    """The first record already lacks info.nope: the error names line 1 (not 2)."""
    path = _jsonl(tmp_path / "batch1.json", [_comparison(("A", "B"))])
    with pytest.raises(DataError, match=r"batch1\.json, line 1, column 'info': prompt_template needs field 'nope'"):
        from_tldr(path, prompt_template="{nope}")


# --- P-SOUPS ---------------------------------------------------------------------------------------

def test_psoups_alpacafarm_fields_join_instruction_and_input(tmp_path: Path) -> None:
    """AlpacaFarm records: prompt = instruction + blank line + input (when non-empty); preference 1 keeps output_1,
    2 takes output_2. user = stem P3A, group P3."""
    records = [{"instruction": "Add.", "input": "2+2", "output_1": "4", "output_2": "5", "preference": 1},
               {"instruction": "Greet.", "input": "", "output_1": "Yo", "output_2": "Hello", "preference": 2}]
    (tmp_path / "P3A.json").write_text(json.dumps(records))
    assert from_psoups(tmp_path).rows == [
        {"prompt": "Add.\n\n2+2", "chosen": "4", "rejected": "5", "user_id": "P3A", "group": "P3"},
        {"prompt": "Greet.", "chosen": "Hello", "rejected": "Yo", "user_id": "P3A", "group": "P3"},
    ]


def test_psoups_record_user_id_beats_the_file_stem(tmp_path: Path) -> None:
    """allcombo.json records carry user_id: "P2C" (group P2) and 7 (user "7", no profile, so no group)."""
    records = [{"user_input": "Q", "completion_a": "A", "completion_b": "B", "user_id": "P2C"},
               {"user_input": "Q", "completion_a": "C", "completion_b": "D", "user_id": 7}]
    (tmp_path / "allcombo.json").write_text(json.dumps(records))
    data = from_psoups(tmp_path / "allcombo.json")
    assert data.column("user_id") == ["P2C", "7"] and data.column("group") == ["P2", None]


def test_psoups_lower_case_stem_still_gives_a_group(tmp_path: Path) -> None:
    """File p1a.json: user "p1a" (as spelt), group "P1" (the profile pattern ignores case)."""
    (tmp_path / "p1a.json").write_text(json.dumps([{"user_input": "Q", "completion_a": "A", "completion_b": "B"}]))
    data = from_psoups(tmp_path)
    assert data.column("user_id") == ["p1a"] and data.column("group") == ["P1"]


# --- UltraFeedback ---------------------------------------------------------------------------------

def test_ultrafeedback_one_element_list_annotations(tmp_path: Path) -> None:
    """Mirrors store ``helpfulness: [{"Rating": "5"}]``: read as 5 (vs 2, margin 3); the three other attributes
    have no rating on either side, so missing_rating is counted 3 times."""
    record = {"instruction": "P", "completions": [_uf_completion("A", {"helpfulness": [{"Rating": "5"}]}),
                                                  _uf_completion("B", {"helpfulness": [{"Rating": "2"}]})]}
    data = from_ultrafeedback(_jsonl(tmp_path / "uf.jsonl", [record]))
    assert data.rows == [{"prompt": "P", "chosen": "A", "rejected": "B", "user_id": "helpfulness", "margin": 3.0,
                          "chosen_attributes": {"helpfulness": 5.0}, "rejected_attributes": {"helpfulness": 2.0},
                          "controversial": False}]
    assert data.meta["dropped"] == {"missing_rating": 3}


def test_ultrafeedback_attribute_subset_makes_only_those_users(tmp_path: Path) -> None:
    """attributes=("honesty",): one row, honesty prefers B (5 vs 1, margin 4); the other attributes make no rows."""
    ratings_a = {"helpfulness": {"Rating": "5"}, "honesty": {"Rating": "1"}, "truthfulness": {"Rating": "5"}}
    ratings_b = {"helpfulness": {"Rating": "1"}, "honesty": {"Rating": "5"}, "truthfulness": {"Rating": "1"}}
    record = {"instruction": "P", "completions": [_uf_completion("A", ratings_a), _uf_completion("B", ratings_b)]}
    data = from_ultrafeedback(_jsonl(tmp_path / "uf.jsonl", [record]), attributes=("honesty",))
    assert [(r["user_id"], r["chosen"], r["margin"], r["controversial"]) for r in data.rows] == [
        ("honesty", "B", 4.0, False)]
    assert data.meta["dropped"] == {}


def test_ultrafeedback_identical_responses_count_once_per_attribute(tmp_path: Path) -> None:
    """Completions X, X, Y; attributes helpfulness + truthfulness. Pair (X, X): identical, 2 drops (one per
    attribute-user). Pairs (X, Y) twice: helpfulness rows (5>1, 3>1), truthfulness unrated: 2 missing_rating."""
    completions = [_uf_completion("X", {"helpfulness": {"Rating": "5"}}),
                   _uf_completion("X", {"helpfulness": {"Rating": "3"}}),
                   _uf_completion("Y", {"helpfulness": {"Rating": "1"}})]
    path = _jsonl(tmp_path / "uf.jsonl", [{"instruction": "P", "completions": completions}])
    data = from_ultrafeedback(path, attributes=("helpfulness", "truthfulness"))
    assert data.column("margin") == [4.0, 2.0]
    assert data.meta["dropped"] == {"identical_responses": 2, "missing_rating": 2}


def test_ultrafeedback_record_with_completions_is_the_original_format(tmp_path: Path) -> None:
    """A record holding ``completions`` (and a stray ``chosen`` field) is read per attribute, not as binarized."""
    completions = [_uf_completion("A", {"helpfulness": {"Rating": "4"}}),
                   _uf_completion("B", {"helpfulness": {"Rating": "2"}})]
    path = _jsonl(tmp_path / "uf.jsonl", [{"instruction": "P", "completions": completions, "chosen": "A"}])
    data = from_ultrafeedback(path, attributes=("helpfulness",))
    assert [(r["user_id"], r["chosen"], r["margin"]) for r in data.rows] == [("helpfulness", "A", 2.0)]


# --- PersonalLLM -----------------------------------------------------------------------------------

def test_personalllm_seed_changes_the_sampled_users() -> None:
    """Dirichlet users are drawn with ``seed``: seeds 1 and 2 give different weightings (same seed, same ones)."""
    one = from_personalllm(PERSONALLLM, n_users=2, seed=1).meta["users"]
    assert one == from_personalllm(PERSONALLLM, n_users=2, seed=1).meta["users"]
    assert one != from_personalllm(PERSONALLLM, n_users=2, seed=2).meta["users"]


def test_personalllm_model_first_score_columns(tmp_path: Path) -> None:
    """``{model}_response_{i}`` columns: models gemma, phi. User g (gemma): B 3 > A 1, margin 2; user p (phi):
    A 2 > B 0, margin 2."""
    record = {"prompt": "P", "response_1": "A", "response_2": "B", "gemma_response_1": 1.0, "gemma_response_2": 3.0,
              "phi_response_1": 2.0, "phi_response_2": 0.0}
    data = from_personalllm(_jsonl(tmp_path / "train.jsonl", [record]), users={"g": {"gemma": 1.0}, "p": [0, 1]})
    assert data.meta["reward_models"] == ["gemma", "phi"]
    assert [(r["user_id"], r["chosen"], r["margin"]) for r in data.rows] == [("g", "B", 2.0), ("p", "A", 2.0)]
    assert data.rows[0]["chosen_attributes"] == {"gemma": 3.0, "phi": 0.0}


def test_personalllm_rewards_equal_up_to_rounding_are_a_tie(tmp_path: Path) -> None:
    """Scores (0, 0, 1) and (1, 3, 0) under weights (0.1, 0.2, 0.7): both rewards are 0.7, but the float sums are
    0.7 and 0.7000000000000001. It was a row with chosen "B" and margin 1.1e-16; it is a tie, skipped and counted."""
    record = {"prompt": "P", "response_1": "A", "response_2": "B", "response_1_x": 0.0, "response_1_y": 0.0,
              "response_1_z": 1.0, "response_2_x": 1.0, "response_2_y": 3.0, "response_2_z": 0.0}
    data = from_personalllm(_jsonl(tmp_path / "train.jsonl", [record, {**record, "response_2_y": 4.0}]),
                            users={"u": {"x": 0.1, "y": 0.2, "z": 0.7}})
    assert [(r["chosen"], round(r["margin"], 6)) for r in data.rows] == [("B", 0.2)]
    assert data.meta["dropped"]["ties"] == 1


def test_personalllm_a_nan_score_of_an_absent_response_is_missing(tmp_path: Path) -> None:
    """A first row whose third response is null and scored NaN (as JSON lines from pandas write it): model m scores
    the two responses there are. NaN counted as a score gave m three responses, and "no reward-model score
    columns found"."""
    path = tmp_path / "train.jsonl"
    path.write_text('{"prompt": "P", "response_1": "A", "response_2": "B", "response_3": null, "response_1_m": 1.0, '
                    '"response_2_m": 2.0, "response_3_m": NaN}\n')
    data = from_personalllm(path, users={"u": [1.0]})
    assert data.meta["reward_models"] == ["m"]
    assert [(r["chosen"], r["margin"]) for r in data.rows] == [("B", 1.0)]


def test_personalllm_reward_models_option_picks_the_columns() -> None:
    """reward_models=["gemma_7b"], user a = [1.0]: scores 1, 3, -1 (prompt 1) and 1, 2, 0 (prompt 2) give margins
    2, 2, 4 and 1, 1, 2; attributes hold gemma_7b only."""
    data = from_personalllm(PERSONALLLM, users={"a": [1.0]}, reward_models=["gemma_7b"])
    assert data.meta["reward_models"] == ["gemma_7b"]
    assert data.column("margin") == [2.0, 2.0, 4.0, 1.0, 1.0, 2.0]
    assert data.rows[0]["chosen_attributes"] == {"gemma_7b": 3.0}


def test_personalllm_small_alpha_gives_near_one_hot_users() -> None:
    """Dirichlet(0.01) puts nearly all weight on one reward model: every user's largest weight is above 0.9
    (Dirichlet(1) would spread it; P(max > 0.9) per user there is about 3 * 0.1^2 = 0.03)."""
    users = from_personalllm(PERSONALLLM, n_users=4, alpha=0.01, seed=0).meta["users"]
    assert all(max(w.values()) > 0.9 for w in users.values())


def test_personalllm_samples_ten_users_by_default() -> None:
    """n_users defaults to 10: users user_0 ... user_9."""
    assert list(from_personalllm(PERSONALLLM).meta["users"]) == [f"user_{k}" for k in range(10)]


# --- Pick-a-Pic ------------------------------------------------------------------------------------

def _pal(tmp_path: Path, **arrays: np.ndarray) -> Path:
    base = {"uid": np.array(["u0", "u1"]), "p": np.eye(2), "x_left": np.array([[1.0, 0.0], [0.0, 1.0]]),
            "x_right": np.array([[0.0, 1.0], [1.0, 0.0]]), "y": np.array([-1, 1])}
    np.savez(tmp_path / "pal.npz", **{**base, **arrays})
    return tmp_path / "pal.npz"


def test_pickapic_byte_string_uids_are_decoded(tmp_path: Path) -> None:
    """uid stored as bytes (numpy dtype S2): users "u0", "u1", not "b'u0'"."""
    data = from_pickapic(_pal(tmp_path, uid=np.array([b"u0", b"u1"], dtype="S2")))
    assert data.user_ids == ["u0", "u1"]


def test_pickapic_one_dimensional_embeddings_are_refused(tmp_path: Path) -> None:
    """x_left of shape (2,) (one number per sample) is not a samples x dims matrix."""
    with pytest.raises(DataError, match=r"pal\.npz, column 'x_left': expected a 2-D \(samples x dims\) array, "
                                        r"got shape \(2,\)"):
        from_pickapic(_pal(tmp_path, x_left=np.array([1.0, 2.0])))
