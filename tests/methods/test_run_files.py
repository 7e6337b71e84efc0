"""Damaged run folders loaded through ``PreferenceModel.from_pretrained`` (pluralign.methods.run_files): a
config.json that is not UTF-8, a key of the wrong type, an unknown method, a malformed 'frozen_backbone', a
missing model.safetensors and a feature center that does not match the config each end in one line naming the
file. A tiny BT fitted on inline embedding rows is saved once per test, then damaged."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from pluralign.methods import METHODS, PreferenceModel
from pluralign.methods.run_files import check_frozen

ROWS = [{"chosen_embedding": [1.0, 0.0], "rejected_embedding": [0.0, 1.0], "user_id": "u0"},
        {"chosen_embedding": [0.0, 2.0], "rejected_embedding": [2.0, 0.0], "user_id": "u0"}]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A saved BT run (no hidden layer, one epoch) in its own folder."""
    folder = tmp_path / "run"
    METHODS["bt"](epochs=1, hidden=[]).fit(ROWS, progress=False).save_pretrained(folder)
    assert isinstance(PreferenceModel.from_pretrained(folder), METHODS["bt"])  # undamaged, it loads
    return folder


def _edit_config(run: Path, **changes: object) -> Path:
    config = run / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), **changes}))
    return config


def test_a_config_that_is_not_utf8_is_one_line(run: Path) -> None:
    """config.json replaced by a file in another encoding (or binary bytes copied over it)."""
    config = run / "config.json"
    config.write_bytes(b'{"method": "bt\xff"}')
    with pytest.raises(ValueError, match=rf"^{re.escape(str(config))}: not UTF-8 text \(not a file pluralign "
                                         r"wrote\)$"):
        PreferenceModel.from_pretrained(run)


@pytest.mark.parametrize("key, value, kind, got", [("user_ids", "abc", "list", "str"),
                                                   ("uses_embeddings", 1, "bool", "int"),
                                                   ("config", [], "dict", "list")])
def test_a_config_key_of_the_wrong_type_is_named(run: Path, key: str, value: object, kind: str, got: str) -> None:
    """A hand-edited config.json whose user_ids is a string (or another key of the wrong JSON type)."""
    config = _edit_config(run, **{key: value})
    with pytest.raises(ValueError, match=rf"^{re.escape(str(config))}: '{key}' must be a {kind}, got {got}$"):
        PreferenceModel.from_pretrained(run)


@pytest.mark.parametrize("recorded", ["abc", {}, {"tensors": 3, "sha256": 5}], ids=["string", "empty", "number"])
def test_a_malformed_frozen_backbone_record_is_named(run: Path, recorded: object) -> None:
    """config.json's 'frozen_backbone' not a mapping with a 'sha256' string, read by from_pretrained or directly."""
    config = _edit_config(run, frozen_backbone=recorded)
    message = rf"^{re.escape(str(config))}: 'frozen_backbone' must hold the frozen weights' 'sha256'$"
    with pytest.raises(ValueError, match=message):
        PreferenceModel.from_pretrained(run)
    with pytest.raises(ValueError, match=message):
        check_frozen({"w": torch.zeros(1)}, recorded, config, "all-MiniLM-L6-v2")


def test_a_run_without_its_weights_file_is_named(run: Path) -> None:
    """model.safetensors deleted, or not copied along with config.json."""
    (run / "model.safetensors").unlink()
    weights = run / "model.safetensors"
    with pytest.raises(FileNotFoundError, match=rf"^{re.escape(str(weights))}: no such file \(the run's weights\)$"):
        PreferenceModel.from_pretrained(run)


def test_weights_of_another_fit_beside_the_config_are_refused(run: Path, tmp_path: Path) -> None:
    """The two files are two renames: two fits into one folder at once, or a refit stopped between the renames,
    left one fit's config beside another fit's weights of the same shapes, which loaded and scored without a word."""
    other = tmp_path / "other"
    METHODS["bt"](epochs=2, hidden=[], seed=1).fit(ROWS, progress=False).save_pretrained(other)
    (run / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    config = run / "config.json"
    with pytest.raises(ValueError, match=rf"^{re.escape(str(config))}: does not describe model.safetensors \(not "
                                         r"the weights' sha256 it records\): the two files are of two fits"):
        PreferenceModel.from_pretrained(run)
    _edit_config(run, weights_sha256=None)  # a run saved before the hash was recorded loads as it did
    assert isinstance(PreferenceModel.from_pretrained(run), METHODS["bt"])


def test_a_config_naming_an_unknown_method_is_named(run: Path) -> None:
    """config.json from another tool's run, or a method name mistyped by hand."""
    config = _edit_config(run, method="bt2")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(config))}: unknown method 'bt2'$"):
        PreferenceModel.from_pretrained(run)


@pytest.mark.parametrize("edit, problem", [
    (lambda c: {**c, "scale": torch.ones(2)}, r"scale: in the file's feature center, not in the model"),
    (lambda c: {"prompt": c["prompt"]}, r"response: in the model, not in the file's feature center"),
    (lambda c: {**c, "response": torch.ones(3)}, r"response: \[3\] in the file's feature center, \[2\] in the model"),
])
def test_a_feature_center_that_does_not_match_the_config_is_named(tmp_path: Path, edit, problem: str) -> None:
    """model.safetensors edited so that its 'feature_center::' tensors are not the prompt and response means the
    run's inputs need (an extra name, a missing one, another width): the first mismatch, named."""
    run = tmp_path / "run"
    METHODS["bt"](epochs=1, hidden=[], center_features=True).fit(ROWS, progress=False).save_pretrained(run)
    weights = run / "model.safetensors"
    state = load_file(str(weights))
    center = {k.split("::")[1]: state.pop(k) for k in list(state) if k.startswith("feature_center::")}
    assert sorted(center) == ["prompt", "response"]
    save_file({**state, **{f"feature_center::{k}": v for k, v in edit(center).items()}}, str(weights))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(weights))}: the feature center does not match the "
                                         rf"config \({problem}\)$"):
        PreferenceModel.from_pretrained(run)


def test_loading_a_run_leaves_the_callers_torch_generator_as_it_was(run: Path) -> None:
    """The network is built at random before its weights are read: that draw no longer moves the caller's torch
    generator (fit and prediction already left it alone)."""
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    PreferenceModel.from_pretrained(run)
    assert torch.equal(torch.rand(3), expected)
