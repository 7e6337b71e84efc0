"""Provenance: the git commit (and whether the checkout was changed), the libraries, the machine."""

import subprocess

import pytest

from pluralign.provenance import environment, git_commit


def test_git_commit_of_a_checkout_clean_and_changed(tmp_path):
    assert git_commit(tmp_path) is None  # not a checkout
    try:
        git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run([*git, "init", "-q"], check=True)
        (tmp_path / "f.txt").write_text("a")
        subprocess.run([*git, "add", "f.txt"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git is not usable here")
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert git_commit(tmp_path) == head
    (tmp_path / "sub").mkdir()  # an installed package (site-packages) inside some checkout's venv: not that checkout
    assert git_commit(tmp_path / "sub") is None
    (tmp_path / "untracked.txt").write_text("new")
    assert git_commit(tmp_path) == head  # untracked files do not change what the code is
    (tmp_path / "f.txt").write_text("b")
    assert git_commit(tmp_path) == head + "+dirty"


def test_environment_names_the_code_libraries_and_machine():
    info = environment()
    assert {"pluralign", "git_commit", "python", "libraries", "platform", "cpu_count", "torch_threads",
            "cuda_device", "time_utc"} <= set(info)
    assert info["libraries"]["torch"] and info["libraries"]["pyro-ppl"]
