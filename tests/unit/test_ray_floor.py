"""How the idle benchmarks add up CPU: processes that ended between two readings count for nothing."""

from __future__ import annotations

import os

import pytest
from benchmarks.ray_floor import cores_used, cpu_seconds


def test_cores_used_is_cpu_seconds_spent_over_the_window() -> None:
    before = {1: 10.0, 2: 4.0}
    after = {1: 10.5, 2: 4.1}
    assert cores_used(before, after, [1, 2], seconds=10.0) == pytest.approx(0.06)


def test_a_process_missing_from_either_reading_is_left_out() -> None:
    before = {1: 10.0, 2: 4.0}
    after = {1: 12.0, 3: 1.0}  # 2 ended, 3 started inside the window
    assert cores_used(before, after, [1, 2, 3], seconds=4.0) == pytest.approx(0.5)


def test_cpu_seconds_reads_live_processes_and_skips_gone_ones() -> None:
    gone = 2**22 + 1  # above the default pid_max: no such process
    spent = cpu_seconds([os.getpid(), gone])
    assert list(spent) == [os.getpid()]
    assert spent[os.getpid()] > 0
