"""Every preset in models/: its first comment is the command that runs it, and it builds that method."""

import re
import shlex
from pathlib import Path

import pytest

from pluralign.config import build_model, load_config

PRESETS = sorted((Path(__file__).resolve().parent.parent / "models").glob("*.yaml"))


def test_there_are_presets():
    assert {p.stem for p in PRESETS} >= {"bt", "vpl", "pal-a", "pal-b", "micro", "gpm", "maxmin"}


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_runs_as_its_first_comment_says(path):
    first = path.read_text().splitlines()[0]
    fit = re.search(r"pluralign fit (.+)$", first)
    assert first.startswith("# ") and fit, f"{path.name}: first line should be the command that runs it"
    words = shlex.split(fit.group(1))
    method = words[0]
    assert words[words.index("--config") + 1] == f"models/{path.name}"
    model = build_model(method, load_config(path, method))
    assert model.name == method
