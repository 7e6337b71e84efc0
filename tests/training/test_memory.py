"""PeakMemory: the peak of one piece of work, not of the process's whole life."""

import numpy as np
import pytest

from pluralign.training import memory as memory_module
from pluralign.training.memory import PeakMemory

MB = 2**20
resettable = pytest.mark.skipif(not memory_module._reset_peak(), reason="needs Linux's /proc/self/clear_refs")


def touch(megabytes: int) -> np.ndarray:
    return np.ones(megabytes * MB // 8)  # written, so resident


@resettable
def test_counts_what_the_work_allocates():
    with PeakMemory() as memory:
        block = touch(64)
        del block
    stats = memory.stats()
    assert stats["peak_memory_scope"] == "fit"
    assert 60 <= stats["added_memory_mb"] <= 120
    assert stats["peak_memory_mb"] >= stats["added_memory_mb"]


@resettable
def test_an_earlier_peak_does_not_count():
    block = touch(96)
    del block  # freed: the process's high-water mark stays up
    earlier_peak = memory_module._status_mb("VmHWM")
    with PeakMemory() as memory:
        pass
    stats = memory.stats()
    assert stats["added_memory_mb"] < 20
    assert earlier_peak - stats["peak_memory_mb"] > 60
    assert memory_module.process_peak_mb() >= earlier_peak  # the lifetime figure survives the reset


def test_without_the_reset_it_reports_the_process_peak_and_no_added_figure(monkeypatch):
    monkeypatch.setattr(memory_module, "_reset_peak", lambda: False)
    with PeakMemory() as memory:
        pass
    stats = memory.stats()
    assert "added_memory_mb" not in stats
    if memory_module._lifetime_peak_mb() is not None:  # None on Windows
        assert stats["peak_memory_scope"] == "process" and stats["peak_memory_mb"] > 0
