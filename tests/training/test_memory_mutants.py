"""PeakMemory's unit conversions by hand: /proc's kB lines, and ru_maxrss in kB on Linux, bytes on macOS."""

from __future__ import annotations

import resource
import types

from pluralign.training import memory as memory_module


def test_status_lines_are_read_in_mib(tmp_path, monkeypatch) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmHWM:\t    5120 kB\nVmRSS:\t    3072 kB\n")
    monkeypatch.setattr(memory_module, "_STATUS", status)
    assert memory_module._status_mb("VmHWM") == 5.0 and memory_module._status_mb("VmRSS") == 3.0
    assert memory_module._status_mb("VmSwap") is None
    monkeypatch.setattr(memory_module, "_STATUS", tmp_path / "absent")
    assert memory_module._status_mb("VmHWM") is None


def test_the_lifetime_peak_in_mib_on_linux_and_macos(monkeypatch) -> None:
    monkeypatch.setattr(memory_module.sys, "platform", "linux")
    monkeypatch.setattr(resource, "getrusage", lambda who: types.SimpleNamespace(ru_maxrss=3 * 1024))  # kB
    assert memory_module._lifetime_peak_mb() == 3.0
    monkeypatch.setattr(memory_module.sys, "platform", "darwin")
    monkeypatch.setattr(resource, "getrusage", lambda who: types.SimpleNamespace(ru_maxrss=3 * 2**20))  # bytes
    assert memory_module._lifetime_peak_mb() == 3.0
