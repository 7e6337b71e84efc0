"""pluralign.methods.run_files by hand: the frozen weights' sha256 (its exact bytes, in name order), the one-line
weight mismatch messages and the dims check of config.json."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest
import torch

from pluralign.io import fingerprint
from pluralign.methods.run_files import check_weights, read_run_config


def test_fingerprint_by_hand_in_name_order() -> None:
    """sha256 over "name|dtype|shape|" then the raw bytes, names sorted: the dict's order does not matter."""
    tensors = {"b": torch.tensor([1.0]), "a": torch.tensor([[2]], dtype=torch.int16)}
    expected = hashlib.sha256(b"a|torch.int16|(1, 1)|" + struct.pack("<h", 2)
                              + b"b|torch.float32|(1,)|" + struct.pack("<f", 1.0)).hexdigest()
    assert fingerprint(tensors) == expected
    assert fingerprint({"a": tensors["a"], "b": tensors["b"]}) == expected


def test_fingerprint_sees_names_dtypes_and_shapes() -> None:
    zeros = torch.zeros(2, 3)
    base = fingerprint({"w": zeros})
    assert fingerprint({"v": zeros}) != base  # same bytes under another name
    assert fingerprint({"w": zeros.reshape(3, 2)}) != base  # same bytes, another shape
    assert fingerprint({"w": torch.zeros(6, dtype=torch.int32).reshape(2, 3)}) != base  # same bytes, another dtype


def test_check_weights_names_the_kind_of_mismatch_and_counts_them() -> None:
    config = Path("run/config.json")
    with pytest.raises(ValueError) as err:
        check_weights({"a": torch.zeros(2)}, {"b": torch.zeros(2)}, config, "bt")
    assert str(err.value) == ("run/config.json: method 'bt' does not match the weights in model.safetensors "
                              "(a: in the model, not in the file; 2 mismatches in all)")
    with pytest.raises(ValueError) as err:  # same names, another shape: one mismatch, no count
        check_weights({"a": torch.zeros(2)}, {"a": torch.zeros(3)}, config, "bt")
    assert str(err.value) == ("run/config.json: the weights in model.safetensors do not match the config "
                              "(a: [3] in the file, [2] in the model)")
    check_weights({"a": torch.zeros(2)}, {"a": torch.ones(2)}, config, "bt")  # values may differ


def test_dims_must_be_integers_not_booleans(tmp_path) -> None:
    path = tmp_path / "config.json"
    saved = {"method": "bt", "config": {}, "dims": {"prompt": 0, "response": 4}, "user_ids": [],
             "uses_embeddings": True}
    path.write_text(json.dumps(saved))
    assert read_run_config(path)["dims"] == {"prompt": 0, "response": 4}
    path.write_text(json.dumps({**saved, "dims": {"prompt": True, "response": 4}}))
    with pytest.raises(ValueError, match=r"'dims' must hold non-negative integers 'prompt' and 'response'"):
        read_run_config(path)
