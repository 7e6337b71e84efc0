"""A fitted model as the reward of policy training, in the form of TRL's ``reward_funcs``.

``GRPOTrainer(..., reward_funcs=[reward_function(model)])`` calls the function with the batch's
``prompts`` and ``completions`` (strings, or chat messages in the conversational format) and every other
column of the dataset as a keyword list. With a ``user_id`` column the reward is personal row by row: each
row is scored for its own user, r(x, y | u). ``users`` maps ids to vectors inferred from a few labelled pairs
(``model.infer_user``), for users the model was not trained on, their keys read as the data's ids are (``4``
and ``"4"`` are one user); any other unknown id is an error, not a silent fallback to the population, for the
methods that learn their users (pal-a, pal-b, gpm, vpl, maxmin). bt and micro train on pooled pairs: they score
any id with the population model, and a personal reward from them needs ``users``. Without a ``user_id``
column, every row is scored for ``user`` (an id, a ``UserVector``, or None for the population model).

``egalitarian=True`` (MaxMin only) scores each completion by the worst-off group's standardized reward,
min_g r_g(x, y): MaxMin-RLHF's objective (Chakraborty et al. 2024, eq. 9; ``maxmin/model.py``), one policy
for every group.
GPM has no scalar reward (its preferences need not be transitive), so it cannot serve as one.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Mapping, Sequence

from pluralign.data.contract import messages_to_text, read_id
from pluralign.methods.base import PreferenceModel, UserVector
from pluralign.methods.gpm import GPM


def reward_function(model: PreferenceModel, user: Any = None, users: Mapping[str, UserVector] | None = None,
                    egalitarian: bool = False) -> Callable[..., list[float]]:
    """``f(prompts, completions, **columns) -> list[float]``: the model's reward of each completion."""
    if isinstance(model, GPM):
        raise ValueError("gpm: no scalar reward to score completions by (GPM models preferences, which may be "
                         "intransitive); use a reward model (bt, pal-a, pal-b, vpl, micro, maxmin)")
    if egalitarian and not hasattr(model, "maxmin_score"):
        raise ValueError(f"{model.name}: egalitarian=True needs MaxMin's group rewards")
    if egalitarian and (user is not None or users):
        raise ValueError(f"{model.name}: egalitarian=True scores the worst-off group, for every user alike; "
                         "user and users are not read")
    model.check_fitted()
    users = {_id(key): vector for key, vector in (users or {}).items()}

    def reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
        prompt_texts = [messages_to_text(p) for p in prompts]
        completion_texts = [messages_to_text(c) for c in completions]
        # a policy's completions are new texts at every step: embed them without growing the on-disk cache
        if egalitarian:
            return model.maxmin_score(prompt_texts, completion_texts, cache=False).tolist()
        ids = columns.get("user_id")
        row_users = [users.get(_id(u), u) for u in ids] if ids is not None else user
        return model.score(prompt_texts, completion_texts, user=row_users, cache=False).tolist()

    reward.__name__ = f"{model.name}_{'egalitarian' if egalitarian else 'reward'}"  # TRL logs rewards by name
    return reward


def _id(value: Any) -> Any:
    """An id as the reader makes it (``4``, ``4.0`` and ``"4"`` are ``"4"``); anything else as it is."""
    try:
        numeric = isinstance(value, numbers.Number) and not isinstance(value, bool)
        return read_id(value, "user_id", ValueError) if isinstance(value, str) or numeric else value
    except ValueError:
        return value
