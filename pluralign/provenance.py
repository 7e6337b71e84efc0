"""Where a result came from: the code (version, git commit), the libraries, the machine and the time.

Every saved model carries it in ``config.json`` and every bench writes it to ``run.json`` beside its
results, with the command's arguments, so a figure can be traced to what produced it long after.
"""

from __future__ import annotations

import datetime
import functools
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

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
