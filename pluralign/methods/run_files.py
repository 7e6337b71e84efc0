"""A saved run's files, checked before they are used: config.json against the keys
:meth:`pluralign.methods.base.PreferenceModel.from_pretrained` reads, model.safetensors against the network that
config builds. A damaged or mismatched run folder is one line naming the file, not a traceback from deep inside
json, safetensors or ``load_state_dict``.

A "Large" run leaves out of model.safetensors the backbone weights fine-tuning never changed (92 MB of
all-MiniLM-L6-v2, against under 1 MB of LoRA adapters): its config records their sha256, and loading takes them
from the backbone's own files after checking that hash."""

from __future__ import annotations

import hashlib
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


def frozen_weights(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The entries of a "Large" network's state that fine-tuning never changed (the backbone below its trained
    layers, or beside its LoRA adapters), by state name; none for a network on cached features."""
    from pluralign.methods.tuned import TunedNetwork

    if not isinstance(network, TunedNetwork):
        return {}
    return {f"backbone.{name}": tensor for name, tensor in network.backbone.frozen_state().items()}


def fingerprint(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 of tensors' names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def check_frozen(frozen: dict[str, torch.Tensor], recorded: dict, config_path: Path, backbone: str) -> None:
    """A run saved without its frozen backbone weights reloads them from the backbone's files: they must be the
    ones it was fine-tuned on."""
    if not isinstance(recorded, dict) or not isinstance(recorded.get("sha256"), str):
        raise ValueError(f"{config_path}: 'frozen_backbone' must hold the frozen weights' 'sha256'")
    found = fingerprint(frozen)
    if found != recorded["sha256"]:
        raise ValueError(f"{config_path}: the backbone {backbone} is not the one this run was fine-tuned on (its "
                         f"frozen weights hash to {found[:12]}, the run recorded {recorded['sha256'][:12]})")
