"""pluralign.io by hand: check_output on an existing folder and beside inputs, state_mismatches' lines."""

from __future__ import annotations

import os

import pytest
import torch

from pluralign.io import check_output, counted, state_mismatches


def test_a_count_of_one_takes_the_singular() -> None:
    assert [counted(n, "seen user") for n in (0, 1, 2)] == ["0 seen users", "1 seen user", "2 seen users"]


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


def test_an_output_inside_an_input_folder_is_refused_only_where_it_is_read(tmp_path) -> None:
    """A file a command reads through the folder (a run's config.json, a data folder's test split, even one not
    there yet) is refused; an earlier output beside them (eval.json) is not, so the documented
    `eval --run runs/vpl --out runs/vpl/eval.json` can run twice."""
    run, data = tmp_path / "run", tmp_path / "data"
    for name in ("config.json", "model.safetensors", "eval.json"):
        (run / name).parent.mkdir(exist_ok=True)
        (run / name).write_text("{}")
    data.mkdir()
    (data / "test.parquet").write_text("")
    inputs = [("--run", run), ("--data", data)]
    check_output(run / "eval.json", inputs=inputs)
    check_output(data / "metrics.jsonl", inputs=inputs)
    for out, source in [(run / "config.json", "--run"), (run / "model.safetensors", "--run"),
                        (data / "test.jsonl", "--data"), (data / "train.csv", "--data")]:
        with pytest.raises(ValueError, match=rf"^--out {out}: would overwrite {source} .*; choose another file$"):
            check_output(out, inputs=inputs)


def test_an_output_folder_may_not_hold_an_input(tmp_path) -> None:
    """`fit --data DIR/train.jsonl --out DIR` and `data split DIR/train.jsonl --out DIR`: what the command writes
    in DIR could be its input (the split replaced its source); a folder inside the input's folder is fine."""
    source = tmp_path / "data" / "train.jsonl"
    source.parent.mkdir()
    source.write_text("")
    with pytest.raises(ValueError, match=rf"^--out {tmp_path}: holds SOURCE {source}; choose a folder that does not$"):
        check_output(tmp_path, folder=True, inputs=[("SOURCE", source)])
    check_output(tmp_path / "data" / "run", folder=True, inputs=[("--data", source)])


def test_state_mismatches_by_hand() -> None:
    """Names only the model holds, then names only the file holds, then differing shapes, one line each."""
    expected = {"a": torch.zeros(2, 3), "b": torch.zeros(4), "c": torch.zeros(1)}
    found = {"a": torch.zeros(3, 3), "c": torch.zeros(1), "d": torch.zeros(5)}
    assert state_mismatches(expected, found) == ["b: in the model, not in the file", "d: in the file, not in the model",
                                                 "a: [3, 3] in the file, [2, 3] in the model"]
    assert state_mismatches(expected, dict(expected), "the checkpoint") == []


def test_a_write_that_fails_names_the_output_not_its_temporary_name(tmp_path, monkeypatch) -> None:
    """'/proc/.x.json.molvpj5f.tmp: No such file or directory': the error named a file no one asked for."""
    import tempfile

    from pluralign.io import write_text

    def no_room(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / ".x.json.abc.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", no_room)
    with pytest.raises(OSError) as err:
        write_text(tmp_path / "x.json", "{}")
    assert (err.value.filename, err.value.strerror) == (str(tmp_path / "x.json"), "No space left on device")
    monkeypatch.undo()

    def full(self, *args, **kwargs):
        raise OSError(28, "No space left on device", str(self))

    monkeypatch.setattr("pathlib.Path.write_text", full)
    with pytest.raises(OSError) as err:
        write_text(tmp_path / "y.json", "{}")
    assert err.value.filename == str(tmp_path / "y.json") and not list(tmp_path.iterdir())  # no temporary left


def test_a_write_error_without_a_file_name_and_safetensors_own_are_named_by_the_output(tmp_path) -> None:
    """A full disk's error on write() carries no file name ("[Errno 27] File too large"), and safetensors raises
    its own SafetensorError, which passed the CLI as a traceback: both now name the output, and leave no temporary."""
    from safetensors import SafetensorError

    from pluralign.io import atomic_path

    for raised, words in ((OSError(27, "File too large"), "File too large"),
                          (SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)"),
                           "cannot write (Error while serializing: I/O error: No space left on device (os error 28))")):
        with pytest.raises(OSError) as err, atomic_path(tmp_path / "model.safetensors") as tmp:
            tmp.write_bytes(b"half")
            raise raised
        assert (err.value.filename, err.value.strerror) == (str(tmp_path / "model.safetensors"), words)
        assert not list(tmp_path.iterdir())


def test_an_atomic_write_is_flushed_to_disk_before_its_rename(tmp_path, monkeypatch) -> None:
    """After a power loss the rename can be on disk and the data not: a zero-length file under the output's name."""
    from pluralign.io import write_text

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fsync(fd))
    write_text(tmp_path / "x.json", "{}")
    assert len(synced) == 1 and os.path.basename(synced[0]).startswith(".x.json.")  # the temporary, before the rename
    assert (tmp_path / "x.json").read_text() == "{}"


def test_a_read_only_output_file_is_not_replaced(tmp_path) -> None:
    """A rename needs only the folder's write permission: a report protected with chmod 444 was replaced."""
    kept = tmp_path / "m.json"
    kept.write_text("{}")
    kept.chmod(0o444)
    with pytest.raises(ValueError, match=rf"^--out {kept}: is read-only \(kept from being replaced\); choose "):
        check_output(kept)
    kept.chmod(0o644)
    check_output(kept)


def test_a_failed_write_of_several_files_names_the_one_that_failed(tmp_path, monkeypatch) -> None:
    """A full disk on the first of a split's files was named as the last (README.md): every atomic_path around
    took the nameless error as its own."""
    from pathlib import Path

    from pluralign.io import write_files

    real = Path.write_text

    def full_on_train(self, text, *args, **kwargs):
        if self.name.startswith(".train.jsonl."):
            raise OSError(28, "No space left on device")
        return real(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_on_train)
    with pytest.raises(OSError) as err:
        write_files({tmp_path / "train.jsonl": "a", tmp_path / "test.jsonl": "b", tmp_path / "README.md": "c"})
    assert err.value.filename == str(tmp_path / "train.jsonl") and not list(tmp_path.iterdir())
