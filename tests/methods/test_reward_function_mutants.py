"""reward_function's contract with the model, against a stand-in that records its calls (no backbone, no fit):
an unfitted model is refused when the function is made, and the egalitarian reward embeds without the cache."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from pluralign.methods import BradleyTerry
from pluralign.methods.reward_function import reward_function


class Recorder:
    """Stands in for a fitted MaxMin: scores are the completions' lengths; records every call's arguments."""

    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def check_fitted(self) -> None:
        return None

    def maxmin_score(self, prompts, completions, cache: bool = True) -> torch.Tensor:
        self.calls.append(("maxmin_score", {"prompts": prompts, "cache": cache}))
        return torch.tensor([float(len(c)) for c in completions])

    def score(self, prompts, completions, user=None, cache: bool = True) -> torch.Tensor:
        self.calls.append(("score", {"prompts": prompts, "user": user, "cache": cache}))
        return torch.tensor([float(len(c)) for c in completions])


def test_an_unfitted_model_is_refused_when_the_function_is_made() -> None:
    """Not at the policy trainer's first step, minutes later."""
    with pytest.raises(RuntimeError, match="call fit"):
        reward_function(BradleyTerry())


def test_egalitarian_and_personal_rewards_skip_the_cache() -> None:
    """A policy's samples are new texts every step: both rewards ask the model not to cache them; chat messages
    arrive as their text. TRL logs each reward by its function's name: ``recorder_reward``, ``recorder_egalitarian``."""
    model = Recorder()
    assert reward_function(model).__name__ == "recorder_reward"
    assert reward_function(model, egalitarian=True).__name__ == "recorder_egalitarian"
    chat = [[{"role": "user", "content": "hi"}], [{"role": "user", "content": "yo"}]]
    assert reward_function(model, egalitarian=True)(chat, ["abc", "de"]) == [3.0, 2.0]
    assert reward_function(model, user="u1")(["p", "q"], ["a", "bcd"]) == [1.0, 3.0]
    (kind, egalitarian), (_, personal) = model.calls
    assert kind == "maxmin_score" and egalitarian["cache"] is False and egalitarian["prompts"] == ["hi", "yo"]
    assert personal["cache"] is False and personal["user"] == "u1"
