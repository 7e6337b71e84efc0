"""Dataset adapters on tiny files in each dataset's own format (tests/assets/adapters/<name>/)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from pluralign.data.adapters import (
    ADAPTERS, from_personalllm, from_pickapic, from_prism, from_psoups, from_tldr, from_ultrafeedback,
)
from pluralign.data.contract import DataError

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "adapters"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_registry_names_every_adapter():
    assert ADAPTERS == {
        "prism": from_prism, "tldr": from_tldr, "psoups": from_psoups, "ultrafeedback": from_ultrafeedback,
        "personalllm": from_personalllm, "pickapic": from_pickapic,
    }


# --- PRISM -----------------------------------------------------------------------------------------

def test_prism_pairs_per_turn(caplog):
    with caplog.at_level(logging.WARNING, logger="pluralign.data"):
        data = from_prism(ASSETS / "prism")
    assert len(data) == 5
    assert data.rows[0] == {
        "prompt": "What is the capital of France?", "chosen": "Paris.", "rejected": "It is Paris, on the Seine.",
        "user_id": "user0", "margin": 20.0,
    }
    assert [r["rejected"] for r in data.rows[:3]] == ["It is Paris, on the Seine.", "Lyon.", "I don't know."]
    assert data.column("margin") == [20.0, 0.0, 60.0, 50.0, 40.0]
    # later turns see the conversation so far, continued from the chosen response
    assert data.rows[3]["prompt"] == "user: What is the capital of France?\nassistant: Paris.\nuser: And of Italy?"
    assert (data.rows[3]["chosen"], data.rows[3]["rejected"]) == ("Rome.", "Milan.")
    assert data.rows[4]["chosen"].startswith("Why did the chicken")
    assert data.user_ids == ["user0", "user1"]
    assert data.meta["dropped"] == {"turns_without_choice": 1}
    assert "1 turns_without_choice" in caplog.text


def test_prism_groups_from_survey_or_conversation_and_ties():
    by_region = from_prism(ASSETS / "prism", group_by="location.reside_region")
    assert by_region.column("group") == ["Europe"] * 4 + ["Asia"]
    by_type = from_prism(ASSETS / "prism" / "conversations.jsonl", group_by="conversation_type")
    assert by_type.column("group") == ["unguided"] * 4 + ["values guided"]
    no_ties = from_prism(ASSETS / "prism", drop_ties=True)
    assert len(no_ties) == 4 and no_ties.meta["dropped"]["ties"] == 1


def test_convert_does_not_write_over_the_survey_it_reads(tmp_path, capsys):
    """--out survey.jsonl beside the conversations (the survey found there) or --set survey=X --out X replaced the
    participants' survey with the pairs, exit 0; refused now, the survey intact."""
    import shutil

    from pluralign.cli import main

    folder = tmp_path / "prism"
    shutil.copytree(ASSETS / "prism", folder)
    survey = (folder / "survey.jsonl").read_text()
    for extra in ([], ["--set", f"survey={folder / 'survey.jsonl'}"]):
        assert main(["data", "convert", "prism", str(folder / "conversations.jsonl"), "--out",
                     str(folder / "survey.jsonl"), "--set", "group_by=location.reside_region", *extra]) == 2
        assert "would overwrite survey" in capsys.readouterr().err
        assert (folder / "survey.jsonl").read_text() == survey
    assert main(["data", "convert", "prism", str(folder / "conversations.jsonl"), "--out", str(tmp_path / "p.jsonl"),
                 "--set", "group_by=location.reside_region"]) == 0


def test_prism_bad_input_names_file_row_and_field(tmp_path):
    conversations = _jsonl(ASSETS / "prism" / "conversations.jsonl")
    del conversations[1]["conversation_history"][2]["role"]
    bad = _write_jsonl(tmp_path / "conversations.jsonl", conversations)
    where = r"conversations\.jsonl, line 2, column 'conversation_history\[2\]\.role': missing"
    with pytest.raises(DataError, match=where):
        from_prism(bad)
    conversations = _jsonl(ASSETS / "prism" / "conversations.jsonl")
    conversations[0]["conversation_history"][2]["if_chosen"] = True
    _write_jsonl(bad, conversations)
    with pytest.raises(DataError, match=r"line 1, column 'conversation_history\[2\]\.if_chosen': turn 0 has several"):
        from_prism(bad)


# --- TL;DR -----------------------------------------------------------------------------------------

def test_tldr_comparisons_folder():
    data = from_tldr(ASSETS / "tldr")
    assert len(data) == 3
    assert data.rows[0] == {
        "prompt": "SUBREDDIT: r/cats\nTITLE: Cat problem\nPOST: My cat keeps knocking things off the table every "
                  "morning.\n\nTL;DR:",
        "chosen": " My cat is annoying and knocks stuff off tables each morning.",
        "rejected": " Cat knocks things over.",
        "user_id": "wA",
    }
    assert data.column("chosen")[1:] == [" New job, long commute.", " Storm hits coast."]
    assert data.rows[2]["prompt"] == "TITLE: Storm hits coast\nARTICLE: A storm hit the coast on Monday.\n\nTL;DR:"
    assert data.user_ids == ["wA", "wB", "wC"]
    assert data.meta["dropped"] == {"identical_responses": 1}


def test_a_folder_saved_by_datasets_is_read_through_its_arrow_files(tmp_path):
    """`data convert --help` offers "a folder saved by datasets": its dataset_info.json was read as records
    ("invalid JSON"); the Arrow files are, every split's."""
    import datasets

    records = [r for file in sorted((ASSETS / "tldr").glob("*.json")) for r in _jsonl(file)]
    datasets.Dataset.from_list(records).save_to_disk(str(tmp_path / "saved"))
    halves = {"train": records[:2], "validation": records[2:]}
    splits = datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in halves.items()})
    splits.save_to_disk(str(tmp_path / "dict"))
    expected = from_tldr(ASSETS / "tldr").rows
    assert from_tldr(tmp_path / "saved").rows == expected
    assert sorted(map(str, from_tldr(tmp_path / "dict").rows)) == sorted(map(str, expected))


def test_tldr_split_filter_counts_the_rest():
    data = from_tldr(ASSETS / "tldr" / "batch3.json", splits={"train"})
    assert len(data) == 1 and data.meta["dropped"] == {"identical_responses": 1, "other_split": 1}


def test_tldr_bad_choice_names_file_row_and_field(tmp_path):
    records = _jsonl(ASSETS / "tldr" / "batch3.json")
    records[1]["choice"] = 2
    bad = _write_jsonl(tmp_path / "batch9.json", records)
    with pytest.raises(DataError, match=r"batch9\.json, line 2, column 'choice': expected 0 or 1, got 2"):
        from_tldr(bad)


# --- P-SOUPS ---------------------------------------------------------------------------------------

def test_psoups_profile_files():
    data = from_psoups(ASSETS / "psoups")
    assert len(data) == 4
    assert data.rows[0] == {
        "prompt": "Explain photosynthesis.",
        "chosen": "Plants use sunlight to make food, like a kitchen powered by the sun.",
        "rejected": "Photosynthesis converts light energy into chemical energy via the Calvin cycle.",
        "user_id": "P1A", "group": "P1",
    }
    assert data.column("user_id") == ["P1A", "P1A", "P2B", "P2B"]
    assert data.column("group") == ["P1", "P1", "P2", "P2"]
    assert data.rows[3]["chosen"] == "Red, the colour of ripe tomatoes and stop signs."  # preference: 2
    assert data.meta["dropped"] == {"ties": 1}


def test_psoups_from_a_saved_dataset_names_each_profile_by_its_split(tmp_path):
    """A DatasetDict saved with one split per profile: P1A and P2B, as the files give them (every Arrow file is
    data-00000-of-00001, which made one user of all profiles); a saved Dataset without user ids is refused."""
    import datasets
    import pandas as pd

    profiles = {name: json.loads((ASSETS / "psoups" / f"{name}.json").read_text()) for name in ("P1A", "P2B")}
    # from a frame: Dataset.from_list takes its columns from the first record only, and would drop "preference"
    saved = {n: datasets.Dataset.from_pandas(pd.DataFrame(r), preserve_index=False) for n, r in profiles.items()}
    datasets.DatasetDict(saved).save_to_disk(str(tmp_path / "dict"))
    data = from_psoups(tmp_path / "dict")
    assert data.column("user_id") == from_psoups(ASSETS / "psoups").column("user_id") == ["P1A", "P1A", "P2B", "P2B"]
    assert data.column("group") == ["P1", "P1", "P2", "P2"]
    saved["P1A"].save_to_disk(str(tmp_path / "one"))
    with pytest.raises(DataError, match=r"data-00000-of-00001\.arrow, row 1, column 'user_id': missing; a saved "
                                        r"Dataset's file name names no profile"):
        from_psoups(tmp_path / "one")


def test_psoups_missing_completion_names_file_row_and_field(tmp_path):
    records = json.loads((ASSETS / "psoups" / "P1A.json").read_text())
    del records[1]["completion_b"]
    (tmp_path / "P1B.json").write_text(json.dumps(records))
    with pytest.raises(DataError, match=r"P1B\.json, row 2, column 'completion_b': missing"):
        from_psoups(tmp_path)


# --- UltraFeedback ---------------------------------------------------------------------------------

def test_ultrafeedback_p_one_user_per_attribute():
    data = from_ultrafeedback(ASSETS / "ultrafeedback" / "evol_instruct.jsonl")
    assert len(data) == 6
    assert data.rows[0] == {
        "prompt": "Write a haiku about rain.", "chosen": "Soft rain on the roof", "rejected": "Rain falls down today",
        "user_id": "helpfulness", "margin": 2.0,
        "chosen_attributes": {"helpfulness": 5.0, "honesty": 5.0, "instruction_following": 4.0, "truthfulness": 5.0},
        "rejected_attributes": {"helpfulness": 3.0, "honesty": 5.0, "instruction_following": 4.0, "truthfulness": 2.0},
        "controversial": False,
    }
    assert data.column("controversial") == [False, False, True, True, True, False]
    assert data.column("user_id") == ["helpfulness", "truthfulness", "helpfulness", "instruction_following",
                                      "truthfulness", "instruction_following"]
    assert data.column("margin") == [2.0, 3.0, 2.0, 1.0, 3.0, 1.0]
    assert data.rows[3]["chosen"] == "Rain is wet and cold"
    assert "honesty" not in data.rows[3]["chosen_attributes"]  # "N/A" is left out, not invented
    assert data.meta["dropped"] == {"missing_rating": 2, "ties": 4}


def test_ultrafeedback_controversial_and_binarized(tmp_path):
    data = from_ultrafeedback(ASSETS / "ultrafeedback", controversial_only=True)
    assert data.column("user_id") == ["helpfulness", "instruction_following", "truthfulness"]
    assert data.meta["dropped"]["uncontroversial"] == 3
    binarized = _write_jsonl(tmp_path / "train_prefs.jsonl", [
        {"prompt": "Hi", "prompt_id": "x",
         "chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
         "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away."}],
         "messages": [], "score_chosen": 8.0, "score_rejected": 3.0},
        {"prompt": "Yo", "chosen": "Yo!", "rejected": "Hm.", "score_chosen": 5.0, "score_rejected": 5.0},
    ])
    flat = from_ultrafeedback(binarized)
    assert flat.rows == [{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away.", "margin": 5.0}]
    assert flat.meta["dropped"] == {"ties": 1}


def test_ultrafeedback_bad_rating_names_file_row_and_field(tmp_path):
    records = _jsonl(ASSETS / "ultrafeedback" / "evol_instruct.jsonl")
    records[0]["completions"][1]["annotations"]["helpfulness"]["Rating"] = "five"
    bad = _write_jsonl(tmp_path / "sharegpt.jsonl", records)
    with pytest.raises(DataError, match=r"sharegpt\.jsonl, line 1, column 'completions\[1\]\.annotations\.helpfulness"
                                        r"\.Rating': expected a number, got 'five'"):
        from_ultrafeedback(bad)


# --- PersonalLLM -----------------------------------------------------------------------------------

def _personalllm_parquet(tmp_path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "train-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(_jsonl(ASSETS / "personalllm" / "train.jsonl")), path)
    return path


def test_personalllm_named_users_from_parquet(tmp_path):
    users = {"a": {"gemma_2b": 1.0}, "b": {"gemma_7b": 1.0}}
    data = from_personalllm(_personalllm_parquet(tmp_path), users=users)
    assert data.meta["reward_models"] == ["gemma_2b", "gemma_7b", "mistral_raft"]  # response_i_model is text: ignored
    assert len(data) == 11
    assert data.rows[0] == {
        "prompt": "How do I boil an egg?", "chosen": "Boil it 9 minutes.", "rejected": "Put it in water.",
        "user_id": "a", "margin": 1.0,
        "chosen_attributes": {"gemma_2b": 2.0, "gemma_7b": 1.0, "mistral_raft": 0.5},
        "rejected_attributes": {"gemma_2b": 1.0, "gemma_7b": 3.0, "mistral_raft": 0.5},
    }
    assert data.column("user_id") == ["a"] * 3 + ["b"] * 3 + ["a"] * 2 + ["b"] * 3
    assert data.column("chosen")[3:6] == ["Put it in water.", "Boil it 9 minutes.", "Put it in water."]
    assert data.column("margin") == [1.0, 3.0, 2.0, 2.0, 2.0, 4.0, 1.0, 1.0, 1.0, 1.0, 2.0]
    assert data.meta["dropped"] == {"ties": 1}  # user a: "Hi!" and "Hello there." both score 1.0


def test_personalllm_dirichlet_users_are_seeded():
    path = ASSETS / "personalllm" / "train.jsonl"
    first = from_personalllm(path, n_users=3, alpha=0.5, seed=7, pairs_per_prompt=1)
    again = from_personalllm(path, n_users=3, alpha=0.5, seed=7, pairs_per_prompt=1)
    assert first.rows == again.rows
    assert first.user_ids == ["user_0", "user_1", "user_2"]
    assert len(first) + first.meta["dropped"].get("ties", 0) == 3 * 2  # one pair per user and prompt
    for weights in first.meta["users"].values():
        assert sum(weights.values()) == pytest.approx(1.0)


def test_personalllm_bad_input_names_file_row_and_field(tmp_path):
    records = _jsonl(ASSETS / "personalllm" / "train.jsonl")
    del records[1]["response_2_gemma_7b"]
    bad = _write_jsonl(tmp_path / "test.jsonl", records)
    with pytest.raises(DataError, match=r"test\.jsonl, line 2, column 'response_2_gemma_7b': missing"):
        from_personalllm(bad)
    records = _jsonl(ASSETS / "personalllm" / "train.jsonl")
    records[0]["response_2_gemma_7b"] = None  # in row 1 it once dropped gemma_7b for every row, without a word
    bad = _write_jsonl(tmp_path / "test.jsonl", records)
    with pytest.raises(DataError, match=r"test\.jsonl, line 1, column 'response_2_gemma_7b': missing"):
        from_personalllm(bad)
    with pytest.raises(DataError, match=r"user 'z' weights unknown reward models \['gpt4'\]"):
        from_personalllm(ASSETS / "personalllm", users={"z": {"gpt4": 1.0}})


# --- Pick-a-Pic (PAL embeddings) -------------------------------------------------------------------

NPZ = ASSETS / "pickapic" / "pickapic_v1-openclip-h14_tiny.npz"


def _pal_arrays() -> dict[str, np.ndarray]:
    with np.load(NPZ, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def test_pickapic_npz_follows_pal_labels():
    data = from_pickapic(NPZ)
    assert len(data) == 3  # the y = 0 tie is dropped
    assert data.rows[0] == {  # y = -1: the left image is preferred
        "chosen_embedding": [1.0, 0.0, 0.0], "rejected_embedding": [0.0, 0.0, 1.0],
        "prompt_embedding": [0.5, 0.5], "user_id": "u0",
    }
    assert data.rows[1]["chosen_embedding"] == [1.0, 0.0, 0.0]  # y = +1: the right image
    assert data.rows[1]["rejected_embedding"] == [0.0, 1.0, 0.0]
    assert data.column("user_id") == ["u0", "u0", "u1"]
    assert data.meta["dropped"] == {"ties": 1}
    assert "prompt_embedding" not in from_pickapic(NPZ, prompt_embeddings=False).rows[0]


def test_pickapic_safetensors_npy_folder_and_pt_agree(tmp_path):
    from safetensors.numpy import save_file
    import torch

    arrays = _pal_arrays()
    expected = from_pickapic(NPZ).rows
    tensors = {k: v for k, v in arrays.items() if k != "uid"}
    save_file(tensors, str(tmp_path / "embeds.safetensors"), metadata={"uid": json.dumps(arrays["uid"].tolist())})
    assert from_pickapic(tmp_path / "embeds.safetensors").rows == expected
    folder = tmp_path / "npy"
    folder.mkdir()
    for name, value in arrays.items():
        np.save(folder / f"{name}.npy", value)
    assert from_pickapic(folder).rows == expected
    torch.save({**{k: torch.from_numpy(v) for k, v in tensors.items()}, "uid": arrays["uid"].tolist()},
               tmp_path / "embeds.pt")
    assert from_pickapic(tmp_path / "embeds.pt").rows == expected


def test_pickapic_never_unpickles(tmp_path):
    (tmp_path / "123.joblib").write_bytes(b"not read")
    with pytest.raises(DataError, match="pickles and are not loaded"):
        from_pickapic(tmp_path)
    arrays = _pal_arrays()
    np.savez(tmp_path / "objects.npz", **{**arrays, "uid": np.array([{"id": 1}] * 4, dtype=object)})
    with pytest.raises(DataError, match=r"objects\.npz: cannot read without unpickling"):
        from_pickapic(tmp_path / "objects.npz")


def test_pickapic_bad_arrays_name_file_row_and_field(tmp_path):
    arrays = _pal_arrays()
    np.savez(tmp_path / "labels.npz", **{**arrays, "y": np.array([-1, 1, 2, 0])})
    with pytest.raises(DataError, match=r"labels\.npz, row 3, column 'y': expected -1"):
        from_pickapic(tmp_path / "labels.npz")
    np.savez(tmp_path / "short.npz", **{**arrays, "x_right": arrays["x_right"][:3]})
    with pytest.raises(DataError, match=r"short\.npz, column 'x_right': has 3 rows, y has 4"):
        from_pickapic(tmp_path / "short.npz")


def test_personalllm_simulated_users_weights_are_written_beside_the_rows(tmp_path, capsys):
    """The sampled weightings are the simulated users' ground truth: `data convert` writes them (they were only in
    the log), with the options that drew them."""
    from pluralign.cli import main

    out = tmp_path / "personal.jsonl"
    assert main(["data", "convert", "personalllm", str(ASSETS / "personalllm" / "train.jsonl"), "--out", str(out),
                 "--set", "n_users=3", "--set", "seed=7"]) == 0
    meta = json.loads((tmp_path / "personal.meta.json").read_text())
    drawn = from_personalllm(ASSETS / "personalllm" / "train.jsonl", n_users=3, seed=7)
    assert meta["users"] == drawn.meta["users"] and meta["options"] == {"n_users": 3, "seed": 7}
    assert meta["n_rows"] == len(drawn) and meta["n_users"] == 3 and meta["adapter"] == "personalllm"
