"""A saved run's files, checked before they are used: config.json against the keys
:meth:`pluralign.methods.base.PreferenceModel.from_pretrained` reads, model.safetensors against the network that
config builds. A damaged or mismatched run folder is one line naming the file, not a traceback from deep inside
json, safetensors or ``load_state_dict``.

A "Large" run leaves out of model.safetensors the backbone weights fine-tuning never changed (92 MB of
all-MiniLM-L6-v2, against under 1 MB of LoRA adapters): its config records their sha256, and loading takes them
from the backbone's own files after checking that hash.

:func:`save_run` and :func:`load_run` are ``PreferenceModel.save_pretrained`` and ``from_pretrained``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file

from pluralign.backbones.text_encoder import DEFAULT_BACKBONE
from pluralign.backbones.tuned import frozen_entries
from pluralign.data.features import FeatureCenter
from pluralign.io import (RUN_CONFIG, RUN_WEIGHTS, atomic_path, fingerprint, first_line, read_json, state_mismatches,
                          write_json)
from pluralign.provenance import environment

if TYPE_CHECKING:
    from pluralign.methods.base import PreferenceModel

CENTER_PREFIX = "feature_center::"  # saved FeatureCenter buffers: no module name holds "::"

RUN_CONFIG_KEYS = {"method": str, "config": dict, "dims": dict, "user_ids": list, "uses_embeddings": bool}


def read_run_config(path: Path) -> dict:
    """A run's config.json, checked for the keys :meth:`PreferenceModel.from_pretrained` reads."""
    saved = read_json(path)
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


def check_frozen(frozen: dict[str, torch.Tensor], recorded: dict, config_path: Path, backbone: str) -> None:
    """A run saved without its frozen backbone weights reloads them from the backbone's files: they must be the
    ones it was fine-tuned on."""
    if not isinstance(recorded, dict) or not isinstance(recorded.get("sha256"), str):
        raise ValueError(f"{config_path}: 'frozen_backbone' must hold the frozen weights' 'sha256'")
    found = fingerprint(frozen)
    if found != recorded["sha256"]:
        raise ValueError(f"{config_path}: the backbone {backbone} is not the one this run was fine-tuned on (its "
                         f"frozen weights hash to {found[:12]}, the run recorded {recorded['sha256'][:12]})")


def save_run(model: PreferenceModel, directory: Path) -> None:
    """model.safetensors (the weights fitting changed, and the feature center) and config.json (what rebuilds the
    model, what produced it, and the weights' sha256, which loading checks), each written by a temporary name then
    a rename."""
    network = model.check_fitted()
    directory.mkdir(parents=True, exist_ok=True)
    frozen = frozen_entries(network)  # a tuned backbone's untouched weights: its own files hold them
    state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items() if k not in frozen}
    if model.feature_center_ is not None:  # beside the network's weights, under a prefix they cannot have
        state.update({f"{CENTER_PREFIX}{k}": v.contiguous() for k, v in model.feature_center_.state_dict().items()})
    with atomic_path(directory / RUN_WEIGHTS) as tmp:
        save_file(state, str(tmp))
    write_json(directory / RUN_CONFIG, {
        "method": model.name,
        "config": model.get_config(),
        "dims": {"prompt": model.dims_[0], "response": model.dims_[1]},
        "user_ids": model.user_ids_,
        "uses_embeddings": model.uses_embeddings_,
        "fit": model.fit_stats_,
        "weights_sha256": fingerprint(state),  # ties this config to these weights: the two files are two renames
        **({"frozen_backbone": {"tensors": len(frozen), "sha256": fingerprint(frozen)}} if frozen else {}),
        # what produced these weights: code, libraries, machine, and the threads the fit ran on (not the caller's)
        "environment": {**environment(), **({"torch_threads": model.fit_stats_["threads"]}
                                            if "threads" in model.fit_stats_ else {})},
    })


def read_weights(weights: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """model.safetensors as (the network's tensors, the feature center's), every float finite."""
    if not weights.exists():
        raise FileNotFoundError(f"{weights}: no such file (the run's weights)")
    try:
        state = load_file(str(weights))
    except Exception as err:  # safetensors raises its own error type for a damaged or truncated file
        raise ValueError(f"{weights}: cannot read the weights ({first_line(err)})") from None
    if broken := [k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all()]:
        more = f" ({len(broken)} tensors in all)" if len(broken) > 1 else ""
        raise ValueError(f"{weights}: {broken[0]} holds NaN or inf{more}; the fit that wrote it diverged")
    center = {k[len(CENTER_PREFIX):]: state.pop(k) for k in list(state) if k.startswith(CENTER_PREFIX)}
    return state, center


def load_run(directory: Path, expected: type[PreferenceModel] | None = None) -> PreferenceModel:
    """The model saved in ``directory`` (of class ``expected`` where given), its config read back through the
    checks a --config gets; a damaged or mismatched folder is a one-line error naming the file."""
    from pluralign.config import build_model  # the types checked as a --config's are
    from pluralign.methods import METHODS
    from pluralign.methods.base import ConfigError

    config_path = directory / RUN_CONFIG
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such folder (a run folder written by pluralign fit)")
    if not config_path.exists():
        if any((directory / "checkpoints").rglob("last.ckpt")):  # a fit stopped before it saved the run
            raise FileNotFoundError(f"{directory}: no config.json: a fit that stopped before it finished (its "
                                    "checkpoints are there); finish it with the same pluralign fit command and "
                                    "--resume")
        raise FileNotFoundError(f"{directory}: no config.json (not a saved pluralign model)")
    saved = read_run_config(config_path)
    klass = METHODS.get(saved.get("method"))
    if klass is None:
        raise ValueError(f"{config_path}: unknown method {saved.get('method')!r}")
    if expected is not None and klass is not expected:
        raise ValueError(f"{config_path}: holds a {klass.__name__}, not a {expected.__name__}")
    try:
        model = build_model(klass.name, {**klass.saved_before, **saved["config"]})
    except ConfigError as err:  # an argument this method does not take, of the wrong type or out of range
        raise ValueError(f"{config_path}: {err}") from None
    model.user_ids_ = [str(u) for u in saved["user_ids"]]
    if len(set(model.user_ids_)) < len(model.user_ids_):  # each id is a row of the weights: a repeat hides a user
        repeated = next(u for u in model.user_ids_ if model.user_ids_.count(u) > 1)
        raise ValueError(f"{config_path}: user_ids lists {repeated!r} {model.user_ids_.count(repeated)} times; each "
                         "user is one row of the weights, so the file is damaged")
    model.uses_embeddings_ = bool(saved["uses_embeddings"])
    model.fit_stats_ = saved.get("fit", {})
    model.dims_ = (saved["dims"]["prompt"], saved["dims"]["response"])
    weights = directory / RUN_WEIGHTS
    state, center = read_weights(weights)
    if center:  # the training rows' mean prompt and response vectors, as wide as the run's inputs
        widths = {"prompt": torch.empty(model.dims_[0]), "response": torch.empty(model.dims_[1])}
        if problems := state_mismatches(widths, center, "the file's feature center"):
            more = f"; {len(problems)} mismatches in all" if len(problems) > 1 else ""
            raise ValueError(f"{weights}: the feature center does not match the config ({problems[0]}{more})")
        model.feature_center_ = FeatureCenter(**center)
    model.network_ = model.restore_network(*model.dims_, len(model.user_ids_))
    expected_state = model.network_.state_dict()
    if "frozen_backbone" in saved:  # saved without the backbone's frozen weights: the backbone's files hold them
        frozen = frozen_entries(model.network_)
        check_frozen(frozen, saved["frozen_backbone"], config_path, model.backbone or DEFAULT_BACKBONE)
        expected_state = {k: v for k, v in expected_state.items() if k not in frozen}
    check_weights(expected_state, state, config_path, klass.name)
    recorded = saved.get("weights_sha256")  # runs saved before it was recorded have none
    if recorded is not None and recorded != fingerprint({**state, **{CENTER_PREFIX + k: v for k, v in center.items()}}):
        raise ValueError(f"{config_path}: does not describe {weights.name} (not the weights' sha256 it records): the "
                         "two files are of two fits, into one folder at once or stopped between them; fit again")
    model.network_.load_state_dict(state, strict="frozen_backbone" not in saved)  # keys checked just above
    model.network_.eval()
    return model
