"""resumable_record by hand: every option that makes cells must match, a dirty checkout warns, and
the kept records do not nest."""

from __future__ import annotations

import json
import logging

import pytest

from pluralign import provenance
from pluralign.provenance import resumable_record

ARGUMENTS = {"seeds": [0], "context": 8, "overrides": {}, "data_options": {"n_users": 6}, "active": None}


def write_record(out, arguments, environment, resumes=None):
    record = {"command": "bench", "arguments": arguments, "environment": environment}
    (out / "run.json").write_text(json.dumps({**record, "resumes": resumes} if resumes else record))
    return record


def test_other_data_options_refuse_to_resume(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(provenance, "environment", lambda: {"pluralign": "1", "git_commit": "abc"})
    write_record(tmp_path, ARGUMENTS, {"pluralign": "1", "git_commit": "abc"})
    with pytest.raises(ValueError) as err:
        resumable_record(str(tmp_path), {**ARGUMENTS, "data_options": None})
    assert str(err.value) == (f"--resume: {tmp_path} was made with data_options = {{'n_users': 6}}, this command has "
                              "None; use the same options, or a new --out")


def test_a_resume_may_add_methods_and_benchmarks_but_not_leave_one_out(tmp_path, monkeypatch) -> None:
    """A resume with fewer methods rewrote results.json with its own alone: the finished cells of the others
    vanished without a word."""
    monkeypatch.setattr(provenance, "environment", lambda: {"pluralign": "1", "git_commit": "abc"})
    made = {**ARGUMENTS, "methods": ["bt", "pal-a", "gpm"], "benchmarks": ["pets"]}
    write_record(tmp_path, made, {"pluralign": "1", "git_commit": "abc"})
    resumable_record(str(tmp_path), {**made, "methods": ["gpm", "bt", "pal-a", "vpl"],
                                     "benchmarks": ["pets", "cyclic"]})
    with pytest.raises(ValueError) as err:
        resumable_record(str(tmp_path), {**made, "methods": ["bt"]})
    assert str(err.value) == (f"--resume: {tmp_path} was made with methods pal-a, gpm too, which this command leaves "
                              "out: their finished cells would be dropped from results.json; name them too, or use a "
                              "new --out")
    with pytest.raises(ValueError, match=r"made with benchmarks pets too, which this command leaves out"):
        resumable_record(str(tmp_path), {**made, "benchmarks": ["cyclic"]})


def test_kept_records_follow_each_other_without_nesting(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(provenance, "environment", lambda: {"pluralign": "1", "git_commit": "abc"})
    earlier = {"command": "bench", "arguments": {"seeds": [0]}}
    record = write_record(tmp_path, ARGUMENTS, {"pluralign": "1", "git_commit": "abc"}, resumes=[earlier])
    assert resumable_record(str(tmp_path), dict(ARGUMENTS)) == [earlier, record]


def test_a_dirty_checkout_warns_even_at_the_same_commit(tmp_path, monkeypatch, caplog) -> None:
    now = {"pluralign": "1", "git_commit": "abc+dirty"}
    monkeypatch.setattr(provenance, "environment", lambda: now)
    write_record(tmp_path, ARGUMENTS, dict(now))
    with caplog.at_level(logging.WARNING, logger="pluralign"):
        resumable_record(str(tmp_path), dict(ARGUMENTS))
    assert len(caplog.records) == 1 and "git_commit = abc+dirty" in caplog.text
    caplog.clear()
    now["git_commit"] = "abc"
    write_record(tmp_path, ARGUMENTS, dict(now))
    with caplog.at_level(logging.WARNING, logger="pluralign"):
        resumable_record(str(tmp_path), dict(ARGUMENTS))
    assert not caplog.records
    write_record(tmp_path, ARGUMENTS, {"pluralign": "0", "git_commit": "old"})  # both differ: one warning
    with caplog.at_level(logging.WARNING, logger="pluralign"):
        resumable_record(str(tmp_path), dict(ARGUMENTS))
    assert len(caplog.records) == 1 and "pluralign = 0" in caplog.text


def test_a_dirty_checkout_at_the_same_commit_says_so(tmp_path, monkeypatch, caplog) -> None:
    """"made by git_commit = abc+dirty, this run is git_commit = abc+dirty" read as a contradiction: the reason is
    the uncommitted changes, and the warning says that."""
    now = {"pluralign": "1", "git_commit": "abc+dirty"}
    monkeypatch.setattr(provenance, "environment", lambda: now)
    write_record(tmp_path, ARGUMENTS, dict(now))
    with caplog.at_level(logging.WARNING, logger="pluralign"):
        resumable_record(str(tmp_path), dict(ARGUMENTS))
    assert caplog.messages == [f"--resume: this checkout has uncommitted changes (git_commit = abc+dirty, as when the "
                               f"kept cells of {tmp_path} were made): they may differ from what this code would make"]
    caplog.clear()
    write_record(tmp_path, ARGUMENTS, {"pluralign": "1", "git_commit": "abc"})  # other values: both named
    with caplog.at_level(logging.WARNING, logger="pluralign"):
        resumable_record(str(tmp_path), dict(ARGUMENTS))
    assert caplog.messages == [f"--resume: the kept cells of {tmp_path} were made by git_commit = abc, this run is "
                               "git_commit = abc+dirty: they may differ from what this code would make"]


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"command": "fit"}', '{"arguments": "seeds 0"}',
                                     '{"arguments": {}, "resumes": 3}'])
def test_a_run_json_that_is_no_bench_record_is_one_line(tmp_path, content: str) -> None:
    """--resume into a folder whose run.json is not a bench's (another tool's, or edited by hand): one line, not
    a traceback from .get on a string or from unpacking a number."""
    (tmp_path / "run.json").write_text(content)
    with pytest.raises(ValueError) as err:
        resumable_record(str(tmp_path), ARGUMENTS)
    assert str(err.value) == f"--resume: {tmp_path / 'run.json'} is not a bench's record"
