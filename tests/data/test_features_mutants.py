"""featurize by hand, with a stand-in encoder (no backbone): which text's vector lands in which column."""

from __future__ import annotations

import pytest
import torch

from conftest import StandInEncoder
from pluralign.data import DataError, PreferenceSet
from pluralign.data.cache import EmbeddingCache
from pluralign.data.features import PairDataset, PairFeatures, featurize


def test_text_rows_give_prompt_chosen_and_rejected_in_their_columns(tmp_path) -> None:
    """Row 0: prompt "pp", chosen "abc", rejected "z"; row 1: no prompt, chosen "yy", rejected "bbbb": each
    column holds its own text's vector, and the users are indices among the known ones, −1 where unknown."""
    data = PreferenceSet.from_rows([
        {"prompt": "pp", "chosen": "abc", "rejected": "z", "user_id": "u1"},
        {"prompt": "", "chosen": "yy", "rejected": "bbbb", "user_id": "stranger"},
    ])
    features = featurize(data, StandInEncoder(), EmbeddingCache(tmp_path), user_index={"u0": 0, "u1": 1})
    assert torch.equal(features.prompt, torch.tensor([[2.0, 112.0], [0.0, 0.0]]))
    assert torch.equal(features.chosen, torch.tensor([[3.0, 97.0], [2.0, 121.0]]))
    assert torch.equal(features.rejected, torch.tensor([[1.0, 122.0], [4.0, 98.0]]))
    assert features.user.tolist() == [1, -1]
    assert featurize(data, StandInEncoder(), EmbeddingCache(tmp_path)).user.tolist() == [-1, -1]  # no known users


def test_embedding_rows_are_used_as_they_are() -> None:
    """Precomputed vectors go through untouched (no encoder needed); without prompt vectors the prompt has 0 columns."""
    data = PreferenceSet.from_rows([{"chosen_embedding": [1.0, 2.0], "rejected_embedding": [3.0, 4.0], "user_id": "a"},
                                    {"chosen_embedding": [5.0, 6.0], "rejected_embedding": [7.0, 8.0]}])
    features = featurize(data, user_index={"a": 0})
    assert features.prompt.shape == (2, 0)
    assert torch.equal(features.chosen, torch.tensor([[1.0, 2.0], [5.0, 6.0]]))
    assert torch.equal(features.rejected, torch.tensor([[3.0, 4.0], [7.0, 8.0]]))
    assert features.user.tolist() == [0, -1]


def test_a_missing_embedding_names_its_row_counted_from_one() -> None:
    """The second record lacks the prompt vector the first has: "row 2", as every other message of the contract,
    said by the reader before anything reaches the features."""
    rows = [{"prompt_embedding": [1.0], "chosen_embedding": [1.0, 0.0], "rejected_embedding": [0.0, 1.0]},
            {"chosen_embedding": [1.0, 0.0], "rejected_embedding": [0.0, 1.0]}]
    with pytest.raises(DataError, match=r"^x\.jsonl, row 2, column 'prompt_embedding': missing here, not in the "):
        featurize(PreferenceSet.from_rows(rows, "x.jsonl"))


def test_a_pair_dataset_gives_one_row_or_a_batch_with_its_row_indices() -> None:
    """``PairDataset[i]`` (what a sampler without batch fetching asks for) is row i's columns; a batch fetch is the
    rows stacked, with their indices as ``row`` (VPL finds a batch's pairs among all features by them)."""
    features = PairFeatures(torch.zeros(3, 0), torch.arange(6.0).reshape(3, 2), -torch.arange(6.0).reshape(3, 2),
                            torch.tensor([0, 1, -1]))
    dataset = PairDataset(features)
    one = dataset[2]
    assert len(dataset) == 3 and one["chosen"].tolist() == [4.0, 5.0] and one["user"].item() == -1
    batch = dataset.__getitems__([2, 0])
    assert batch["rejected"].tolist() == [[-4.0, -5.0], [-0.0, -1.0]] and batch["row"].tolist() == [2, 0]
