"""Peak memory of one piece of work: DESIGN.md's third cost figure, beside wall time and pairs per second.

The process's lifetime high-water mark (``ru_maxrss``) says nothing about one fit in a process that has
already fitted others (a bench, a notebook). On Linux the mark can be reset (writing 5 to
``/proc/self/clear_refs``), so :class:`PeakMemory` reports the peak resident memory *during* the work and
how much of it the work added. Where the reset is not allowed it falls back to the lifetime peak and
leaves the added figure out rather than guess. GPU memory is PyTorch's own peak of allocated bytes.

The reset is process-wide: after a fit, ``getrusage``'s ``ru_maxrss`` (and /proc's ``VmHWM``) report the peak
since that fit began, not since the process started. :func:`process_peak_mb` keeps the lifetime figure.

Resident memory is what the system gave the process, not what tensors hold: the first fit in a process
also pays for what it imports, and a fit can reuse pages an earlier one freed (freed C heap is handed back
first, which narrows that). For one method's own figure, fit it in a fresh process
(``benchmarks/fit_speed.py`` does).
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_mb(field: str) -> float | None:
    """A ``VmRSS`` / ``VmHWM`` line of /proc/self/status in MiB (None off Linux)."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        return None
    return None


def _lifetime_peak_mb() -> float | None:
    try:
        import resource  # not on Windows
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, kB on Linux


def _release_free_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc), so resident memory is what is in use, not
    what an earlier fit freed and the allocator kept: otherwise a later fit reuses those pages unseen."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


_peak_before_resets_mb = 0.0


def process_peak_mb() -> float | None:
    """The process's peak resident memory since it started, resets by :class:`PeakMemory` included."""
    now = _status_mb("VmHWM") or _lifetime_peak_mb()
    return None if now is None else max(now, _peak_before_resets_mb)


def _reset_peak() -> bool:
    """Set the process's resident high-water mark to its current size; False where that is not allowed."""
    global _peak_before_resets_mb
    _peak_before_resets_mb = max(_peak_before_resets_mb, _status_mb("VmHWM") or 0.0)
    _release_free_heap()
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return _status_mb("VmHWM") is not None


class PeakMemory:
    """``with PeakMemory() as memory: work()``, then ``memory.stats()``:

    - ``peak_memory_mb``: the peak resident memory of the process during the work (its lifetime peak where
      the mark cannot be reset: ``peak_memory_scope`` says which);
    - ``added_memory_mb``: that peak minus the resident memory at the start: what the work itself needed
      (only where the mark was reset);
    - ``peak_gpu_memory_mb``: PyTorch's peak of allocated CUDA memory during the work, where CUDA was used.
    """

    def __enter__(self) -> "PeakMemory":
        self.reset = _reset_peak()
        self.start_mb = _status_mb("VmRSS")
        self.cuda_was_initialized = torch.cuda.is_available() and torch.cuda.is_initialized()
        if self.cuda_was_initialized:
            torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc) -> None:
        self.peak_mb = _status_mb("VmHWM") if self.reset else _lifetime_peak_mb()
        # CUDA first used inside the work: its peak since then is the work's
        self.gpu_peak_mb = (torch.cuda.max_memory_allocated() / 2**20
                            if torch.cuda.is_available() and torch.cuda.is_initialized() else None)

    def stats(self) -> dict:
        stats: dict = {}
        if self.peak_mb is not None:
            stats["peak_memory_mb"] = round(self.peak_mb, 1)
            stats["peak_memory_scope"] = "fit" if self.reset else "process"
        if self.reset and self.start_mb is not None:
            stats["added_memory_mb"] = round(max(self.peak_mb - self.start_mb, 0.0), 1)
        if self.gpu_peak_mb is not None:
            stats["peak_gpu_memory_mb"] = round(self.gpu_peak_mb, 1)
        return stats
