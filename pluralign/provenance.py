"""Where a result came from: the code (version, git commit), the libraries, the machine and the time.

Every saved model carries it in ``config.json`` and every bench writes it to ``run.json`` beside its
results, with the command's arguments, so a figure can be traced to what produced it long after.
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

log = logging.getLogger("pluralign")

LIBRARIES = ("torch", "lightning", "pyro-ppl", "transformers", "numpy", "scikit-learn")


def git_commit(directory: str | Path | None = None) -> str | None:
    """HEAD of the checkout pluralign runs from, with ``+dirty`` when tracked files differ from it; None for
    an installed package or where git is missing."""
    root = Path(directory) if directory else Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


@functools.lru_cache(maxsize=1)
def _static() -> dict:
    from pluralign import __version__

    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"pluralign": __version__, "git_commit": git_commit(), "python": platform.python_version(),
            "libraries": versions, "platform": platform.platform(), "cpu_count": os.cpu_count()}


def environment() -> dict:
    """The code, libraries and machine (computed once a process), with the time and the thread count now."""
    import torch

    return {**_static(), "torch_threads": torch.get_num_threads(),
            "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def write_run_record(out: str, command: str, resumes: list | None = None, **arguments) -> None:
    """OUT/run.json: the command, its arguments and what ran it (:func:`environment`), before any result;
    ``resumes``: the records of the earlier runs whose cells this one keeps."""
    from pluralign.io import write_json

    record = {"command": command, "arguments": arguments, "environment": environment()}
    write_json(Path(out) / "run.json", {**record, "resumes": resumes} if resumes else record)


def _as_compared(key: str, arguments: dict) -> object:
    """An option as a resume compares it: the same seeds or builder options in another order are the same
    options."""
    from pluralign.config import parse_overrides

    value = arguments.get(key)
    if key == "seeds" and isinstance(value, list):
        return sorted(value)
    if key == "data_options" and isinstance(value, list):
        return parse_overrides(value, "--data-set")
    return value


def resumable_record(out: str, arguments: dict) -> list:
    """--resume keeps cells only where they were made as this run would make them: the seeds, contexts,
    overrides, builder options and chosen questions of OUT/run.json must be this command's; methods and
    benchmarks may be added, not left out (a resume writes results.json with its own alone).
    Other code (pluralign version or git commit) is a warning: the kept cells may not be what this code makes.
    Returns the earlier records, to keep in the new run.json."""
    record_path = Path(out) / "run.json"
    if not record_path.exists():
        raise ValueError(f"--resume: {record_path} is missing: no earlier bench in {out} to resume")
    try:
        record = json.loads(record_path.read_text())
        earlier = record["arguments"]
    except (ValueError, KeyError, TypeError):
        earlier = None
    if not isinstance(earlier, dict) or not isinstance(record.get("resumes", []), list):
        raise ValueError(f"--resume: {record_path} is not a bench's record")
    # --set as each method's settings (configs, below) where both runs recorded them: the same in another order
    raw = () if "configs" in earlier and "configs" in arguments else ("overrides",)
    for key in ("seeds", "context", *raw, "data_options", "active"):  # active: absent unless set
        if _as_compared(key, earlier) != _as_compared(key, arguments):
            raise ValueError(f"--resume: {out} was made with {key} = {earlier.get(key)!r}, this command has "
                             f"{arguments.get(key)!r}; use the same options, or a new --out")
    for method, config in (earlier.get("configs") or {}).items():  # a preset edited since, or a --set
        now = (arguments.get("configs") or {}).get(method, config)
        if changed := [f"{k}={config.get(k)!r} (now {now.get(k)!r})" for k in sorted({*config, *now})
                       if config.get(k) != now.get(k)]:
            raise ValueError(f"--resume: {out}'s {method} cells were fitted with {', '.join(changed)}; use the same "
                             "settings, or a new --out")
    for folder, digest in (earlier.get("folder_rows") or {}).items():  # a folder of data changed since: other rows
        if (arguments.get("folder_rows") or {}).get(folder, digest) != digest:
            raise ValueError(f"--resume: the rows of {folder} changed since {out} was made (sha256 "
                             f"{digest[:12]}, now {arguments['folder_rows'][folder][:12]}): its kept cells are of "
                             "other data; use a new --out")
    for key in ("methods", "benchmarks"):  # more may be added; one left out would lose its finished cells
        if left_out := [name for name in earlier.get(key) or [] if name not in (arguments.get(key) or [])]:
            raise ValueError(f"--resume: {out} was made with {key} {', '.join(map(str, left_out))} too, which this "
                             f"command leaves out: their finished cells would be dropped from results.json; name them "
                             "too, or use a new --out")
    made_by, now = record.get("environment") or {}, environment()
    for key in ("pluralign", "git_commit"):
        if made_by.get(key) != now.get(key):
            log.warning("--resume: the kept cells of %s were made by %s = %s, this run is %s = %s: they may differ "
                        "from what this code would make", out, key, made_by.get(key), key, now.get(key))
            break
        if key == "git_commit" and str(now.get(key)).endswith("+dirty"):  # equal ids, yet the code may differ
            log.warning("--resume: this checkout has uncommitted changes (git_commit = %s, as when the kept cells of "
                        "%s were made): they may differ from what this code would make", now.get(key), out)
            break
    return [*record.get("resumes", []), {k: v for k, v in record.items() if k != "resumes"}]
