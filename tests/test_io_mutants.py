"""pluralign.io by hand: check_output on an existing folder, state_mismatches' lines."""

from __future__ import annotations

import os

import pytest
import torch

from pluralign.io import check_output, state_mismatches


def test_an_existing_output_folder_must_itself_be_writable(tmp_path, monkeypatch) -> None:
    """--out run where run exists: run itself must be writable (its parent being writable is not enough); a file's
    own folder is what counts for a file."""
    run = tmp_path / "run"
    run.mkdir()
    real_access = os.access
    monkeypatch.setattr("os.access", lambda path, mode: False if os.fspath(path) == os.fspath(run)
                        else real_access(path, mode))
    with pytest.raises(ValueError, match=rf"^--out {run}: {run} is not writable$"):
        check_output(run, folder=True)
    with pytest.raises(ValueError, match=rf"^--out {run / 'm.json'}: {run} is not writable$"):
        check_output(run / "m.json")
    check_output(tmp_path / "elsewhere", folder=True)  # a missing folder goes by its nearest existing ancestor


def test_state_mismatches_by_hand() -> None:
    """Names only the model holds, then names only the file holds, then differing shapes, one line each."""
    expected = {"a": torch.zeros(2, 3), "b": torch.zeros(4), "c": torch.zeros(1)}
    found = {"a": torch.zeros(3, 3), "c": torch.zeros(1), "d": torch.zeros(5)}
    assert state_mismatches(expected, found) == ["b: in the model, not in the file", "d: in the file, not in the model",
                                                 "a: [3, 3] in the file, [2, 3] in the model"]
    assert state_mismatches(expected, dict(expected), "the checkpoint") == []
