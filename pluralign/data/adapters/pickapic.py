"""Pick-a-Pic CLIP-H embeddings as PAL ships them (Chen et al. 2025; github.com/RamyaLab/pluralistic-alignment,
``ramya-ml/pickapic-embeds``), read without unpickling.

PAL's own files are pickles: one ``<unique_id>.joblib`` per sample holding
``((u_id, p, (x_left, x_right)), y)`` (``src/dataset.py``), with ``p`` the prompt's and ``x_left``/``x_right``
the two images' OpenCLIP-H/14 embeddings and ``y`` = -1 when the left image is preferred, +1 when the
right one is (``src/summary_dataset_utils.py``; PAL's distance model scores d(left) - d(right)). Loading a
pickle runs code from the file, so those are refused; convert them once in a trusted environment into
arrays with PAL's names, in one of these safe containers:

- ``.npz`` (read with ``allow_pickle=False``) or a folder of ``uid.npy``, ``p.npy``, ``x_left.npy``,
  ``x_right.npy``, ``y.npy``;
- ``.safetensors`` with tensors ``p``, ``x_left``, ``x_right``, ``y`` and integer ``uid`` (string ids can
  go in the header metadata as ``{"uid": "<JSON list>"}``);
- ``.pt`` holding a plain dict of tensors/lists, read with ``torch.load(weights_only=True)``.

Shapes: ``uid`` (N,), ``p`` (N, Dp), ``x_left``/``x_right`` (N, D), ``y`` (N,) in {-1, 0, +1}; 0 is a tie,
skipped and counted. Rows get ``chosen_embedding``/``rejected_embedding``/``prompt_embedding`` + ``user_id``.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from pluralign.data.adapters._common import SourcedRows, finish
from pluralign.data.contract import DataError, PreferenceSet, fail
from pluralign.io import first_line

ARRAYS = ("uid", "p", "x_left", "x_right", "y")
PICKLES = (".joblib", ".pkl", ".pickle")
CONVERT_HINT = ("PAL's .joblib samples are pickles and are not loaded here; convert them in a trusted "
                "environment to .npz/.safetensors arrays named uid, p, x_left, x_right, y")


def from_pickapic(path: str | Path, prompt_embeddings: bool = True) -> PreferenceSet:
    """Read PAL-style Pick-a-Pic embeddings: arrays uid, p, x_left, x_right, y in a .npz, .safetensors or .pt
    file or a folder of .npy files (PAL's .joblib pickles are refused: convert them to these arrays once, in a
    trusted environment)."""
    path = Path(path)
    arrays = _check(_load(path), str(path))
    rows = SourcedRows()
    dropped: Counter = Counter()
    for i, (uid, label) in enumerate(zip(arrays["uid"], arrays["y"])):
        rows.at(str(path), i)
        if label == 0:
            dropped["ties"] += 1
            continue
        chosen, rejected = ("x_left", "x_right") if label < 0 else ("x_right", "x_left")
        row = {"chosen_embedding": arrays[chosen][i], "rejected_embedding": arrays[rejected][i], "user_id": uid}
        if prompt_embeddings and "p" in arrays:
            row["prompt_embedding"] = arrays["p"][i]
        rows.append(row)
    return finish(rows, path, dropped, "pickapic", n_samples=len(arrays["y"]))


def _load(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    suffix = path.suffix.lower()
    if suffix in PICKLES or (path.is_dir() and any(path.glob("*.joblib"))):
        raise fail(str(path), None, None, CONVERT_HINT)
    if path.is_dir():
        return {name: _npy(path / f"{name}.npy") for name in ARRAYS if (path / f"{name}.npy").exists()}
    if suffix == ".npz":
        return _npz(path)
    if suffix == ".safetensors":
        return _safetensors(path)
    if suffix in (".pt", ".pth"):
        return _torch(path)
    raise DataError(f"{path}: unknown format {path.suffix!r} (expected .npz, .safetensors, .pt or a folder of .npy)")


def _npy(path: Path) -> np.ndarray:
    with open(path, "rb") as f:  # numpy reads any other bytes as a pickle, and says so: not what went wrong
        if f.read(6) != b"\x93NUMPY":
            raise fail(str(path), None, path.stem, "not a .npy array file (a damaged or partial download?)")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:  # object arrays need pickle
        raise fail(str(path), None, path.stem, f"cannot read without unpickling ({err})") from None


def _npz(path: Path) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):  # numpy reads any other bytes as a pickle, and says so: not what went wrong
        raise fail(str(path), None, None, "not an .npz archive (a damaged or partial download?)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ValueError as err:
        raise fail(str(path), None, None, f"cannot read without unpickling ({err})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as err:  # a member cut short or its checksum wrong
        raise fail(str(path), None, None, f"cannot read ({first_line(err)}); a damaged or partial download?") from None


def _safetensors(path: Path) -> dict[str, Any]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            arrays: dict[str, Any] = {name: f.get_tensor(name) for name in f.keys()}
            metadata = f.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise fail(str(path), None, None, f"cannot read ({first_line(err)}); a damaged or partial download?") from None
    if "uid" not in arrays and "uid" in metadata:
        try:
            arrays["uid"] = json.loads(metadata["uid"])
        except json.JSONDecodeError:
            arrays["uid"] = None
        if not isinstance(arrays["uid"], list):
            raise fail(str(path), None, "uid", "metadata 'uid' is not a JSON list")
    return arrays


def _torch(path: Path) -> dict[str, Any]:
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError for anything beyond plain tensors/containers
        message = f"not a plain dict of tensors ({type(err).__name__}); {CONVERT_HINT}"
        raise fail(str(path), None, None, message) from None
    if not isinstance(data, dict):
        raise fail(str(path), None, None, f"expected a dict of arrays {ARRAYS}, got {type(data).__name__}")
    return {name: value.numpy() if hasattr(value, "numpy") else value for name, value in data.items()}


def _check(arrays: dict[str, Any], source: str) -> dict[str, list]:
    """Every required array present with one row per sample; embeddings 2-D; labels in {-1, 0, 1}."""
    for name in ("uid", "x_left", "x_right", "y"):
        if name not in arrays:
            raise fail(source, None, name, f"missing array (found {sorted(arrays)})")
    out: dict[str, list] = {}
    n = None
    for name in ("y", *(a for a in ARRAYS if a != "y")):  # y first: the other arrays are counted against it
        if name not in arrays:
            continue
        value = np.asarray(arrays[name])
        if value.ndim != (1 if name in ("uid", "y") else 2):
            what = "1-D (one per sample)" if name in ("uid", "y") else "2-D (samples x dims)"
            raise fail(source, None, name, f"expected a {what} array, got shape {value.shape}")
        n = len(value) if n is None else n
        if len(value) != n:
            raise fail(source, None, name, f"has {len(value)} rows, y has {n}")
        out[name] = value.tolist()
    # a NaN uid (a float array with gaps) is no user, as a null id is everywhere, not one user "nan"
    out["uid"] = [u.decode() if isinstance(u, bytes) else None if isinstance(u, float) and math.isnan(u) else str(u)
                  for u in out["uid"]]
    bad = [i for i, label in enumerate(out["y"]) if label not in (-1, 0, 1)]
    if bad:
        got = out["y"][bad[0]]
        raise fail(source, bad[0], "y", f"expected -1 (left preferred), +1 (right preferred) or 0 (tie), got {got}")
    return out
