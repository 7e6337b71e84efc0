"""What prediction checks of its arguments before the network sees them: embedding tensors shaped as the fit's
(rows, widths, finite values) and user vectors as wide as the method's. Unchecked, such a slip fails deep in
torch ("mat1 and mat2 shapes cannot be multiplied") or, worse, returns NaN probabilities with no error."""

from __future__ import annotations

from typing import Any

import torch


class UnknownUser(KeyError):
    """A user id the fit did not train. A ``KeyError`` whose text prints without the quotes ``KeyError`` adds."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def as_float_tensor(value: Any, what: str) -> torch.Tensor:
    """A float32 tensor of a tensor, array or list of numbers."""
    try:
        return torch.as_tensor(value, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{what} must be a tensor or a list of numbers (got {type(value).__name__}: {err})") from None


def _first_bad_row(tensor: torch.Tensor) -> int | None:
    bad = (~tensor.isfinite()).any(-1).nonzero()
    return int(bad[0]) if len(bad) else None


def embedding_inputs(method: str, dims: tuple[int, int], prompt: Any, responses: dict[str, Any]) -> list[torch.Tensor]:
    """[prompt, *responses] as float32 [rows, width] tensors, checked against the fit's (prompt, response) widths.

    ``responses`` maps each argument's name (``a``, ``b`` or ``responses``) to its tensor; a 1-D tensor is one
    row, as a plain string is one text. ``prompt`` that is not a tensor is read as "no prompt features".
    """
    tensors, rows = {}, None
    for label, value in responses.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{method}: {label} is {type(value).__name__} while the other responses are tensors: "
                            "give embeddings for all, or texts for all")
        tensors[label] = value.unsqueeze(0) if value.dim() == 1 else value
    if isinstance(prompt, torch.Tensor):
        tensors["prompts"] = prompt.unsqueeze(0) if prompt.dim() == 1 else prompt
    elif dims[0] > 0:
        raise TypeError(f"{method}: the run was fitted with prompt embeddings of width {dims[0]}; pass prompts as "
                        f"a [rows, {dims[0]}] tensor (got {type(prompt).__name__})")
    for label, tensor in tensors.items():
        width = dims[0] if label == "prompts" else dims[1]
        if tensor.dim() != 2:
            raise ValueError(f"{method}: {label} has shape {tuple(tensor.shape)}; expected [rows, {width}]")
        if tensor.shape[1] != width:
            raise ValueError(f"{method}: {label} has rows {tensor.shape[1]} wide; the run was fitted on "
                             f"{'prompt' if label == 'prompts' else 'response'} embeddings of width {width}")
        if rows is not None and tensor.shape[0] != rows[1]:
            raise ValueError(f"{method}: {label} has {tensor.shape[0]} rows and {rows[0]} has {rows[1]}; "
                             "give one row per pair")
        rows = rows or (label, tensor.shape[0])
        tensors[label] = tensor = tensor.to(torch.float32)
        if (row := _first_bad_row(tensor)) is not None:
            raise ValueError(f"{method}: {label}[{row}] holds NaN or inf")
    n = rows[1]
    prompt_tensor = tensors.pop("prompts", torch.zeros(n, 0))
    return [prompt_tensor, *tensors.values()]


def checked_user_vector(method: str, mean: torch.Tensor, width: int) -> torch.Tensor:
    """A user vector as wide as the method's users and finite: another width fails deep in the network (or,
    for BT, is ignored without a word) and NaN gives NaN probabilities."""
    if mean.dim() != 1 or mean.shape[0] != width:
        raise ValueError(f"{method}: a user vector of shape {tuple(mean.shape)}; this run's users are vectors of "
                         f"width {width} (take one from infer_user, known_user or population_user)")
    if not bool(mean.isfinite().all()):
        raise ValueError(f"{method}: the user vector holds NaN or inf")
    return mean


def is_user_list(method: str, user: Any) -> bool:
    """A list of per-row users (ids, vectors, None), as opposed to a list of labelled pairs (records); a list of
    integers is ids, a list of other numbers a raw vector, refused."""
    if not isinstance(user, (list, tuple)) or not user or isinstance(user[0], dict):
        return False
    if all(isinstance(u, int) and not isinstance(u, bool) for u in user):
        return True  # integer ids, as an integer user_id column gives them (TRL passes the column as a list)
    if all(isinstance(u, (int, float)) for u in user):
        raise TypeError(f"{method}: user is a list of numbers; wrap a raw vector as UserVector(mean)")
    return True
