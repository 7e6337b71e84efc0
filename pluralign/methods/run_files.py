"""A saved run's files, checked before they are used: config.json against the keys
:meth:`pluralign.methods.base.PreferenceModel.from_pretrained` reads, model.safetensors against the network that
config builds. A damaged or mismatched run folder is one line naming the file, not a traceback from deep inside
json, safetensors or ``load_state_dict``."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from pluralign.io import state_mismatches

RUN_CONFIG_KEYS = {"method": str, "config": dict, "dims": dict, "user_ids": list, "uses_embeddings": bool}


def read_run_config(path: Path) -> dict:
    """A run's config.json, checked for the keys :meth:`PreferenceModel.from_pretrained` reads."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text (not a saved pluralign config)") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: invalid JSON ({err.msg}, line {err.lineno}, column {err.colno})") from None
    if not isinstance(saved, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(saved).__name__}")
    for key, kind in RUN_CONFIG_KEYS.items():
        if key not in saved:
            raise ValueError(f"{path}: no {key!r} key (not a saved pluralign config, or damaged)")
        if not isinstance(saved[key], kind):
            raise ValueError(f"{path}: {key!r} must be a {kind.__name__}, got {type(saved[key]).__name__}")
    dims = saved["dims"]
    if not all(isinstance(dims.get(k), int) and not isinstance(dims.get(k), bool) and dims[k] >= 0
               for k in ("prompt", "response")):
        raise ValueError(f"{path}: 'dims' must hold non-negative integers 'prompt' and 'response', got {dims}")
    return saved


def check_weights(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], config_path: Path,
                   method: str) -> None:
    """Raise where the saved tensors are not the network the config builds (another method's weights, or an
    edited config), not load_state_dict's many lines: one naming the first mismatch and how many there are."""
    problems = state_mismatches(expected, found)
    if not problems:
        return
    more = f"; {len(problems)} mismatches in all" if len(problems) > 1 else ""
    what = (f"method {method!r} does not match the weights in model.safetensors" if set(expected) != set(found)
            else "the weights in model.safetensors do not match the config")  # same names, other shapes
    raise ValueError(f"{config_path}: {what} ({problems[0]}{more})")
